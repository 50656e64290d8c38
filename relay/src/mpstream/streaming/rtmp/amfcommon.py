"""What AMF0 and AMF3 share: the values `UNDEFINED` and `Date`, how deep a value may nest, and the
byte reader under both decoders."""

from __future__ import annotations

from dataclasses import dataclass

from mpstream.streaming.rtmp.errors import AMFError

DEFAULT_MAX_DEPTH = 32


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class Date:
    """Milliseconds since the epoch, and the (ignored by everyone) timezone offset."""

    milliseconds: float
    timezone: int = 0


class Reader:
    """Consecutive values from `data`; `offset` advances as they are read. `name` goes into errors."""

    name = "AMF"

    def __init__(self, data: bytes, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH):
        self.data = data
        self.offset = offset
        self.max_depth = max_depth

    def at_end(self) -> bool:
        return self.offset >= len(self.data)

    def _take(self, size: int) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise AMFError(f"truncated {self.name} value")
        chunk = bytes(self.data[self.offset:end])
        self.offset = end
        return chunk

    def _u8(self) -> int:
        if self.offset >= len(self.data):
            raise AMFError(f"truncated {self.name} value")
        value = self.data[self.offset]
        self.offset += 1
        return value
