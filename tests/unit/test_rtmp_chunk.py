"""The chunk stream: all four header types, extended timestamps, chunk size, abort, limits."""

import pytest
from mpstream.streaming.rtmp.chunk import ChunkReader, ChunkWriter, Message, encode_message
from mpstream.streaming.rtmp.errors import LimitExceeded, ProtocolError
from mpstream.streaming.rtmp.limits import Limits
from mpstream.streaming.rtmp.messages import AUDIO, SET_CHUNK_SIZE, VIDEO, u32


def feed_bytewise(reader, data):
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i:i + 1])
    return out


def test_writer_compresses_headers_and_reader_restores_them():
    writer = ChunkWriter(chunk_size=128)
    sent = [
        (6, VIDEO, 1, 0, b"k" * 300),        # type 0
        (6, VIDEO, 1, 40, b"p" * 50),        # type 1 (length changed)
        (6, VIDEO, 1, 80, b"q" * 50),        # type 2 (same length, first delta after type 1)
        (6, VIDEO, 1, 120, b"r" * 50),       # type 3 (same delta)
        (4, AUDIO, 1, 23, b"a" * 10),        # another chunk stream interleaved
        (6, VIDEO, 1, 100, b"b" * 50),       # backwards: type 0 again
        (400, VIDEO, 2, 7, b"x" * 3),        # 2-byte basic header
        (65000, VIDEO, 2, 7, b"y" * 3),  # 3-byte basic header
    ]
    data = b"".join(writer.write(*args) for args in sent)
    fmts = [data[0] >> 6]
    assert fmts == [0]
    got = feed_bytewise(ChunkReader(), data)
    assert [(m.chunk_stream_id, m.type_id, m.stream_id, m.timestamp, m.body) for m in got] == sent
    # headers really were compressed: fewer bytes than type-0 everywhere
    plain = b"".join(encode_message(*args, 128) for args in sent)
    assert len(data) < len(plain)


@pytest.mark.parametrize("timestamps", [[0xFFFFFF, 0xFFFFFF + 40, 0x1FFFFFF], [5, 0xFFFFFF + 5], [0xFFFFFFFF]])
def test_extended_timestamps_with_multi_chunk_messages(timestamps):
    writer = ChunkWriter(chunk_size=128)
    data = b"".join(writer.write(6, VIDEO, 1, ts, bytes(300)) for ts in timestamps)
    got = ChunkReader().feed(data)
    assert [m.timestamp for m in got] == timestamps
    assert all(len(m.body) == 300 for m in got)


def test_stateless_encoding_with_extended_timestamp_round_trips():
    data = encode_message(6, VIDEO, 1, 0x12345678, bytes(1000), 128) + encode_message(4, AUDIO, 1, 3, b"z", 128)
    got = ChunkReader().feed(data)
    assert [(m.timestamp, len(m.body)) for m in got] == [(0x12345678, 1000), (3, 1)]


def test_continuation_without_repeated_extended_timestamp_is_accepted():
    # Some encoders do not repeat the extended timestamp in type-3 continuation chunks.
    body = bytes(range(200))
    header = bytes([0x06]) + b"\xff\xff\xff" + (200).to_bytes(3, "big") + bytes([VIDEO]) + b"\x01\x00\x00\x00"
    data = header + (0x01000000).to_bytes(4, "big") + body[:128] + bytes([0xC6]) + body[128:]
    [msg] = ChunkReader().feed(data)
    assert msg.body == body and msg.timestamp == 0x01000000


def test_set_chunk_size_applies_to_the_next_chunk():
    writer = ChunkWriter(chunk_size=128)
    data = writer.write(2, SET_CHUNK_SIZE, 0, 0, u32(4096))
    writer.chunk_size = 4096
    data += writer.write(6, VIDEO, 1, 0, bytes(3000))
    reader = ChunkReader()
    got = reader.feed(data)
    assert reader.chunk_size == 4096 and len(got[1].body) == 3000


def test_abort_drops_the_partial_message():
    writer = ChunkWriter(chunk_size=128)
    data = writer.write(6, VIDEO, 1, 0, bytes(300))
    reader = ChunkReader()
    assert reader.feed(data[:140]) == []
    reader.abort(6)
    later = encode_message(6, VIDEO, 1, 40, b"fresh", 128)
    assert [m.body for m in reader.feed(later)] == [b"fresh"]


@pytest.mark.parametrize("size, error", [(0, ProtocolError), (1 << 31, ProtocolError), (1, LimitExceeded),
                                         (1 << 30, LimitExceeded)])
def test_bad_chunk_sizes_are_refused(size, error):
    data = encode_message(2, SET_CHUNK_SIZE, 0, 0, u32(size), 128)
    with pytest.raises(error):
        ChunkReader().feed(data)


def test_message_length_limit():
    reader = ChunkReader(Limits(max_message_size=1000))
    header = bytes([0x06]) + b"\x00\x00\x00" + (1001).to_bytes(3, "big") + bytes([VIDEO]) + b"\x01\x00\x00\x00"
    with pytest.raises(LimitExceeded):
        reader.feed(header)


def test_chunk_stream_count_limit():
    reader = ChunkReader(Limits(max_chunk_streams=10))
    data = b"".join(encode_message(csid, AUDIO, 1, 0, b"", 128) for csid in range(2, 20))
    with pytest.raises(LimitExceeded):
        reader.feed(data)


def test_first_chunk_on_a_stream_must_carry_a_header():
    with pytest.raises(ProtocolError):
        ChunkReader().feed(bytes([0xC6]) + b"x")


def test_message_dataclass_fields():
    msg = Message(VIDEO, 1, 0, b"")
    assert msg.chunk_stream_id == 0
