"""RTMP connection state machines: feed received bytes in, get events and bytes to send out.

Both sides work the same way (no sockets, no clock, no threads):

    session = ServerSession()            # or ClientSession(app, tc_url, auto="play", stream="cam")
    events = session.receive_data(data)  # raises ProtocolError: close the connection
    sock.sendall(session.data_to_send())

Control messages (chunk size, acknowledgements, window size, pings, aborts) are
handled inside; what the application must decide or consume comes out as events
(see `events`). Methods queue outgoing messages; call `data_to_send()` after them.
The peer's Acknowledgements of what we sent are kept in `session.acknowledgements`
(`flow.Acknowledgements`): tell it every byte written (`acknowledgements.sent(n)`),
including bytes chunked elsewhere.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from mpstream.streaming.rtmp import amf0
from mpstream.streaming.rtmp import messages as m
from mpstream.streaming.rtmp.chunk import ChunkReader, ChunkWriter, Message, encode_message
from mpstream.streaming.rtmp.errors import AMFError, LimitExceeded, ProtocolError
from mpstream.streaming.rtmp.events import (
    CommandError,
    Connected,
    ConnectRequest,
    DataMessage,
    Event,
    HandshakeComplete,
    MediaMessage,
    PlayRequest,
    PlayStarted,
    PublishRequest,
    PublishStarted,
    Status,
    StreamBegin,
    StreamClosed,
    StreamCreated,
    StreamEOF,
    UnknownCommand,
)
from mpstream.streaming.rtmp.flow import Acknowledgements
from mpstream.streaming.rtmp.handshake import ClientHandshake, ServerHandshake
from mpstream.streaming.rtmp.limits import Limits

DEFAULT_WINDOW_ACK_SIZE = 2_500_000


def shared_media(type_id: int, stream_id: int, timestamp: int, body: bytes, chunk_size: int) -> bytes:
    """An audio, video or data message chunked once for every session that sends at `chunk_size`
    (give it to each with `send_raw`): type-0 headers, so the bytes do not depend on what a session
    sent before, on the chunk streams that sessions keep for media (never used by `send_message`
    of a server session)."""
    csid = m.CSID_VIDEO if type_id == m.VIDEO else m.CSID_AUDIO if type_id == m.AUDIO else m.CSID_DATA
    return encode_message(csid, type_id, stream_id, timestamp, body, chunk_size)


def _status(level: str, code: str, description: str, **extra: object) -> dict:
    return {"level": level, "code": code, "description": description, **extra}


def _split_name(name: str) -> tuple[str, str]:
    base, _, query = name.partition("?")
    return base, query


def _app_from_tc_url(tc_url: str) -> str:
    """The first path segment of tcUrl ("" when it does not parse: ``rtmp://[::1/live``)."""
    try:
        path = urlsplit(tc_url).path
    except ValueError:
        return ""
    return path.strip("/").partition("/")[0]


def _message_stream_id(value: object) -> int | None:
    """A message stream id sent as an AMF number, or None when it cannot be one (NaN, inf, 1.5, -1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value != int(value) or not 0 <= value < 1 << 32:
        return None
    return int(value)


class _Session:
    def __init__(self, limits: Limits | None, handshake: ServerHandshake | ClientHandshake):
        self.limits = limits or Limits()
        self._reader = ChunkReader(self.limits)
        self._writer = ChunkWriter()
        self._out: list[bytes] = []  # what waits for data_to_send, in order (shared bytes by reference)
        self._handshake = handshake
        self._peer_window = 0  # the peer wants an Acknowledgement every this many bytes
        self._acked = 0
        self._window_sent = 0
        self.acknowledgements = Acknowledgements(DEFAULT_WINDOW_ACK_SIZE)  # of what we send
        self._held: list[Message] = []  # received while an answer of ours is pending (see holding)
        self._sub_messages = 0  # aggregate sub-messages, which cost as much as messages
        self._out.append(bytes(handshake.outgoing))  # C0+C1 (client) or nothing yet (server)
        handshake.outgoing.clear()

    # ------------------------------------------------------------ I/O

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    @property
    def chunk_size(self) -> int:
        """Our outgoing chunk size (bytes made with `chunk.encode_message` must use it)."""
        return self._writer.chunk_size

    @property
    def bytes_received(self) -> int:
        return self._reader.bytes_received

    @property
    def messages_received(self) -> int:
        """Messages parsed so far, each aggregate sub-message and each empty message counted."""
        return self._reader.messages_received + self._sub_messages

    @property
    def stalled(self) -> bool:
        """Input is waiting: the last `receive_data` stopped at its `max_messages` or at a pending answer."""
        return self._reader.stalled or bool(self._held)

    @property
    def buffered(self) -> int:
        """Bytes held for the peer's unfinished messages and unparsed input."""
        held = self._held
        return self._reader.buffered + (sum(len(message.body) for message in held) if held else 0)

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)  # one part (shared media): not copied

    def receive_data(self, data: bytes, max_messages: int | None = None) -> list[Event]:
        """Process bytes from the peer; raises `ProtocolError` when the connection must end.

        With `max_messages`, at most that many messages are parsed and the rest waits
        (`stalled`); call again, with b"" if nothing new came, to go on. Messages that
        follow a request still to be answered (``connect``) also wait for the next call.
        """
        events: list[Event] = []
        if not self._handshake.done:
            data = self._handshake.feed(data)
            if self._handshake.outgoing:
                self._out.append(bytes(self._handshake.outgoing))
            self._handshake.outgoing.clear()
            if not self._handshake.done:
                return events
            events.append(HandshakeComplete())
            self._on_handshake_complete()
            if not data:
                return events
        messages = self._reader.feed(data, max_messages)
        if self._held:
            messages = self._held + messages
            self._held = []
        for index, message in enumerate(messages):
            if self.holding():
                self._held = messages[index:]
                break
            self._dispatch(message, events)
        if self._peer_window and self._reader.bytes_received - self._acked >= self._peer_window:
            self._acked = self._reader.bytes_received
            self.send_message(m.CSID_CONTROL, m.ACKNOWLEDGEMENT, 0, 0, m.u32(self._acked))
        return events

    # ------------------------------------------------------------ sending

    def send_message(self, csid: int, type_id: int, stream_id: int, timestamp: int, body: bytes) -> None:
        self._out.append(self._writer.write(csid, type_id, stream_id, timestamp, body))

    def send_raw(self, chunked: bytes) -> None:
        """Queue bytes chunked elsewhere (`shared_media` at `chunk_size`), by reference: a relay hands the
        same bytes to every player's session without a copy."""
        self._out.append(chunked)

    def send_command(self, stream_id: int, command: m.Command) -> None:
        self.send_message(m.CSID_COMMAND, m.COMMAND_AMF0, stream_id, 0, command.encode())

    def set_chunk_size(self, size: int) -> None:
        """Tell the peer our new outgoing chunk size and use it from now on."""
        if not 1 <= size <= 0x7FFFFFFF:
            raise ValueError("chunk size out of range")
        self.send_message(m.CSID_CONTROL, m.SET_CHUNK_SIZE, 0, 0, m.u32(size))
        self._writer.chunk_size = size

    def send_window_ack_size(self, size: int) -> None:
        """Ask the peer to acknowledge every `size` bytes it receives from us."""
        self._window_sent = size
        self.acknowledgements.window = size
        self.send_message(m.CSID_CONTROL, m.WINDOW_ACK_SIZE, 0, 0, m.u32(size))

    def send_user_control(self, event: int, *values: int) -> None:
        self.send_message(m.CSID_CONTROL, m.USER_CONTROL, 0, 0, m.user_control(event, *values))

    def ping(self, timestamp: int) -> None:
        self.send_user_control(m.PING_REQUEST, timestamp)

    def send_media(self, type_id: int, stream_id: int, timestamp: int, body: bytes) -> None:
        """An audio or video message (FLV tag body)."""
        csid = m.CSID_VIDEO if type_id == m.VIDEO else m.CSID_AUDIO
        self.send_message(csid, type_id, stream_id, timestamp, body)

    def send_data(self, stream_id: int, timestamp: int, *values: object) -> None:
        """An AMF0 data message with `values`."""
        self.send_message(m.CSID_DATA, m.DATA_AMF0, stream_id, timestamp, amf0.encode(*values))

    def _send_error(self, stream_id: int, tid: float, description: str,
                    code: str = "NetConnection.Call.Failed") -> None:
        self.send_command(stream_id, m.Command("_error", tid, None, [_status("error", code, description)]))

    # ------------------------------------------------------------ receiving

    def _on_handshake_complete(self) -> None:
        pass

    def holding(self) -> bool:
        """Whether further messages wait until the application has answered a request."""
        return False

    def _dispatch(self, msg: Message, events: list[Event]) -> None:
        t = msg.type_id
        if t == m.VIDEO or t == m.AUDIO:
            if msg.body:  # an empty FLV tag body carries nothing a player could use
                events.append(MediaMessage(t, msg.stream_id, msg.timestamp, msg.body))
        elif t == m.DATA_AMF0 or t == m.DATA_AMF3:
            values = m.decode_data(t, msg.body, self.limits.max_amf_depth)
            if t == m.DATA_AMF0:
                body = msg.body
            else:
                try:
                    body = amf0.encode(*values)  # players expect AMF0
                except AMFError:
                    return  # an AMF3-only value (byte array, ...): nothing a player could use
            events.append(DataMessage(msg.stream_id, msg.timestamp, values, body))
        elif t == m.COMMAND_AMF0 or t == m.COMMAND_AMF3:
            self._on_command(m.decode_command(t, msg.body, self.limits.max_amf_depth), msg.stream_id, events)
        elif t == m.SET_CHUNK_SIZE:
            m.parse_u32(msg.body, "Set Chunk Size")  # the reader has applied it already
        elif t == m.ABORT:
            self._reader.abort(m.parse_u32(msg.body, "Abort"))
        elif t == m.WINDOW_ACK_SIZE:
            size = m.parse_u32(msg.body, "Window Acknowledgement Size")
            if size == 0:
                raise ProtocolError("window acknowledgement size 0")
            self._peer_window = size
        elif t == m.ACKNOWLEDGEMENT:
            self.acknowledgements.acknowledged(m.parse_u32(msg.body, "Acknowledgement"))
        elif t == m.SET_PEER_BANDWIDTH:
            size = m.parse_u32(msg.body, "Set Peer Bandwidth")
            if size and size != self._window_sent:
                self.send_window_ack_size(size)
        elif t == m.USER_CONTROL:
            self._on_user_control(*m.parse_user_control(msg.body), events)
        elif t == m.AGGREGATE:
            parts = m.split_aggregate(msg.body, msg.timestamp, self.limits.max_aggregate_messages)
            self._sub_messages += len(parts)
            for type_id, ts, body in parts:
                if type_id in (m.AUDIO, m.VIDEO) and body:
                    events.append(MediaMessage(type_id, msg.stream_id, ts, body))
        # Shared objects need nothing from us.

    def _on_user_control(self, event: int, data: bytes, events: list[Event]) -> None:
        if event == m.PING_REQUEST and len(data) >= 4:
            self.send_user_control(m.PING_RESPONSE, m.parse_u32(data, "ping"))

    def _on_command(self, cmd: m.Command, stream_id: int, events: list[Event]) -> None:
        raise NotImplementedError


