"""The RTMP chunk stream: messages cut into chunks and interleaved, in both directions.

`ChunkReader.feed(data)` takes any slice of the byte stream and returns the messages
it completes. `ChunkWriter.write(...)` turns one message into chunk bytes, compressing
headers against the previous message on the same chunk stream. `encode_message(...)`
is the stateless form (type-0 header, type-3 continuations) whose bytes do not depend
on what was sent before, so a relay chunks a message once and sends the same bytes to
every player that uses the same chunk size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mpstream.streaming.rtmp.errors import LimitExceeded, ProtocolError
from mpstream.streaming.rtmp.limits import Limits

DEFAULT_CHUNK_SIZE = 128
EXTENDED_TIMESTAMP = 0xFFFFFF
_MESSAGE_HEADER_SIZE = (11, 7, 3, 0)


@dataclass(slots=True)
class Message:
    """One complete RTMP message."""

    type_id: int
    stream_id: int
    timestamp: int
    body: bytes
    chunk_stream_id: int = 0


class _InState:
    """What the previous chunk on one chunk stream said (the base for compressed headers)."""

    __slots__ = ("timestamp", "ts_field", "length", "type_id", "stream_id", "extended", "payload",
                 "message_timestamp", "fmt")

    def __init__(self) -> None:
        self.timestamp = 0
        self.ts_field = 0  # the last timestamp or delta field as sent (type-3 chunks reuse it)
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False
        self.payload: bytearray | None = None  # the message being assembled, if any
        self.message_timestamp = 0
        self.fmt = 0


class ChunkReader:
    """Reassembles messages from chunks; raises `ProtocolError`/`LimitExceeded` on bad input."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0
        self.messages_received = 0
        self.stalled = False  # the last feed stopped at its message budget with input left
        self._buffer = bytearray()
        self._streams: dict[int, _InState] = {}
        self._partial = 0  # bytes in unfinished messages, all chunk streams together

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size (it affects the chunks after that message)."""
        if size & 0x80000000 or size == 0:
            raise ProtocolError(f"invalid chunk size {size}")
        if not self.limits.min_chunk_size <= size <= self.limits.max_chunk_size:
            raise LimitExceeded(
                f"chunk size {size} outside {self.limits.min_chunk_size}..{self.limits.max_chunk_size}")
        self.chunk_size = size

    def abort(self, chunk_stream_id: int) -> None:
        """Drop the partial message on a chunk stream (the peer's Abort message)."""
        state = self._streams.get(chunk_stream_id)
        if state is not None and state.payload is not None:
            self._partial -= len(state.payload)
            state.payload = None

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed input plus partial messages."""
        return len(self._buffer) + self._partial

    def feed(self, data: bytes, max_messages: int | None = None) -> list[Message]:
        """Add bytes from the peer; return the messages they complete, in order.

        With `max_messages`, parsing stops after that many messages and the rest of the
        input waits (`stalled` says so) for a later call, `feed(b"")` included: this is
        how the caller rations CPU per peer, empty messages included.
        """
        self.bytes_received += len(data)
        buf = self._buffer
        buf += data
        if len(buf) + self._partial > self.limits.max_buffered_bytes:
            raise LimitExceeded(f"{len(buf) + self._partial} bytes of unfinished messages over the limit "
                                f"{self.limits.max_buffered_bytes}")
        messages: list[Message] = []
        budget = -1 if max_messages is None else max_messages
        self.stalled = False
        pos = 0
        end = len(buf)
        while pos < end:
            if budget == 0:
                self.stalled = True
                break
            b0 = buf[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            p = pos + 1
            if csid == 0:
                if end - p < 1:
                    break
                csid = 64 + buf[p]
                p += 1
            elif csid == 1:
                if end - p < 2:
                    break
                csid = 64 + buf[p] + (buf[p + 1] << 8)
                p += 2
            header_size = _MESSAGE_HEADER_SIZE[fmt]
            if end - p < header_size:
                break
            state = self._streams.get(csid)
            if state is None:
                if fmt > 1:
                    raise ProtocolError(f"chunk stream {csid} starts with a type-{fmt} header")
                if len(self._streams) >= self.limits.max_chunk_streams:
                    raise LimitExceeded(f"more than {self.limits.max_chunk_streams} chunk streams")
                state = _InState()
                self._streams[csid] = state
            new_message = state.payload is None
            if fmt < 3:
                ts_field = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
                length, type_id, stream_id = state.length, state.type_id, state.stream_id
                if fmt < 2:
                    length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                    type_id = buf[p + 6]
                    if fmt == 0:
                        stream_id = int.from_bytes(buf[p + 7:p + 11], "little")
                p += header_size
                extended = ts_field == EXTENDED_TIMESTAMP
                if extended:
                    if end - p < 4:
                        break
                    ts_field = int.from_bytes(buf[p:p + 4], "big")
                    p += 4
                new_message = True  # a full header starts a message (a partial one is dropped)
            else:
                ts_field, extended = state.ts_field, state.extended
                length, type_id, stream_id = state.length, state.type_id, state.stream_id
                if extended:
                    if end - p < 4:
                        break
                    echoed = int.from_bytes(buf[p:p + 4], "big")
                    # New messages always repeat it; continuations do with most encoders.
                    if new_message or echoed == ts_field:
                        ts_field = echoed
                        p += 4
            if new_message:
                if length > self.limits.max_message_size:
                    raise LimitExceeded(f"message of {length} bytes over the limit "
                                        f"{self.limits.max_message_size}")
                remaining = length
            else:
                remaining = state.length - len(state.payload)  # type: ignore[arg-type]
            take = remaining if remaining < self.chunk_size else self.chunk_size
            if end - p < take:
                break
            # The whole chunk is here: commit its header to the chunk stream state.
            if new_message:
                if fmt == 0:
                    timestamp = ts_field
                else:
                    timestamp = (state.timestamp + ts_field) & 0xFFFFFFFF
                state.timestamp = timestamp
                state.message_timestamp = timestamp
                state.ts_field = ts_field
                state.extended = extended
                state.length = length
                state.type_id = type_id
                state.stream_id = stream_id
                state.fmt = fmt
                if state.payload is not None:  # a full header abandons the partial message
                    self._partial -= len(state.payload)
                state.payload = bytearray()
            payload = state.payload
            payload += buf[p:p + take]  # type: ignore[operator]
            self._partial += take
            if self._partial > self.limits.max_buffered_bytes:
                raise LimitExceeded(f"{self._partial} bytes of unfinished messages over the limit "
                                    f"{self.limits.max_buffered_bytes}")
            pos = p + take
            if len(payload) >= state.length:  # type: ignore[arg-type]
                messages.append(Message(state.type_id, state.stream_id, state.message_timestamp,
                                        bytes(payload), csid))  # type: ignore[arg-type]
                self._partial -= len(payload)  # type: ignore[arg-type]
                state.payload = None
                self.messages_received += 1
                budget -= 1
                if state.type_id == 1 and len(payload) >= 4:  # type: ignore[arg-type]
                    # Set Chunk Size takes effect for the very next chunk.
                    self.set_chunk_size(struct.unpack(">I", bytes(payload[:4]))[0])  # type: ignore[index]
        del buf[:pos]
        return messages


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes((fmt << 6 | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 64 <= csid <= 65599:
        return bytes((fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))
    raise ValueError(f"chunk stream id {csid} out of range 2..65599")


def _chunks(first_header: bytes, continuation: bytes, body: bytes, chunk_size: int) -> bytes:
    if len(body) <= chunk_size:
        return first_header + body
    parts = [first_header, body[:chunk_size]]
    for offset in range(chunk_size, len(body), chunk_size):
        parts.append(continuation)
        parts.append(body[offset:offset + chunk_size])
    return b"".join(parts)


def encode_message(chunk_stream_id: int, type_id: int, stream_id: int, timestamp: int, body: bytes,
                   chunk_size: int) -> bytes:
    """A message as chunks with a type-0 header: bytes that do not depend on earlier messages."""
    timestamp &= 0xFFFFFFFF
    extended = timestamp >= EXTENDED_TIMESTAMP
    header = _basic_header(0, chunk_stream_id) + struct.pack(
        ">I", min(timestamp, EXTENDED_TIMESTAMP))[1:] + struct.pack(">I", len(body))[1:] + bytes(
        (type_id,)) + struct.pack("<I", stream_id)
    continuation = _basic_header(3, chunk_stream_id)
    if extended:
        header += struct.pack(">I", timestamp)
        continuation += struct.pack(">I", timestamp)
    return _chunks(header, continuation, body, chunk_size)


class ChunkWriter:
    """Chunks outgoing messages with header compression per chunk stream."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.chunk_size = chunk_size
        # csid -> (stream_id, type_id, length, timestamp, delta, last fmt)
        self._previous: dict[int, tuple[int, int, int, int, int, int]] = {}

    def forget(self, chunk_stream_id: int) -> None:
        """Forget the state of a chunk stream (after sending it bytes made elsewhere with a type-0 header)."""
        self._previous.pop(chunk_stream_id, None)

    def note_sent(self, chunk_stream_id: int, type_id: int, stream_id: int, timestamp: int,
                  length: int) -> None:
        """Record that a type-0 message made by `encode_message` went out on this chunk stream."""
        self._previous[chunk_stream_id] = (stream_id, type_id, length, timestamp & 0xFFFFFFFF, 0, 0)

    def write(self, chunk_stream_id: int, type_id: int, stream_id: int, timestamp: int, body: bytes) -> bytes:
        timestamp &= 0xFFFFFFFF
        prev = self._previous.get(chunk_stream_id)
        delta = 0
        if prev is None or prev[0] != stream_id:
            fmt = 0
        else:
            delta = (timestamp - prev[3]) & 0xFFFFFFFF
            if delta >= 0x80000000:  # going backwards: say it absolutely
                fmt = 0
            elif prev[1] != type_id or prev[2] != len(body):
                fmt = 1
            elif delta != prev[4] or prev[5] == 0:
                fmt = 2  # (type 3 after type 0 would repeat the absolute time as a delta)
            else:
                fmt = 3
        if fmt == 0:
            delta = 0
            field = timestamp
        else:
            field = delta
        self._previous[chunk_stream_id] = (stream_id, type_id, len(body), timestamp, delta, fmt)
        extended = field >= EXTENDED_TIMESTAMP
        header = bytearray(_basic_header(fmt, chunk_stream_id))
        if fmt < 3:
            header += struct.pack(">I", min(field, EXTENDED_TIMESTAMP))[1:]
            if fmt < 2:
                header += struct.pack(">I", len(body))[1:] + bytes((type_id,))
                if fmt == 0:
                    header += struct.pack("<I", stream_id)
        continuation = _basic_header(3, chunk_stream_id)
        if extended:
            header += struct.pack(">I", field)
            continuation += struct.pack(">I", field)
        return _chunks(bytes(header), continuation, body, self.chunk_size)
