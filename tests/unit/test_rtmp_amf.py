"""AMF0/AMF3 round trips and rejection of malformed values."""

import pytest
from mpstream.streaming.rtmp import amf0, amf3
from mpstream.streaming.rtmp.errors import AMFError


@pytest.mark.parametrize("value", [
    0.0, -1.5, 1e300, True, False, "", "héllo", "x" * 70000, None, {"a": 1.0, "b": {"c": [1.0, "d"]}},
    [], [None, True, "s"], amf0.ECMAArray(duration=0.0, width=640.0),
])
def test_amf0_round_trip(value):
    assert amf0.decode_all(amf0.encode(value)) == [value]


def test_amf0_ecma_array_keeps_its_type_and_undefined_decodes():
    decoded = amf0.decode_all(amf0.encode(amf0.ECMAArray(a=1.0), amf0.UNDEFINED))
    assert isinstance(decoded[0], amf0.ECMAArray)
    assert decoded[1] is amf0.UNDEFINED


def test_amf0_date_typed_object_and_reference():
    typed = bytes([amf0.TYPED_OBJECT]) + b"\x00\x03Cls" + b"\x00\x01k" + amf0.encode(2.0) + b"\x00\x00\x09"
    data = amf0.encode({"x": 1.0}) + typed + bytes([amf0.REFERENCE, 0, 0]) + amf0.encode(amf0.Date(5.0, 0))
    assert amf0.decode_all(data) == [{"x": 1.0}, {"k": 2.0}, {"x": 1.0}, amf0.Date(5.0, 0)]


@pytest.mark.parametrize("data", [
    b"\x00\x01\x02",                 # truncated number
    b"\x02\x00\x05ab",               # truncated string
    b"\x03\x00\x01a",                # object without value/end
    b"\x0a\xff\xff\xff\xff",          # strict array claiming 4 billion items
    b"\x07\x00\x09",                 # reference to nothing
    b"\x09",                         # stray object end
    b"\x42",                         # unknown marker
    b"\x02\x00\x02\xff\xfe",          # not UTF-8
])
def test_amf0_rejects_malformed(data):
    with pytest.raises(AMFError):
        amf0.decode_all(data)


def test_amf0_nesting_is_bounded():
    deep = b"\x0a\x00\x00\x00\x01" * 100 + b"\x05"
    with pytest.raises(AMFError, match="deep"):
        amf0.decode_all(deep)


@pytest.mark.parametrize("value", [
    None, True, False, 0, 5, -5, (1 << 28) - 1, -(1 << 28), 2.5, 1 << 40, "", "abc", b"\x00\x01",
    [1, "a", None], {"name": "x", "list": [1, 2]},
])
def test_amf3_round_trip(value):
    assert amf3.decode_all(amf3.encode(value)) == [value]


def test_amf3_string_and_object_references():
    # object with a sealed trait "a" and a second object reusing the traits and the string
    body = bytes([amf3.ARRAY, 0x05, 0x01]) + bytes([amf3.OBJECT, 0x13, 0x01, 0x03]) + b"a" + \
        bytes([amf3.STRING, 0x03]) + b"v" + bytes([amf3.OBJECT, 0x01]) + bytes([amf3.STRING, 0x00]) + \
        bytes([amf3.STRING, 0x02])
    assert amf3.decode_all(body) == [[{"a": "v"}, {"a": "a"}], "v"]


def test_amf0_switch_to_amf3():
    assert amf0.decode_all(amf0.encode("onMetaData") + b"\x11" + amf3.encode({"w": 640})) == [
        "onMetaData", {"w": 640}]


@pytest.mark.parametrize("data", [b"\x06\x07ab", b"\x06\x02", b"\x0a\x05", b"\x09\xff\xff\xff\xff\x01", b"\x20"])
def test_amf3_rejects_malformed(data):
    with pytest.raises(AMFError):
        amf3.decode_all(data)
