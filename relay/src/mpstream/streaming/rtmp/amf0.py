"""AMF0, the encoding of RTMP commands and metadata, as pure functions over bytes.

Python values map as: float/int <-> number, bool <-> boolean, str <-> string/long
string, dict <-> object, `ECMAArray` <-> ECMA array (what onMetaData uses), list <->
strict array, None <-> null, `UNDEFINED` <-> undefined, `Date` <-> date. Typed objects
decode to dicts; the AMF3 switch marker hands the next value to `amf3`.

    encode("connect", 1.0, {"app": "live"})  -> bytes
    decode_all(data)                          -> ["connect", 1.0, {"app": "live"}]
"""

from __future__ import annotations

import struct

from mpstream.streaming.rtmp import amf3
from mpstream.streaming.rtmp.amfcommon import DEFAULT_MAX_DEPTH, UNDEFINED, Date, Reader
from mpstream.streaming.rtmp.errors import AMFError

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED_MARKER = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
UNSUPPORTED = 0x0D
XML_DOCUMENT = 0x0F
TYPED_OBJECT = 0x10
AVMPLUS = 0x11  # switch to AMF3 for the next value

_DOUBLE = struct.Struct(">d")


class ECMAArray(dict):
    """A dict that encodes as an AMF0 ECMA array (associative array), as onMetaData does."""


# ---------------------------------------------------------------- encoding

def _encode_utf8(value: str, out: bytearray) -> None:
    raw = value.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise AMFError("object key longer than 65535 bytes")
    out += struct.pack(">H", len(raw))
    out += raw


def _encode_properties(value: dict, out: bytearray, depth: int) -> None:
    for key, item in value.items():
        _encode_utf8(str(key), out)
        _encode_value(item, out, depth + 1)
    out += b"\x00\x00\x09"


def _encode_value(value: object, out: bytearray, depth: int) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise AMFError("value nested too deeply to encode")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, (int, float)):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += struct.pack(">H", len(raw))
        else:
            out.append(LONG_STRING)
            out += struct.pack(">I", len(raw))
        out += raw
    elif isinstance(value, ECMAArray):
        out.append(ECMA_ARRAY)
        out += struct.pack(">I", len(value))
        _encode_properties(value, out, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(value, out, depth)
    elif isinstance(value, (list, tuple)):
        out.append(STRICT_ARRAY)
        out += struct.pack(">I", len(value))
        for item in value:
            _encode_value(item, out, depth + 1)
    elif isinstance(value, Date):
        out.append(DATE)
        out += _DOUBLE.pack(value.milliseconds) + struct.pack(">h", value.timezone)
    else:
        raise AMFError(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: object) -> bytes:
    """The AMF0 encoding of `values`, one after the other."""
    out = bytearray()
    for value in values:
        _encode_value(value, out, 0)
    return bytes(out)


# ---------------------------------------------------------------- decoding

class Decoder(Reader):
    """Decodes consecutive AMF0 values from `data`; `offset` advances as values are read."""

    name = "AMF0"

    def __init__(self, data: bytes, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH):
        super().__init__(memoryview(data).toreadonly() if not isinstance(data, bytes) else data, offset, max_depth)
        self._references: list[object] = []
        self._amf3 = None  # created on the first AVMPLUS marker; keeps AMF3 reference tables

    def _u16(self) -> int:
        return struct.unpack(">H", self._take(2))[0]

    def _u32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def _utf8(self, size: int) -> str:
        try:
            return self._take(size).decode("utf-8")
        except UnicodeDecodeError:
            raise AMFError("string is not UTF-8") from None

    def _properties(self, target: dict, depth: int) -> dict:
        while True:
            key = self._utf8(self._u16())
            if key == "" and self.offset < len(self.data) and self.data[self.offset] == OBJECT_END:
                self.offset += 1
                return target
            target[key] = self.decode(depth + 1)

    def decode(self, depth: int = 0) -> object:
        """The next value."""
        if depth > self.max_depth:
            raise AMFError("AMF0 value nested too deeply")
        marker = self._u8()
        if marker == NUMBER:
            return _DOUBLE.unpack(self._take(8))[0]
        if marker == BOOLEAN:
            return self._u8() != 0
        if marker == STRING:
            return self._utf8(self._u16())
        if marker == LONG_STRING or marker == XML_DOCUMENT:
            return self._utf8(self._u32())
        if marker == NULL:
            return None
        if marker in (UNDEFINED_MARKER, UNSUPPORTED):
            return UNDEFINED
        if marker == OBJECT:
            obj: dict = {}
            self._references.append(obj)
            return self._properties(obj, depth)
        if marker == TYPED_OBJECT:
            self._utf8(self._u16())  # class name: nothing in RTMP needs it
            obj = {}
            self._references.append(obj)
            return self._properties(obj, depth)
        if marker == ECMA_ARRAY:
            self._u32()  # a count hint that encoders get wrong; the end marker is what counts
            arr = ECMAArray()
            self._references.append(arr)
            return self._properties(arr, depth)
        if marker == STRICT_ARRAY:
            count = self._u32()
            if count > len(self.data) - self.offset:  # every item takes at least one byte
                raise AMFError("strict array longer than its message")
            items: list = []
            self._references.append(items)
            for _ in range(count):
                items.append(self.decode(depth + 1))
            return items
        if marker == DATE:
            millis = _DOUBLE.unpack(self._take(8))[0]
            return Date(millis, struct.unpack(">h", self._take(2))[0])
        if marker == REFERENCE:
            index = self._u16()
            if index >= len(self._references):
                raise AMFError("AMF0 reference to an unknown object")
            return self._references[index]
        if marker == AVMPLUS:
            if self._amf3 is None:
                self._amf3 = amf3.Decoder(self.data, self.offset, self.max_depth)
            self._amf3.offset = self.offset
            value = self._amf3.decode(depth + 1)
            self.offset = self._amf3.offset
            return value
        if marker == OBJECT_END:
            raise AMFError("object end marker outside an object")
        raise AMFError(f"unknown AMF0 marker 0x{marker:02x}")


def decode_all(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> list:
    """Every value in `data`; raises `AMFError` if the bytes do not decode completely."""
    decoder = Decoder(data, max_depth=max_depth)
    values = []
    while not decoder.at_end():
        values.append(decoder.decode())
    return values
