"""Fuzzing the parser: arbitrary bytes never escape as anything but ProtocolError, and stay bounded."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpstream.rtmp import ProtocolError, ServerSession, amf0, amf3
from mpstream.rtmp.chunk import ChunkReader, encode_message
from mpstream.rtmp.errors import AMFError
from mpstream.rtmp.handshake import SIZE
from mpstream.rtmp.limits import Limits
from mpstream.rtmp.messages import COMMAND_AMF0, VIDEO

FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(max_message_size=64 * 1024, max_chunk_streams=16)
HANDSHAKE = bytes([3]) + bytes(SIZE) + bytes(SIZE)
CONNECT = encode_message(3, COMMAND_AMF0, 0, 0, amf0.encode("connect", 1.0, {"app": "live"}), 128)


@FUZZ
@given(st.binary(max_size=4096))
def test_amf0_decoder_only_raises_amf_errors(data):
    try:
        amf0.decode_all(data)
    except AMFError:
        pass


@FUZZ
@given(st.binary(max_size=2048))
def test_amf3_decoder_only_raises_amf_errors(data):
    try:
        amf3.decode_all(data)
    except AMFError:
        pass


# Chunks built from plausible pieces reach deeper states than uniform random bytes.
chunk_piece = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda csid, t, ts, body: encode_message(csid, t, 1, ts, body, 128),
              st.integers(2, 400), st.integers(0, 30), st.integers(0, 0xFFFFFFFF), st.binary(max_size=300)),
    st.sampled_from([bytes([0xC6]), bytes([0x86, 0, 0, 1]), bytes([0x46, 0, 0, 0, 0, 0, 9, VIDEO]),
                     bytes([0x02]) + b"\xff\xff\xff", b"\x00\x00\x00\x00"]),
)


@FUZZ
@given(st.lists(chunk_piece, max_size=20), st.integers(1, 300))
def test_chunk_reader_raises_only_protocol_errors_and_stays_bounded(pieces, split):
    reader = ChunkReader(LIMITS)
    data = b"".join(pieces)
    try:
        for i in range(0, len(data), split):
            for message in reader.feed(data[i:i + split]):
                assert len(message.body) <= LIMITS.max_message_size
            assert reader.buffered <= len(data)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(chunk_piece, max_size=20))
def test_server_session_after_connect_raises_only_protocol_errors(pieces):
    server = ServerSession(limits=LIMITS)
    server.receive_data(HANDSHAKE)
    [request] = server.receive_data(CONNECT)
    server.accept_connect(request)
    try:
        server.receive_data(b"".join(pieces))
    except ProtocolError:
        pass
    server.data_to_send()
