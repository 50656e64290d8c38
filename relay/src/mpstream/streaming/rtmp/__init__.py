"""RTMP as pure protocol code: bytes in, events and bytes out, no sockets ("bring your own I/O").

Public API (stable):

- `ServerSession`, `ClientSession` (`session`): one per connection. `receive_data(bytes)
  -> list[Event]` (raises `ProtocolError`/`LimitExceeded` when the connection must be
  closed), `data_to_send() -> bytes`, and methods that queue messages (`send_media`,
  `send_data`, `send_metadata`, `accept_publish`, `play`, ...). A relay chunks a message
  once with `shared_media` and queues the same bytes in every player's session (`send_raw`).
- Events (`events`): `HandshakeComplete`, `Connected`, `StreamCreated`, `PublishStarted`,
  `PlayStarted`, `Status`, `StreamBegin`, `StreamEOF`, `MediaMessage`, `DataMessage`,
  `CommandError`, `UnknownCommand`, and on the server `ConnectRequest`, `PublishRequest`,
  `PlayRequest`, `StreamClosed`.
- `Limits` (`limits`): chunk size range, message size, chunk streams, AMF depth, streams.
- `parse_rtmp_url` / `RtmpUrl` (`url`): rtmp://host[:port]/app/stream[?query].
- Lower layers for those who need them: `chunk` (ChunkReader, ChunkWriter,
  encode_message), `amf0`, `amf3`, `messages` (type ids, control bodies, Command),
  `handshake`.

A player in five lines (any transport; `net.open_connection` gives one over MPTCP):

    url = parse_rtmp_url("rtmp://[::1]/live/cam")
    client = ClientSession(url.app, url.tc_url, auto="play", stream=url.stream)
    writer.write(client.data_to_send())
    for event in client.receive_data(await reader.read(65536)):   # in a loop
        ...  # MediaMessage(type_id=AUDIO/VIDEO, timestamp, body): an FLV tag body
    writer.write(client.data_to_send())                           # after every receive_data

A publisher: `auto="publish"`; on `PublishStarted(stream_id)` call
`client.send_metadata(stream_id, {...})`, then `client.send_media(VIDEO or AUDIO,
stream_id, timestamp_ms, tag_body)` per FLV tag (`mpstream.streaming.flv.read_tags`), and
`client.unpublish(stream_id, url.stream)` at the end.
"""

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
from mpstream.streaming.rtmp.limits import Limits
from mpstream.streaming.rtmp.messages import AUDIO, DATA_AMF0, VIDEO
from mpstream.streaming.rtmp.session import ClientSession, ServerSession, shared_media
from mpstream.streaming.rtmp.url import RtmpUrl, parse_rtmp_url

__all__ = [
    "AMFError", "AUDIO", "ClientSession", "CommandError", "ConnectRequest", "Connected", "DATA_AMF0",
    "DataMessage", "Event", "HandshakeComplete", "LimitExceeded", "Limits", "MediaMessage", "PlayRequest",
    "PlayStarted", "ProtocolError", "PublishRequest", "PublishStarted", "RtmpUrl", "ServerSession",
    "Status", "StreamBegin", "StreamClosed", "StreamCreated", "StreamEOF", "UnknownCommand", "VIDEO",
    "parse_rtmp_url", "shared_media",
]