class ServerSession(_Session):
    """The server side of one RTMP connection.

    Events to answer: `ConnectRequest` (accept_connect/reject_connect), `PublishRequest`
    (accept_publish/reject_publish), `PlayRequest` (accept_play/reject_play). Also reported:
    `MediaMessage`, `DataMessage`, `StreamClosed`, `UnknownCommand` (already answered).
    createStream, releaseStream, FCPublish and the like are answered here.
    """

    def __init__(self, limits: Limits | None = None, chunk_size: int = 4096,
                 window_ack_size: int = DEFAULT_WINDOW_ACK_SIZE, peer_bandwidth: int = DEFAULT_WINDOW_ACK_SIZE):
        super().__init__(limits, ServerHandshake())
        self.desired_chunk_size = chunk_size
        self.window_ack_size = window_ack_size
        self.peer_bandwidth = peer_bandwidth
        self.app: str | None = None
        self.tc_url = ""
        self.connect_params: dict = {}
        self.streams: set[int] = set()
        self._next_stream_id = 1
        self._pending_connect: ConnectRequest | None = None

    @property
    def connected(self) -> bool:
        return self.app is not None

    def holding(self) -> bool:
        return self._pending_connect is not None

    def _echo(self, name: str) -> str:
        """A peer's name as we say it back: never longer than a name may be."""
        return name[:self.limits.max_name_length]

    # ------------------------------------------------------------ answers

    def accept_connect(self, request: ConnectRequest) -> None:
        self.send_window_ack_size(self.window_ack_size)
        self.send_message(m.CSID_CONTROL, m.SET_PEER_BANDWIDTH, 0, 0,
                          m.set_peer_bandwidth(self.peer_bandwidth, m.LIMIT_DYNAMIC))
        self.set_chunk_size(self.desired_chunk_size)
        encoding = request.params.get("objectEncoding", 0)
        info = _status("status", "NetConnection.Connect.Success", "Connection succeeded.",
                       objectEncoding=3.0 if encoding == 3 else 0.0)  # AMF0 or AMF3, nothing else
        props = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "mode": 1.0}
        self.send_command(0, m.Command("_result", request.transaction_id, props, [info]))
        self.app = request.app
        self.tc_url = request.tc_url
        self.connect_params = request.params
        self._pending_connect = None

    def reject_connect(self, request: ConnectRequest, description: str) -> None:
        self._pending_connect = None
        self._send_error(0, request.transaction_id, description, "NetConnection.Connect.Rejected")

    def send_status(self, stream_id: int, code: str, description: str, level: str = "status",
                    **extra: object) -> None:
        self.send_command(stream_id, m.Command("onStatus", 0, None, [_status(level, code, description, **extra)]))

    def accept_publish(self, request: PublishRequest) -> None:
        self.send_user_control(m.STREAM_BEGIN, request.stream_id)
        name = self._echo(request.name)
        self.send_status(request.stream_id, "NetStream.Publish.Start", f"{name} is now published.", details=name)

    def reject_publish(self, request: PublishRequest, description: str,
                       code: str = "NetStream.Publish.BadName") -> None:
        self.send_status(request.stream_id, code, description, level="error", details=self._echo(request.name))

    def accept_play(self, request: PlayRequest) -> None:
        sid = request.stream_id
        name = self._echo(request.name)
        self.send_user_control(m.STREAM_BEGIN, sid)
        self.send_status(sid, "NetStream.Play.Reset", f"Playing and resetting {name}.", details=name)
        self.send_status(sid, "NetStream.Play.Start", f"Started playing {name}.", details=name)
        self.send_message(m.CSID_COMMAND, m.DATA_AMF0, sid, 0, amf0.encode("|RtmpSampleAccess", True, True))
        self.send_status(sid, "NetStream.Data.Start", "Started playing.")

    def reject_play(self, request: PlayRequest, description: str,
                    code: str = "NetStream.Play.StreamNotFound") -> None:
        self.send_status(request.stream_id, code, description, level="error", details=self._echo(request.name))

    def stream_begin(self, stream_id: int) -> None:
        self.send_user_control(m.STREAM_BEGIN, stream_id)

    def stream_eof(self, stream_id: int) -> None:
        self.send_user_control(m.STREAM_EOF, stream_id)

    # ------------------------------------------------------------ commands in

    def _on_command(self, cmd: m.Command, stream_id: int, events: list[Event]) -> None:
        name = cmd.name
        tid = cmd.transaction_id
        if name == "connect":
            if self.app is not None or self._pending_connect is not None:
                raise ProtocolError("second connect on one connection")
            params = cmd.command_object if isinstance(cmd.command_object, dict) else {}
            app = params.get("app", "")
            tc_url = params.get("tcUrl", "")
            request = ConnectRequest(tid, str(app).strip("/") if isinstance(app, str) else "",
                                     tc_url if isinstance(tc_url, str) else "", dict(params))
            if not request.app and request.tc_url:
                request.app = _app_from_tc_url(request.tc_url)
            self._pending_connect = request
            events.append(request)
            return
        if self.app is None:
            raise ProtocolError(f"command {name!r} before connect was accepted")
        if name == "createStream":
            if len(self.streams) >= self.limits.max_streams:
                raise LimitExceeded(f"more than {self.limits.max_streams} streams on one connection")
            sid = self._next_stream_id
            self._next_stream_id += 1
            self.streams.add(sid)
            self.send_command(0, m.Command("_result", tid, None, [float(sid)]))
        elif name == "publish" or name == "play":
            if stream_id not in self.streams:
                self._send_error(stream_id, tid, f"{name} on stream {stream_id} that was not created")
                return
            raw = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
            base, query = _split_name(raw)
            if name == "publish":
                kind = cmd.args[1] if len(cmd.args) > 1 and isinstance(cmd.args[1], str) else "live"
                events.append(PublishRequest(stream_id, base, query, kind))
            else:
                start = cmd.args[1] if len(cmd.args) > 1 and isinstance(cmd.args[1], (int, float)) else -2.0
                events.append(PlayRequest(stream_id, base, query, float(start)))
        elif name == "deleteStream":
            sid = _message_stream_id(cmd.args[0]) if cmd.args else stream_id
            if sid is None:
                return  # not a stream id: nothing to delete
            self.streams.discard(sid)
            events.append(StreamClosed(sid, name))
        elif name == "closeStream":
            events.append(StreamClosed(stream_id, name))
        elif name == "FCUnpublish":
            raw = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
            events.append(StreamClosed(stream_id, name, _split_name(raw)[0]))
        elif name in ("releaseStream", "FCPublish", "FCSubscribe", "_checkbw"):
            if tid:
                self.send_command(0, m.Command("_result", tid, None, [amf0.UNDEFINED]))
        elif name == "getStreamLength":
            if tid:
                self.send_command(0, m.Command("_result", tid, None, [0.0]))
        elif name in ("receiveAudio", "receiveVideo", "pause", "seek", "_result", "_error", "onStatus",
                      "onBWDone", "_onbwdone", "_onbwcheck"):
            pass  # live streams cannot pause or seek; answers to our own calls need nothing
        else:
            if tid:
                self._send_error(stream_id, tid, f"unknown command {name[:64]!r}")
            events.append(UnknownCommand(stream_id, cmd))


