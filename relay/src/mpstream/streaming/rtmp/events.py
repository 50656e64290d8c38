"""What `ServerSession.receive_data` and `ClientSession.receive_data` report."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpstream.streaming.rtmp.messages import AUDIO, VIDEO, Command


class Event:
    """Base class of everything a session reports."""

    __slots__ = ()


@dataclass(slots=True)
class HandshakeComplete(Event):
    pass


# ---------------------------------------------------------------- both sides

@dataclass(slots=True)
class MediaMessage(Event):
    """An audio (8) or video (9) message; `body` is an FLV tag body."""

    type_id: int
    stream_id: int
    timestamp: int
    body: bytes

    @property
    def is_video(self) -> bool:
        return self.type_id == VIDEO

    @property
    def is_audio(self) -> bool:
        return self.type_id == AUDIO


@dataclass(slots=True)
class DataMessage(Event):
    """A data message (@setDataFrame, onMetaData, ...): decoded `values` and the raw AMF0 `body`."""

    stream_id: int
    timestamp: int
    values: list
    body: bytes

    @property
    def name(self) -> str:
        return self.values[0] if self.values and isinstance(self.values[0], str) else ""


@dataclass(slots=True)
class UnknownCommand(Event):
    """A command the session does not know; it has been answered with `_error` if it expected an answer."""

    stream_id: int
    command: Command


# ---------------------------------------------------------------- server side

@dataclass(slots=True)
class ConnectRequest(Event):
    """The client's `connect`: answer with `accept_connect` or `reject_connect`."""

    transaction_id: float
    app: str
    tc_url: str
    params: dict = field(default_factory=dict)


@dataclass(slots=True)
class PublishRequest(Event):
    """`publish` on a stream: answer with `accept_publish` or `reject_publish`."""

    stream_id: int
    name: str  # without the query string
    query: str  # what followed '?' in the name (e.g. "key=secret")
    publish_type: str  # live, record or append


@dataclass(slots=True)
class PlayRequest(Event):
    """`play` on a stream: answer with `accept_play` or `reject_play`."""

    stream_id: int
    name: str
    query: str
    start: float


@dataclass(slots=True)
class StreamClosed(Event):
    """The client ended a stream: deleteStream/closeStream (stream_id) or FCUnpublish (name, stream 0)."""

    stream_id: int
    command: str
    name: str = ""


# ---------------------------------------------------------------- client side

@dataclass(slots=True)
class Connected(Event):
    """The server accepted `connect`."""

    properties: object
    info: object


@dataclass(slots=True)
class StreamCreated(Event):
    stream_id: int


@dataclass(slots=True)
class Status(Event):
    """An onStatus from the server (NetStream.Publish.Start, NetStream.Play.UnpublishNotify, ...)."""

    stream_id: int
    level: str
    code: str
    description: str
    info: dict


@dataclass(slots=True)
class PublishStarted(Event):
    stream_id: int


@dataclass(slots=True)
class PlayStarted(Event):
    stream_id: int


@dataclass(slots=True)
class StreamBegin(Event):
    stream_id: int


@dataclass(slots=True)
class StreamEOF(Event):
    stream_id: int


@dataclass(slots=True)
class CommandError(Event):
    """The server answered one of our commands with `_error` (for `connect`: the connection is refused)."""

    command: str
    transaction_id: float
    info: object
