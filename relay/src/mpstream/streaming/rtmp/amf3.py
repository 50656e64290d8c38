"""AMF3 decoding (and a small encoder for tests), as Flash-era clients send it.

RTMP carries AMF3 in command (type 17) and data (type 15) messages and after the
AMF0 "switch to AMF3" marker. Values decode to the same Python types as `amf0`:
integers and doubles -> int/float, strings, None, `UNDEFINED`, bool, arrays -> list
(or dict when they have associative parts), objects -> dict, byte arrays -> bytes,
dates -> `Date`, vectors -> list, dictionaries -> dict.
"""

from __future__ import annotations

import struct

from mpstream.streaming.rtmp.amfcommon import DEFAULT_MAX_DEPTH, UNDEFINED, Date, Reader
from mpstream.streaming.rtmp.errors import AMFError

UNDEFINED_MARKER = 0x00
NULL = 0x01
FALSE = 0x02
TRUE = 0x03
INTEGER = 0x04
DOUBLE = 0x05
STRING = 0x06
XML_DOC = 0x07
DATE = 0x08
ARRAY = 0x09
OBJECT = 0x0A
XML = 0x0B
BYTE_ARRAY = 0x0C
VECTOR_INT = 0x0D
VECTOR_UINT = 0x0E
VECTOR_DOUBLE = 0x0F
VECTOR_OBJECT = 0x10
DICTIONARY = 0x11


class Decoder(Reader):
    """Decodes consecutive AMF3 values, keeping the string/object/traits reference tables."""

    name = "AMF3"

    def __init__(self, data: bytes, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH):
        super().__init__(data, offset, max_depth)
        self.strings: list[str] = []
        self.objects: list[object] = []
        self.traits: list[tuple[str, bool, list[str]]] = []

    def _u29(self) -> int:
        value = 0
        for _ in range(3):
            byte = self._u8()
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return value
        return (value << 8) | self._u8()

    def _count(self, count: int) -> int:
        if count > len(self.data) - self.offset:  # every element takes at least one byte
            raise AMFError("AMF3 length longer than its message")
        return count

    def _string(self) -> str:
        header = self._u29()
        if not header & 1:
            index = header >> 1
            if index >= len(self.strings):
                raise AMFError("AMF3 reference to an unknown string")
            return self.strings[index]
        try:
            value = self._take(header >> 1).decode("utf-8")
        except UnicodeDecodeError:
            raise AMFError("AMF3 string is not UTF-8") from None
        if value:
            self.strings.append(value)
        return value

    def _object_reference(self, header: int) -> object | None:
        if header & 1:
            return None
        index = header >> 1
        if index >= len(self.objects):
            raise AMFError("AMF3 reference to an unknown object")
        return self.objects[index]

    def decode(self, depth: int = 0) -> object:
        if depth > self.max_depth:
            raise AMFError("AMF3 value nested too deeply")
        marker = self._u8()
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == NULL:
            return None
        if marker == FALSE:
            return False
        if marker == TRUE:
            return True
        if marker == INTEGER:
            value = self._u29()
            return value - (1 << 29) if value & (1 << 28) else value
        if marker == DOUBLE:
            return struct.unpack(">d", self._take(8))[0]
        if marker == STRING:
            return self._string()
        if marker in (XML_DOC, XML, BYTE_ARRAY):
            header = self._u29()
            ref = self._object_reference(header)
            if ref is not None:
                return ref
            raw = self._take(header >> 1)
            value: object = raw if marker == BYTE_ARRAY else raw.decode("utf-8", "replace")
            self.objects.append(value)
            return value
        if marker == DATE:
            header = self._u29()
            ref = self._object_reference(header)
            if ref is not None:
                return ref
            date = Date(struct.unpack(">d", self._take(8))[0])
            self.objects.append(date)
            return date
        if marker == ARRAY:
            return self._array(depth)
        if marker == OBJECT:
            return self._object(depth)
        if marker in (VECTOR_INT, VECTOR_UINT, VECTOR_DOUBLE, VECTOR_OBJECT):
            return self._vector(marker, depth)
        if marker == DICTIONARY:
            header = self._u29()
            ref = self._object_reference(header)
            if ref is not None:
                return ref
            self._u8()  # weak keys flag
            result: dict = {}
            self.objects.append(result)
            for _ in range(self._count(header >> 1)):
                key = self.decode(depth + 1)
                result[key if isinstance(key, (str, int, float, bool)) else repr(key)] = self.decode(depth + 1)
            return result
        raise AMFError(f"unknown AMF3 marker 0x{marker:02x}")

    def _array(self, depth: int) -> object:
        header = self._u29()
        ref = self._object_reference(header)
        if ref is not None:
            return ref
        dense = self._count(header >> 1)
        assoc: dict = {}
        items: list = []
        self.objects.append(items)
        while True:
            key = self._string()
            if key == "":
                break
            assoc[key] = self.decode(depth + 1)
        for _ in range(dense):
            items.append(self.decode(depth + 1))
        if assoc:
            assoc.update(enumerate(items))
            return assoc
        return items

    def _object(self, depth: int) -> dict:
        header = self._u29()
        ref = self._object_reference(header)
        if ref is not None:
            return ref  # type: ignore[return-value]
        if not header & 2:  # traits by reference
            index = header >> 2
            if index >= len(self.traits):
                raise AMFError("AMF3 reference to unknown traits")
            _name, dynamic, names = self.traits[index]
        else:
            if header & 4:
                raise AMFError("AMF3 externalizable objects are not supported")
            dynamic = bool(header & 8)
            count = self._count(header >> 4)
            _name = self._string()
            names = [self._string() for _ in range(count)]
            self.traits.append((_name, dynamic, names))
        obj: dict = {}
        self.objects.append(obj)
        for name in names:
            obj[name] = self.decode(depth + 1)
        if dynamic:
            while True:
                key = self._string()
                if key == "":
                    break
                obj[key] = self.decode(depth + 1)
        return obj

    def _vector(self, marker: int, depth: int) -> list:
        header = self._u29()
        ref = self._object_reference(header)
        if ref is not None:
            return ref  # type: ignore[return-value]
        count = self._count(header >> 1)
        self._u8()  # fixed-length flag
        items: list = []
        self.objects.append(items)
        if marker == VECTOR_OBJECT:
            self._string()  # element type name
            for _ in range(count):
                items.append(self.decode(depth + 1))
            return items
        fmt, size = {VECTOR_INT: (">i", 4), VECTOR_UINT: (">I", 4), VECTOR_DOUBLE: (">d", 8)}[marker]
        for _ in range(count):
            items.append(struct.unpack(fmt, self._take(size))[0])
        return items


