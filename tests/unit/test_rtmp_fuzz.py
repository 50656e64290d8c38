"""Fuzzing the parser: arbitrary bytes never escape as anything but ProtocolError, and stay bounded."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpstream.streaming.rtmp import ProtocolError, ServerSession, amf0, amf3
from mpstream.streaming.rtmp.chunk import ChunkReader, encode_message
from mpstream.streaming.rtmp.errors import AMFError
from mpstream.streaming.rtmp.handshake import SIZE
from mpstream.streaming.rtmp.limits import Limits
from mpstream.streaming.rtmp.messages import COMMAND_AMF0, VIDEO

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


# Issue 21: rationing must not change what is parsed, only when; bad numbers and names stay errors at most.
empty_flood = st.builds(lambda n: bytes([0x06, 0, 0, 0, 0, 0, 0, VIDEO, 1, 0, 0, 0]) + bytes([0xC6]) * n,
                        st.integers(0, 300))
aggregate = st.builds(lambda parts, size: encode_message(4, 22, 1, 0, (bytes([VIDEO, 0, 0, size]) + bytes(7)
                                                                        + bytes(size) + (11 + size).to_bytes(4, "big"))
                                                          * parts, 128),
                      st.integers(0, 300), st.integers(0, 3))
bad_command = st.builds(lambda name, value: encode_message(3, COMMAND_AMF0, 0, 0, amf0.encode(name, 0.0, None, value),
                                                           128),
                        st.sampled_from(["deleteStream", "play", "publish", "createStream", "FCUnpublish", "connect"]),
                        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.none()))
hostile_piece = st.one_of(chunk_piece, empty_flood, aggregate, bad_command)


def _parse(pieces, budget):
    server = ServerSession(limits=LIMITS)
    server.receive_data(HANDSHAKE)
    [request] = server.receive_data(CONNECT)
    server.accept_connect(request)
    events = []
    try:
        events += server.receive_data(b"".join(pieces), budget)
        for _ in range(100_000):
            if not server.stalled:
                break
            events += server.receive_data(b"", budget)
    except ProtocolError as exc:
        return events, type(exc)
    return events, None


@FUZZ
@given(st.lists(hostile_piece, max_size=12), st.integers(1, 50))
def test_rationed_parsing_gives_the_same_events_as_unrationed(pieces, budget):
    rationed, rationed_error = _parse(pieces, budget)
    whole, whole_error = _parse(pieces, None)
    # Both fail or neither (which error comes first may differ: a whole buffer is parsed before
    # its messages are dispatched); an error loses the events of its own call.
    assert (rationed_error is None) == (whole_error is None)
    if whole_error is None:
        assert rationed == whole


@FUZZ
@given(st.text(max_size=300))
def test_log_text_is_always_one_line_and_bounded(text):
    from mpstream.streaming.relay.logs import shown

    line = shown(text, 120)
    assert "\n" not in line and "\r" not in line and len(line) <= 120 * 10 + 20
    assert line.isprintable()


@FUZZ
@given(st.text(max_size=40), st.text(max_size=40))
def test_app_and_stream_pairs_never_collide_and_only_clean_names_pass(app, stream):
    from mpstream.streaming.relay import names

    if names.app_problem(app, 256) is None:
        assert app.isprintable() and "//" not in app and not app.startswith("/")
    if names.stream_problem(stream, 256) is None:
        assert stream.isprintable()
