"""RTMP message types, protocol control and user control messages, and commands.

Bodies are built and parsed here; `chunk` turns them into bytes on the wire.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from mpstream.streaming.rtmp import amf0, amf3
from mpstream.streaming.rtmp.errors import AMFError, LimitExceeded, ProtocolError

# Message type ids.
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

CONTROL_TYPES = frozenset((SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK_SIZE,
                           SET_PEER_BANDWIDTH))

# User control event types.
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7

# Set Peer Bandwidth limit types.
LIMIT_HARD = 0
LIMIT_SOFT = 1
LIMIT_DYNAMIC = 2

# Chunk stream ids by convention (what ffmpeg and nginx-rtmp use).
CSID_CONTROL = 2
CSID_COMMAND = 3
CSID_AUDIO = 4
CSID_DATA = 5
CSID_VIDEO = 6


def u32(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


def parse_u32(body: bytes, what: str) -> int:
    if len(body) < 4:
        raise ProtocolError(f"{what} message shorter than 4 bytes")
    return struct.unpack(">I", body[:4])[0]


def set_peer_bandwidth(size: int, limit_type: int = LIMIT_DYNAMIC) -> bytes:
    return u32(size) + bytes((limit_type,))


def user_control(event: int, *values: int) -> bytes:
    return struct.pack(">H", event) + b"".join(u32(v) for v in values)


def parse_user_control(body: bytes) -> tuple[int, bytes]:
    """(event type, event data)."""
    if len(body) < 2:
        raise ProtocolError("user control message shorter than 2 bytes")
    return struct.unpack(">H", body[:2])[0], body[2:]


@dataclass
class Command:
    """A command message: name, transaction id, command object and further arguments."""

    name: str
    transaction_id: float = 0.0
    command_object: object = None
    args: list = field(default_factory=list)

    def encode(self) -> bytes:
        return amf0.encode(self.name, self.transaction_id, self.command_object, *self.args)


def decode_command(type_id: int, body: bytes, max_depth: int = amf0.DEFAULT_MAX_DEPTH) -> Command:
    """Parse an AMF0 (type 20) or AMF3 (type 17) command message."""
    if type_id == COMMAND_AMF3:
        body = body[1:] if body[:1] == b"\x00" else body  # AMF3 commands start with a format byte
    values = amf0.decode_all(body, max_depth)
    if not values or not isinstance(values[0], str):
        raise AMFError("command message without a command name")
    tid = values[1] if len(values) > 1 else 0.0
    if not isinstance(tid, (int, float)) or isinstance(tid, bool) or not math.isfinite(tid):
        tid = 0.0  # answered as a call that expects no answer
    return Command(values[0], float(tid), values[2] if len(values) > 2 else None, values[3:])


def decode_data(type_id: int, body: bytes, max_depth: int = amf0.DEFAULT_MAX_DEPTH) -> list:
    """The values of a data message (type 18 AMF0 or type 15 AMF3)."""
    if type_id == DATA_AMF3:
        if body[:1] == b"\x00":
            body = body[1:]
        try:
            return amf0.decode_all(body, max_depth)
        except AMFError:
            return amf3.decode_all(body, max_depth)
    return amf0.decode_all(body, max_depth)


def split_aggregate(body: bytes, base_timestamp: int, max_messages: int = 256) -> list[tuple[int, int, bytes]]:
    """The (type, timestamp, body) of each message in an aggregate message.

    Sub-message timestamps are rebased so that the first one equals the aggregate's.
    More than `max_messages` sub-messages (empty ones included) is a `LimitExceeded`.
    """
    out: list[tuple[int, int, bytes]] = []
    offset = 0
    first_ts = None
    while offset + 11 <= len(body):
        if len(out) >= max_messages:
            raise LimitExceeded(f"aggregate message with more than {max_messages} sub-messages")
        type_id = body[offset]
        size = int.from_bytes(body[offset + 1:offset + 4], "big")
        ts = int.from_bytes(body[offset + 4:offset + 7], "big") | body[offset + 7] << 24
        start = offset + 11
        if start + size > len(body):
            raise ProtocolError("aggregate message with a truncated sub-message")
        if first_ts is None:
            first_ts = ts
        out.append((type_id, (base_timestamp + ts - first_ts) & 0xFFFFFFFF, body[start:start + size]))
        offset = start + size + 4  # back pointer
    return out