class ClientSession(_Session):
    """The client side of one RTMP connection (what a publisher or a player speaks).

    Construction queues C0+C1; after the handshake the session sends Set Chunk Size and
    `connect` by itself. With `auto="publish"` or `auto="play"` and a `stream` name it
    also runs the usual sequence (releaseStream, FCPublish, createStream, publish / play
    with a buffer length) and reports `PublishStarted` or `PlayStarted`; otherwise call
    `create_stream`, `publish` and `play` yourself after `Connected`.

        c = ClientSession(url.app, url.tc_url, auto="publish", stream=url.stream)
        ... PublishStarted(stream_id) -> c.send_metadata(sid, {...}); c.send_media(VIDEO, sid, ts, body)

    Other events: `Status` (every onStatus), `StreamBegin`/`StreamEOF`, `MediaMessage`,
    `DataMessage`, `CommandError` (an `_error` answer; for connect: refused).
    """

    def __init__(self, app: str, tc_url: str, *, auto: str | None = None, stream: str = "",
                 chunk_size: int = 4096, buffer_ms: int = 1000, flash_ver: str = "FMLE/3.0 (compatible; mpstream)",
                 limits: Limits | None = None, window_ack_size: int = DEFAULT_WINDOW_ACK_SIZE):
        if auto not in (None, "publish", "play"):
            raise ValueError("auto must be None, 'publish' or 'play'")
        super().__init__(limits, ClientHandshake())
        self.app = app
        self.tc_url = tc_url
        self.auto = auto
        self.stream = stream
        self.desired_chunk_size = chunk_size
        self.buffer_ms = buffer_ms
        self.flash_ver = flash_ver
        self.window_ack_size = window_ack_size
        self.connected = False
        self.stream_id: int | None = None  # the stream of the automatic sequence
        self._next_tid = 1
        self._pending: dict[float, str] = {}

    def _call(self, stream_id: int, name: str, command_object: object = None, *args: object,
              expect_answer: bool = True) -> float:
        tid = 0.0
        if expect_answer:
            tid = float(self._next_tid)
            self._next_tid += 1
            self._pending[tid] = name
        self.send_command(stream_id, m.Command(name, tid, command_object, list(args)))
        return tid

    def _on_handshake_complete(self) -> None:
        if self.desired_chunk_size != self._writer.chunk_size:
            self.set_chunk_size(self.desired_chunk_size)
        params: dict = {"app": self.app, "type": "nonprivate", "flashVer": self.flash_ver, "tcUrl": self.tc_url}
        if self.auto != "publish":
            params.update(fpad=False, capabilities=15.0, audioCodecs=4071.0, videoCodecs=252.0,
                          videoFunction=1.0, objectEncoding=0.0)
        self._call(0, "connect", params)

    # ------------------------------------------------------------ requests

    def create_stream(self) -> float:
        return self._call(0, "createStream")

    def publish(self, stream_id: int, name: str, publish_type: str = "live") -> None:
        self._call(stream_id, "publish", None, name, publish_type, expect_answer=False)

    def play(self, stream_id: int, name: str, start: float = -2.0) -> None:
        self._call(stream_id, "play", None, name, float(start), expect_answer=False)
        self.set_buffer_length(stream_id, self.buffer_ms)

    def set_buffer_length(self, stream_id: int, milliseconds: int) -> None:
        self.send_user_control(m.SET_BUFFER_LENGTH, stream_id, milliseconds)

    def send_metadata(self, stream_id: int, metadata: dict) -> None:
        """@setDataFrame onMetaData, as encoders send stream properties."""
        self.send_data(stream_id, 0, "@setDataFrame", "onMetaData", amf0.ECMAArray(metadata))

    def unpublish(self, stream_id: int, name: str) -> None:
        self._call(0, "FCUnpublish", None, name)
        self.delete_stream(stream_id)

    def delete_stream(self, stream_id: int) -> None:
        self._call(0, "deleteStream", None, float(stream_id), expect_answer=False)

    # ------------------------------------------------------------ answers in

    def _on_user_control(self, event: int, data: bytes, events: list[Event]) -> None:
        if event == m.STREAM_BEGIN and len(data) >= 4:
            events.append(StreamBegin(m.parse_u32(data, "StreamBegin")))
        elif event == m.STREAM_EOF and len(data) >= 4:
            events.append(StreamEOF(m.parse_u32(data, "StreamEOF")))
        else:
            super()._on_user_control(event, data, events)

    def _on_command(self, cmd: m.Command, stream_id: int, events: list[Event]) -> None:
        name = cmd.name
        if name == "_result" or name == "_error":
            request = self._pending.pop(cmd.transaction_id, None)
            info = cmd.args[0] if cmd.args else None
            if name == "_error":
                events.append(CommandError(request or "", cmd.transaction_id, info))
            elif request == "connect":
                self.connected = True
                events.append(Connected(cmd.command_object, info))
                if self.auto == "publish":
                    self._call(0, "releaseStream", None, self.stream)
                    self._call(0, "FCPublish", None, self.stream)
                if self.auto:
                    self.create_stream()
            elif request == "createStream":
                if not isinstance(info, (int, float)) or isinstance(info, bool) or not 0 < info < 1 << 32:
                    raise ProtocolError(f"createStream answered with {info!r}")
                sid = int(info)
                events.append(StreamCreated(sid))
                if self.auto and self.stream_id is None:
                    self.stream_id = sid
                    if self.auto == "publish":
                        self.publish(sid, self.stream)
                    else:
                        self.play(sid, self.stream)
        elif name == "onStatus":
            info = cmd.args[0] if cmd.args and isinstance(cmd.args[0], dict) else {}
            status = Status(stream_id, str(info.get("level", "")), str(info.get("code", "")),
                            str(info.get("description", "")), info)
            events.append(status)
            if status.code == "NetStream.Publish.Start":
                events.append(PublishStarted(stream_id))
            elif status.code == "NetStream.Play.Start":
                events.append(PlayStarted(stream_id))
        elif name in ("onBWDone", "onFCPublish", "onFCUnpublish", "_onbwcheck", "_onbwdone", "close"):
            pass
        else:
            if cmd.transaction_id:
                self._send_error(stream_id, cmd.transaction_id, f"unknown command {name[:64]!r}")
            events.append(UnknownCommand(stream_id, cmd))


__all__ = ["ClientSession", "ServerSession", "AMFError", "LimitExceeded", "ProtocolError", "shared_media"]
