"""Client and server state machines talking to each other in memory."""

import pytest
from mpstream.streaming.rtmp import (
    AUDIO,
    VIDEO,
    ClientSession,
    CommandError,
    Connected,
    ConnectRequest,
    DataMessage,
    HandshakeComplete,
    Limits,
    MediaMessage,
    PlayRequest,
    PlayStarted,
    ProtocolError,
    PublishRequest,
    PublishStarted,
    ServerSession,
    Status,
    StreamBegin,
    StreamClosed,
    StreamEOF,
    UnknownCommand,
    amf0,
    amf3,
    shared_media,
)
from mpstream.streaming.rtmp import messages as m
from mpstream.streaming.rtmp.chunk import encode_message
from mpstream.streaming.rtmp.handshake import SIZE


class Pair:
    """A client and a server wired back to back; the server accepts everything unless told."""

    def __init__(self, client, server=None, accept=True, split=None):
        self.client = client
        self.server = server or ServerSession()
        self.accept = accept
        self.split = split  # deliver bytes in slices of this size
        self.server_events = []
        self.client_events = []

    def _deliver(self, session, data):
        if not self.split:
            return session.receive_data(data)
        events = []
        for i in range(0, len(data), self.split):
            events += session.receive_data(data[i:i + self.split])
        return events

    def pump(self):
        for _ in range(50):
            to_server = self.client.data_to_send()
            to_client = self.server.data_to_send()
            if not to_server and not to_client:
                return
            if to_server:
                for event in self._deliver(self.server, to_server):
                    self.server_events.append(event)
                    if isinstance(event, ConnectRequest):
                        (self.server.accept_connect(event) if self.accept else
                         self.server.reject_connect(event, "go away"))
                    elif isinstance(event, PublishRequest):
                        self.server.accept_publish(event)
                    elif isinstance(event, PlayRequest):
                        self.server.accept_play(event)
            if to_client:
                self.client_events += self._deliver(self.client, to_client)
        raise AssertionError("sessions never went quiet")

    def of(self, side, kind):
        return [e for e in (self.server_events if side == "server" else self.client_events) if isinstance(e, kind)]


@pytest.mark.parametrize("split", [None, 1, 7, 4096])
def test_publish_sequence_and_media_arrive_intact(split):
    client = ClientSession("live", "rtmp://[::1]:1935/live", auto="publish", stream="cam?key=abc")
    pair = Pair(client, split=split)
    pair.pump()
    assert pair.of("client", HandshakeComplete) and pair.of("server", HandshakeComplete)
    [request] = pair.of("server", ConnectRequest)
    assert (request.app, request.tc_url) == ("live", "rtmp://[::1]:1935/live")
    [publish] = pair.of("server", PublishRequest)
    assert (publish.name, publish.query, publish.publish_type) == ("cam", "key=abc", "live")
    [started] = pair.of("client", PublishStarted)
    sid = started.stream_id
    assert client.stream_id == sid and pair.of("client", StreamBegin)[0].stream_id == sid

    client.send_metadata(sid, {"width": 640.0, "height": 360.0})
    frames = [(VIDEO, 0, b"\x17\x00" + bytes(40)), (AUDIO, 0, b"\xaf\x00\x12\x10"),
              (VIDEO, 40, b"\x17\x01" + bytes(range(256)) * 200), (AUDIO, 23, b"\xaf\x01" + bytes(300)),
              (VIDEO, 80, b"\x27\x01" + bytes(900))]
    for type_id, ts, body in frames:
        client.send_media(type_id, sid, ts, body)
    pair.pump()
    [meta] = pair.of("server", DataMessage)
    assert meta.values == ["@setDataFrame", "onMetaData", {"width": 640.0, "height": 360.0}]
    media = pair.of("server", MediaMessage)
    assert [(e.type_id, e.timestamp, e.body) for e in media] == frames
    assert all(e.stream_id == sid for e in media)

    client.unpublish(sid, "cam")
    pair.pump()
    closed = pair.of("server", StreamClosed)
    assert [(c.command, c.name) for c in closed] == [("FCUnpublish", "cam"), ("deleteStream", "")]
    assert closed[1].stream_id == sid


