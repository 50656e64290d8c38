"""RTMP flow control: a peer's Acknowledgements against what we sent (mpstream.streaming.rtmp.flow), in memory."""

import pytest
from mpstream.streaming.rtmp import VIDEO, ClientSession, ConnectRequest, PlayRequest, ServerSession
from mpstream.streaming.rtmp import messages as m
from mpstream.streaming.rtmp.chunk import encode_message
from mpstream.streaming.rtmp.flow import HANDSHAKE_BYTES, Acknowledgements

WINDOW = 1000


def test_unacknowledged_is_what_was_sent_after_the_handshake_minus_what_the_peer_confirmed():
    acks = Acknowledgements(WINDOW)
    acks.sent(HANDSHAKE_BYTES)
    assert acks.unacknowledged == 0
    acks.sent(5000)
    assert acks.unacknowledged == 5000
    acks.acknowledged(3000)
    assert acks.unacknowledged == 2000 and acks.acks == 1
    acks.acknowledged(1000)  # an older count (reordered or bogus) takes nothing back
    assert acks.unacknowledged == 2000


def test_the_32_bit_counter_wraps():
    acks = Acknowledgements(WINDOW)
    acks.sent(HANDSHAKE_BYTES + (1 << 32) + 500)  # 4 GiB and a little over
    acks.acknowledged(200)  # the peer's counter has wrapped too
    assert acks.unacknowledged == 300


def test_a_peer_that_counts_the_handshake_is_fully_acknowledged_not_four_gigabytes_behind():
    acks = Acknowledgements(WINDOW)
    acks.sent(HANDSHAKE_BYTES + 10_000)
    acks.acknowledged(HANDSHAKE_BYTES + 10_000)  # librtmp counts every byte it read
    assert acks.unacknowledged == 0


def test_lagging_for_counts_from_the_first_time_over_the_limit_and_starts_over_once_under():
    acks = Acknowledgements(WINDOW)
    acks.sent(HANDSHAKE_BYTES + 3 * WINDOW)
    assert acks.lagging_for(10.0, 4 * WINDOW) == 0.0
    acks.sent(2 * WINDOW)
    assert acks.lagging_for(11.0, 4 * WINDOW) == 0.0  # just over: the clock starts
    assert acks.lagging_for(14.5, 4 * WINDOW) == pytest.approx(3.5)
    acks.acknowledged(4 * WINDOW)  # it read again (a failover stall ended)
    assert acks.lagging_for(15.0, 4 * WINDOW) == 0.0
    acks.sent(5 * WINDOW)
    assert acks.lagging_for(16.0, 4 * WINDOW) == 0.0
    assert acks.lagging_for(17.0, 4 * WINDOW) == pytest.approx(1.0)


def _exchange(client: ClientSession, server: ServerSession, rounds: int = 20) -> None:
    """Deliver bytes both ways until quiet; the server counts what it writes, as the relay does."""
    for _ in range(rounds):
        to_server = client.data_to_send()
        to_client = server.data_to_send()
        if not to_server and not to_client:
            return
        server.acknowledgements.sent(len(to_client))
        for event in server.receive_data(to_server):
            if isinstance(event, ConnectRequest):
                server.accept_connect(event)
            elif isinstance(event, PlayRequest):
                server.accept_play(event)
        client.receive_data(to_client)


def test_our_client_acknowledges_every_window_the_server_announces():
    server = ServerSession(window_ack_size=64 * 1024)
    client = ClientSession("live", "rtmp://localhost/live", auto="play", stream="cam")
    _exchange(client, server)
    sid = next(iter(server.streams))
    frame = bytes(10_000)
    for i in range(100):  # about 1 MB of media, chunked outside the session as the relay does
        data = encode_message(6, VIDEO, sid, 40 * i, frame, server.chunk_size)
        server.acknowledgements.sent(len(data))
        client.receive_data(data)
        server.receive_data(client.data_to_send())
        assert server.acknowledgements.unacknowledged < 64 * 1024 + len(data)
    assert server.acknowledgements.acks >= 1_000_000 // (64 * 1024) - 1


def test_a_client_that_never_reads_leaves_everything_unacknowledged():
    server = ServerSession(window_ack_size=64 * 1024)
    client = ClientSession("live", "rtmp://localhost/live", auto="play", stream="cam")
    _exchange(client, server)
    sid = next(iter(server.streams))
    for i in range(100):
        server.acknowledgements.sent(len(encode_message(6, VIDEO, sid, 40 * i, bytes(10_000), server.chunk_size)))
    assert server.acknowledgements.unacknowledged > 1_000_000
    assert server.acknowledgements.lagging_for(0.0, 4 * 64 * 1024) == 0.0
    assert server.acknowledgements.lagging_for(31.0, 4 * 64 * 1024) == pytest.approx(31.0)


def test_the_session_reads_acknowledgements_and_keeps_the_window_it_announced():
    server = ServerSession(window_ack_size=5000)
    client = ClientSession("live", "rtmp://localhost/live", auto="play", stream="cam")
    _exchange(client, server)
    assert server.acknowledgements.window == 5000
    server.acknowledgements.sent(20_000)
    server.receive_data(encode_message(2, m.ACKNOWLEDGEMENT, 0, 0, m.u32(12_345), 128))
    assert server.acknowledgements.acks == 1
    assert server.acknowledgements.confirmed == 12_345