def decode_all(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> list:
    """Every AMF3 value in `data`."""
    decoder = Decoder(data, max_depth=max_depth)
    values = []
    while not decoder.at_end():
        values.append(decoder.decode())
    return values


# ---------------------------------------------------------------- a small encoder

def _u29(value: int) -> bytes:
    value &= 0x1FFFFFFF
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes((value >> 7 | 0x80, value & 0x7F))
    if value < 0x200000:
        return bytes((value >> 14 | 0x80, (value >> 7) & 0x7F | 0x80, value & 0x7F))
    return bytes((value >> 22 | 0x80, (value >> 15) & 0x7F | 0x80, (value >> 8) & 0x7F | 0x80, value & 0xFF))


def _encode_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _u29(len(raw) << 1 | 1) + raw


def encode(value: object) -> bytes:
    """AMF3 for scalars, lists and dicts (as anonymous dynamic objects), without references."""
    if value is None:
        return bytes((NULL,))
    if value is UNDEFINED:
        return bytes((UNDEFINED_MARKER,))
    if isinstance(value, bool):
        return bytes((TRUE if value else FALSE,))
    if isinstance(value, int) and -(1 << 28) <= value < (1 << 28):
        return bytes((INTEGER,)) + _u29(value)
    if isinstance(value, (int, float)):
        return bytes((DOUBLE,)) + struct.pack(">d", float(value))
    if isinstance(value, str):
        return bytes((STRING,)) + _encode_string(value)
    if isinstance(value, bytes):
        return bytes((BYTE_ARRAY,)) + _u29(len(value) << 1 | 1) + value
    if isinstance(value, (list, tuple)):
        return bytes((ARRAY,)) + _u29(len(value) << 1 | 1) + b"\x01" + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        out = bytearray((OBJECT,)) + _u29(0b1011) + _encode_string("")
        for key, item in value.items():
            out += _encode_string(str(key)) + encode(item)
        return bytes(out + b"\x01")
    raise AMFError(f"cannot encode {type(value).__name__} as AMF3")