def test_shared_media_leaves_every_session_as_the_same_bytes_after_its_own_messages():
    pairs = [Pair(ClientSession("live", "rtmp://127.0.0.1/live", auto="play", stream="cam")) for _ in range(2)]
    for pair in pairs:
        pair.pump()
    sid = pairs[0].of("client", PlayStarted)[0].stream_id
    body = b"\x27\x01" + bytes(9000)
    shared = shared_media(VIDEO, sid, 40, body, pairs[0].server.chunk_size)
    for pair in pairs:
        pair.server.send_raw(shared)
        assert pair.server.data_to_send() is shared  # by reference: one buffer for every player
    pairs[1].server.ping(7)
    pairs[1].server.send_raw(shared)
    out = pairs[1].server.data_to_send()
    assert out.endswith(shared) and len(out) > len(shared)  # its own message first, in order
    events = pairs[1].client.receive_data(out)
    media = [e for e in events if isinstance(e, MediaMessage)]
    assert [(e.type_id, e.timestamp, e.body) for e in media] == [(VIDEO, 40, body)]


def test_play_sequence_and_server_pushes_shared_bytes():
    client = ClientSession("live", "rtmp://127.0.0.1/live", auto="play", stream="cam", buffer_ms=500)
    pair = Pair(client)
    pair.pump()
    [play] = pair.of("server", PlayRequest)
    assert play.name == "cam" and play.start == -2
    [started] = pair.of("client", PlayStarted)
    codes = [s.code for s in pair.of("client", Status)]
    assert codes[:2] == ["NetStream.Play.Reset", "NetStream.Play.Start"]
    sid = started.stream_id
    # What a relay does: chunk once with the server's chunk size and hand the bytes over.
    body = b"\x17\x01" + bytes(10000)
    pair.server.send_raw(encode_message(m.CSID_VIDEO, VIDEO, sid, 1234, body, pair.server.chunk_size))
    pair.server.send_raw(encode_message(m.CSID_DATA, m.DATA_AMF0, sid, 0,
                                        amf0.encode("onMetaData", amf0.ECMAArray(w=1.0)), pair.server.chunk_size))
    pair.server.stream_eof(sid)
    pair.server.send_status(sid, "NetStream.Play.UnpublishNotify", "gone")
    pair.pump()
    [media] = pair.of("client", MediaMessage)
    assert (media.timestamp, media.body) == (1234, body)
    assert pair.of("client", DataMessage)[-1].values == ["onMetaData", {"w": 1.0}]
    assert pair.of("client", StreamEOF)[0].stream_id == sid
    assert pair.of("client", Status)[-1].code == "NetStream.Play.UnpublishNotify"


def test_rejected_connect_reports_command_error():
    client = ClientSession("live", "rtmp://h/live", auto="play", stream="x")
    pair = Pair(client, accept=False)
    pair.pump()
    [error] = pair.of("client", CommandError)
    assert error.command == "connect" and error.info["code"] == "NetConnection.Connect.Rejected"
    assert not client.connected and not pair.of("client", Connected)


def test_unknown_command_is_answered_with_error_and_session_survives():
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client)
    pair.pump()
    client._call(0, "doSomethingOdd", None, "arg")
    pair.pump()
    [unknown] = pair.of("server", UnknownCommand)
    assert unknown.command.name == "doSomethingOdd"
    assert pair.of("client", CommandError)[0].command == "doSomethingOdd"
    client.create_stream()
    pair.pump()
    assert pair.server.streams == {1}


