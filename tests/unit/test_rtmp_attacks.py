"""The protocol layer against the attacks of issue 21: CPU rationing, memory bounds, bad numbers."""

import math

import pytest
from mpstream.streaming.rtmp import (
    ConnectRequest,
    LimitExceeded,
    MediaMessage,
    PlayRequest,
    ServerSession,
    StreamClosed,
    amf0,
)
from mpstream.streaming.rtmp import messages as m
from mpstream.streaming.rtmp.chunk import ChunkReader, encode_message
from mpstream.streaming.rtmp.handshake import SIZE
from mpstream.streaming.rtmp.limits import Limits

HANDSHAKE = bytes([3]) + bytes(SIZE) + bytes(SIZE)


def command(*values, stream_id=0):
    return encode_message(3, m.COMMAND_AMF0, stream_id, 0, amf0.encode(*values), 128)


def connected(limits=None) -> ServerSession:
    server = ServerSession(limits)
    server.receive_data(HANDSHAKE)
    [request] = server.receive_data(command("connect", 1.0, {"app": "live"}))
    server.accept_connect(request)
    server.data_to_send()
    return server


def empty_message_flood(count: int) -> bytes:
    """A zero-length video message, then 1-byte type-3 headers: each one a whole (empty) message."""
    return bytes([0x06, 0, 0, 0, 0, 0, 0, m.VIDEO, 1, 0, 0, 0]) + bytes([0xC6]) * count


def test_empty_messages_are_counted_and_rationed():
    reader = ChunkReader()
    messages = reader.feed(empty_message_flood(10000), max_messages=100)
    assert len(messages) == 100 and reader.stalled
    assert reader.messages_received == 100
    messages = reader.feed(b"", max_messages=50_000)
    assert len(messages) == 9901 and not reader.stalled
    assert reader.buffered == 0


def test_session_rations_messages_and_reports_no_empty_media():
    server = connected()
    events = server.receive_data(empty_message_flood(5000), max_messages=1000)
    assert server.stalled and not any(isinstance(e, MediaMessage) for e in events)
    assert server.messages_received == 1000 + 1  # and the connect
    server.receive_data(b"")
    assert not server.stalled and server.messages_received == 5001 + 1


def test_aggregate_sub_messages_count_and_are_bounded():
    server = connected(Limits(max_aggregate_messages=10))
    part = bytes([m.VIDEO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + (11).to_bytes(4, "big")  # empty sub-message
    before = server.messages_received
    events = server.receive_data(encode_message(4, m.AGGREGATE, 1, 0, part * 10, 128))
    assert events == [] and server.messages_received - before == 1 + 10
    with pytest.raises(LimitExceeded):
        server.receive_data(encode_message(4, m.AGGREGATE, 1, 0, part * 11, 128))


def test_unfinished_messages_on_many_chunk_streams_are_bounded_together():
    reader = ChunkReader(Limits(max_buffered_bytes=8 << 20, max_message_size=4 << 20, max_chunk_size=1 << 20))
    reader.set_chunk_size(1 << 20)
    with pytest.raises(LimitExceeded, match="unfinished"):
        for csid in range(3, 60):  # each a 4 MiB message of which only the first 1 MiB chunk comes
            header = bytes([csid, 0, 0, 0]) + (4 << 20).to_bytes(3, "big") + bytes([m.VIDEO, 1, 0, 0, 0])
            reader.feed(header + bytes(1 << 20))
    assert csid < 12


def test_abort_and_new_headers_release_what_a_partial_message_held():
    reader = ChunkReader()
    header = bytes([6, 0, 0, 0]) + (1000).to_bytes(3, "big") + bytes([m.VIDEO, 1, 0, 0, 0])
    reader.feed(header + bytes(128))
    assert reader.buffered == 128
    reader.abort(6)
    assert reader.buffered == 0
    reader.feed(header + bytes(128))
    reader.feed(header + bytes(128))  # a full header abandons the partial message
    assert reader.buffered == 128


def test_connect_create_stream_and_play_in_one_write_all_arrive():
    server = ServerSession()
    server.receive_data(HANDSHAKE)
    data = (command("connect", 1.0, {"app": "live"}) + command("createStream", 2.0, None)
            + command("play", 0.0, None, "cam", stream_id=1))
    events = server.receive_data(data)
    assert [type(e) for e in events] == [ConnectRequest] and server.holding() and server.stalled
    server.accept_connect(events[0])
    events = server.receive_data(b"")
    assert [type(e) for e in events] == [PlayRequest] and events[0].name == "cam"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 1.5, 2.0 ** 40])
def test_delete_stream_with_a_number_that_is_no_stream_id(value):
    server = connected()
    server.receive_data(command("createStream", 2.0, None))
    assert server.receive_data(command("deleteStream", 0.0, None, value)) == []


def test_delete_stream_with_a_stream_id():
    server = connected()
    server.receive_data(command("createStream", 2.0, None))
    [closed] = server.receive_data(command("deleteStream", 0.0, None, 1.0))
    assert closed == StreamClosed(1, "deleteStream")


@pytest.mark.parametrize("tc_url", ["rtmp://[::1/live", "rtmp://[zz]:x/live", "\x00"])
def test_connect_with_a_tc_url_that_does_not_parse(tc_url):
    server = ServerSession()
    server.receive_data(HANDSHAKE)
    [request] = server.receive_data(command("connect", 1.0, {"tcUrl": tc_url}))
    assert request.app == ""


@pytest.mark.parametrize("tid", [math.nan, math.inf])
def test_transaction_ids_that_are_no_numbers_are_not_echoed(tid):
    assert m.decode_command(m.COMMAND_AMF0, amf0.encode("x", tid, None)).transaction_id == 0.0


def test_answers_echo_at_most_a_name_long_name():
    server = connected(Limits(max_name_length=16))
    server.receive_data(command("createStream", 2.0, None))
    server.data_to_send()
    [request] = server.receive_data(command("play", 0.0, None, "n" * 100_000, stream_id=1))
    server.reject_play(request, "no")
    assert len(server.data_to_send()) < 400


def test_limits_refuse_a_buffer_smaller_than_a_message():
    with pytest.raises(ValueError):
        Limits(max_buffered_bytes=1000, max_message_size=2000)