def test_amf3_command_and_data_messages_are_understood():
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client)
    pair.pump()
    body = b"\x00" + amf0.encode("createStream", 7.0, None)
    client.send_message(m.CSID_COMMAND, m.COMMAND_AMF3, 0, 0, body)
    client.send_message(m.CSID_DATA, m.DATA_AMF3, 1, 0, b"\x00" + amf0.encode("onMetaData") + b"\x11" +
                        amf3.encode({"width": 320}))
    pair.pump()
    assert pair.server.streams == {1}
    [data] = pair.of("server", DataMessage)
    assert data.values == ["onMetaData", {"width": 320}]
    assert amf0.decode_all(data.body) == data.values  # re-encoded as AMF0 for players


def test_ping_is_answered_and_acknowledgements_are_sent():
    client = ClientSession("live", "rtmp://h/live", window_ack_size=1000)
    pair = Pair(client, server=ServerSession(window_ack_size=5000))
    pair.pump()
    pair.server.ping(42)
    pair.pump()
    # the client answered the ping: the server has nothing pending and no error
    client.send_media(VIDEO, 1, 0, bytes(20000))
    before = len(pair.server_events)
    pair.pump()
    assert len(pair.server_events) == before + 1
    # The server told the client to acknowledge every 5000 bytes; feed it and watch for Acks.
    pair.server.send_raw(encode_message(m.CSID_VIDEO, VIDEO, 1, 0, bytes(20000), pair.server.chunk_size))
    data = pair.server.data_to_send()
    client.receive_data(data)
    out = client.data_to_send()
    assert bytes([m.ACKNOWLEDGEMENT]) in out[:16]


def test_commands_before_connect_and_second_connect_are_protocol_errors():
    server = ServerSession()
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client, server)
    pair.pump()
    with pytest.raises(ProtocolError):
        client._call(0, "connect", {"app": "live"})
        server.receive_data(client.data_to_send())

    fresh_server = ServerSession()
    c0c1 = bytes([3]) + bytes(SIZE)
    fresh_server.receive_data(c0c1 + bytes(SIZE))
    with pytest.raises(ProtocolError):
        fresh_server.receive_data(encode_message(3, m.COMMAND_AMF0, 0, 0, amf0.encode("createStream", 2.0, None),
                                                 128))


def test_bad_handshake_version_is_refused():
    with pytest.raises(ProtocolError):
        ServerSession().receive_data(b"GET / HTTP/1.1\r\n")


def test_stream_count_limit():
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client, server=ServerSession(limits=Limits(max_streams=2)))
    pair.pump()
    client.create_stream()
    client.create_stream()
    pair.pump()
    client.create_stream()
    with pytest.raises(ProtocolError):
        pair.pump()


def test_aggregate_messages_are_split():
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client)
    pair.pump()

    def sub(type_id, ts, body):
        return bytes([type_id]) + len(body).to_bytes(3, "big") + ts.to_bytes(3, "big") + b"\x00\x00\x00\x00" + \
            body + (11 + len(body)).to_bytes(4, "big")

    aggregate = sub(VIDEO, 100, b"\x17\x01v") + sub(AUDIO, 120, b"\xaf\x01a")
    client.send_message(m.CSID_VIDEO, m.AGGREGATE, 1, 5000, aggregate)
    pair.pump()
    media = pair.of("server", MediaMessage)
    assert [(e.type_id, e.timestamp, e.body) for e in media] == [(VIDEO, 5000, b"\x17\x01v"),
                                                                 (AUDIO, 5020, b"\xaf\x01a")]


def test_amf3_data_that_amf0_cannot_carry_is_skipped_not_fatal():
    client = ClientSession("live", "rtmp://h/live")
    pair = Pair(client)
    pair.pump()
    client.send_message(m.CSID_DATA, m.DATA_AMF3, 1, 0, b"\x00" + amf0.encode("onBlob") + b"\x11" +
                        amf3.encode(b"\x01\x02"))
    client.send_message(m.CSID_DATA, m.DATA_AMF0, 1, 0, amf0.encode("onText", "ok"))
    pair.pump()
    assert [d.values for d in pair.of("server", DataMessage)] == [["onText", "ok"]]
