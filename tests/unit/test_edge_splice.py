"""The edge's splice across origins, in memory: timestamps, keyframes, sequence headers, origin order."""

import pytest
from mpstream.streaming.edge.origins import OriginRotation, pull_url
from mpstream.streaming.edge.splice import Splicer
from mpstream.streaming.rtmp import amf0
from mpstream.streaming.rtmp.messages import AUDIO, DATA_AMF0, VIDEO

AVC_HEADER = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1E])
OTHER_AVC_HEADER = bytes([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x28])
AAC_HEADER = bytes([0xAF, 0, 0x12, 0x10])
METADATA = amf0.encode("onMetaData", {"width": 640.0})


def key(n: int) -> bytes:
    return bytes([0x17, 1, 0, 0, 0]) + n.to_bytes(4, "big")


def inter(n: int) -> bytes:
    return bytes([0x27, 1, 0, 0, 0]) + n.to_bytes(4, "big")


def aac(n: int) -> bytes:
    return bytes([0xAF, 1]) + n.to_bytes(4, "big")


def origin_burst(splicer, start_ts, frames, now, headers=(AVC_HEADER, AAC_HEADER), metadata=METADATA):
    """What a relay sends a new player: metadata, sequence headers, then its GOP cache (40 ms video,
    audio between), from `start_ts`. Returns what the splicer hands on."""
    out = []
    if metadata is not None:
        out += splicer.data(["onMetaData", {"width": 640.0}], metadata, start_ts, now)
    out += splicer.data(["|RtmpSampleAccess", True, True], amf0.encode("|RtmpSampleAccess", True, True), 0, now)
    for header in headers:
        out += splicer.media(VIDEO if header[0] == 0x17 else AUDIO, start_ts, header, now)
    for i in range(frames):
        ts = start_ts + 40 * i
        out += splicer.media(VIDEO, ts, key(ts) if i % 50 == 0 else inter(ts), now)
        out += splicer.media(AUDIO, ts + 3, aac(ts), now)
    return out


def test_first_origin_passes_as_it_comes():
    splicer = Splicer()
    splicer.switch(0.0, origin="a")
    out = origin_burst(splicer, 1000, 10, 0.0)
    assert [o.timestamp for o in out if o.type_id == VIDEO][:3] == [1000, 1000, 1040]  # header, key, inter
    assert not any(o.values and o.values[0] == "|RtmpSampleAccess" for o in out)  # the edge sends its own
    assert out[0].type_id == DATA_AMF0 and out[0].body == METADATA
    assert splicer.interval_ms() == 40 and not splicer.splices


def test_switch_splices_at_the_new_origins_keyframe_one_frame_after_the_last():
    splicer = Splicer()
    splicer.switch(0.0, origin="a")
    first = origin_burst(splicer, 1000, 30, 0.0)  # a: 1000 .. 2160 (+3 audio)
    last = max(o.timestamp for o in first)
    assert last == 2163
    # b keeps another clock (it started later): its GOP cache starts at a keyframe at 500,
    # but live P-frames of b that come before it (no cache there) must not reach players.
    splicer.switch(1.0, origin="b", previous_origin="a", reason="EOF")
    assert splicer.media(VIDEO, 480, inter(480), 1.01) == []
    assert splicer.media(AUDIO, 481, aac(480), 1.01) == []
    second = origin_burst(splicer, 500, 10, 1.02)
    # Same headers and metadata as a: not sent again.
    assert all(o.body not in (AVC_HEADER, AAC_HEADER, METADATA) for o in second)
    assert second[0].type_id == VIDEO and second[0].body == key(500)
    assert second[0].timestamp == last + 40
    video = [o.timestamp for o in second if o.type_id == VIDEO]
    assert video == [last + 40 + 40 * i for i in range(10)]
    splice = splicer.splices[0]
    assert splice.timestamp_ms == last + 40 and splice.source_timestamp_ms == 500
    assert splice.dropped == 2 and splice.headers_resent == 0
    assert splice.gap_ms == pytest.approx(1020, abs=0.1)  # the last message from a came at 0.0
    assert dict(splice.note) == {"origin": "b", "previous_origin": "a", "reason": "EOF"}
    assert splice.as_dict()["detect_to_splice_ms"] == pytest.approx(20, abs=0.1)


def source(frames: int):
    """One publisher's stream (what both origins get): video every 40 ms, a keyframe every 10, audio between."""
    out = []
    for i in range(frames):
        ts = 40 * i
        out.append((VIDEO, ts, key(ts) if i % 10 == 0 else inter(ts)))
        out.append((AUDIO, ts + 20, aac(ts)))
    return out


def test_origins_fed_by_one_publisher_splice_aligned_without_repeats_or_gaps():
    stream = source(60)
    splicer = Splicer()
    splicer.switch(0.0, origin="a")
    got = splicer.media(VIDEO, 0, AVC_HEADER, 0.0)
    for type_id, ts, body in stream[:75]:  # a dies in the fourth GOP (after video at 1480), in real time
        got += splicer.media(type_id, ts, body, ts / 1000)
    splicer.switch(1.0, origin="b")
    got += splicer.media(VIDEO, 1200, AVC_HEADER, 1.0)  # b's join burst: header, then its GOP cache...
    for type_id, ts, body in stream[60:]:  # ...from the keyframe at 1200 at once (at 1.55 s), and on live
        got += splicer.media(type_id, ts, body, max(1.55, ts / 1000 + 0.05))
    assert [(o.type_id, o.timestamp, o.body) for o in got] == [(VIDEO, 0, AVC_HEADER)] + stream  # as published
    splice = splicer.splices[0]
    assert splice.mode == "aligned" and splice.skipped == 15  # 1200 .. 1480: players had them
    assert splice.timestamp_ms == 1200 and splice.gap_ms == pytest.approx(70, abs=0.1)  # 1.48 s -> 1.55 s


def test_after_a_silence_a_newer_keyframe_on_the_same_timeline_keeps_its_place():
    stream = source(100)
    splicer = Splicer()
    splicer.switch(0.0)
    for type_id, ts, body in stream[:75]:  # a goes silent after 1480 (audio 1460 + 20 = 1480 too)
        splicer.media(type_id, ts, body, ts / 1000)
    splicer.switch(2.98)  # 1.5 s of silence later: b's GOP cache starts at 2800, newer than anything handed on
    out = []
    for type_id, ts, body in stream[140:]:
        out += splicer.media(type_id, ts, body, 3.0)
    assert splicer.splices[0].mode == "continued" and out[0].timestamp == 2800 and out[0].body == key(2800)
    # Far further ahead than the time that passed: another clock, rebased.
    splicer.switch(4.0)
    out = splicer.media(VIDEO, 90_000, key(90_000), 4.1)
    assert splicer.splices[1].mode == "rebased" and out[0].timestamp == 3960 + 20 + 40


def test_another_encoders_keyframe_at_the_same_timestamp_is_rebased():
    splicer = Splicer()
    splicer.switch(0.0)
    for type_id, ts, body in source(15):
        splicer.media(type_id, ts, body, 0.0)
    splicer.switch(1.0)
    other = bytes([0x17, 1, 0, 0, 0]) + b"another encoder"
    out = splicer.media(VIDEO, 400, other, 1.0)
    assert splicer.splices[0].mode == "rebased" and out[0].timestamp == 580 + 40


def test_timestamps_never_go_back_across_splices_even_when_the_new_origin_is_behind():
    splicer = Splicer()
    delivered = []
    for n, start in enumerate([90_000, 10, 5_000_000, 0]):  # clocks ahead, behind, far ahead, zero
        splicer.switch(float(n), origin=str(n))
        delivered += origin_burst(splicer, start, 60, float(n) + 0.5)
    for kind in (VIDEO, AUDIO):
        stamps = [o.timestamp for o in delivered if o.type_id == kind]
        assert stamps == sorted(stamps)
    assert len(splicer.splices) == 3


def test_audio_older_than_the_spliced_keyframe_is_lifted_to_the_splice_point():
    splicer = Splicer()
    splicer.switch(0.0)
    origin_burst(splicer, 0, 5, 0.0)  # last video 160, audio 163
    splicer.switch(1.0)
    out = splicer.media(VIDEO, 100, key(100), 1.0) + splicer.media(AUDIO, 90, aac(90), 1.0)  # a clock behind
    assert out[0].timestamp == 163 + 40 and splicer.splices[0].mode == "rebased"
    assert out[1].timestamp == out[0].timestamp  # not below the splice point


def test_changed_sequence_headers_and_metadata_are_sent_before_the_keyframe():
    splicer = Splicer()
    splicer.switch(0.0)
    origin_burst(splicer, 0, 5, 0.0)
    splicer.switch(1.0)
    new_meta = amf0.encode("onMetaData", {"width": 1280.0})
    out = splicer.data(["onMetaData", {"width": 1280.0}], new_meta, 7000, 1.0)
    out += splicer.media(VIDEO, 7000, OTHER_AVC_HEADER, 1.0)
    out += splicer.media(AUDIO, 7000, AAC_HEADER, 1.0)  # unchanged
    assert out == []  # held until the keyframe
    out = splicer.media(VIDEO, 7000, key(7000), 1.0)
    assert [o.body for o in out] == [new_meta, OTHER_AVC_HEADER, key(7000)]
    assert len({o.timestamp for o in out}) == 1
    assert splicer.splices[0].headers_resent == 2
    assert splicer.splices[0].gap_ms == 1000  # from the old origin's last message, not from the headers


def test_failed_attempts_between_keep_waiting_for_a_keyframe():
    splicer = Splicer()
    splicer.switch(0.0)
    origin_burst(splicer, 0, 5, 0.0)
    splicer.switch(1.0, origin="b")  # b refuses: nothing from it
    splicer.switch(2.5, origin="c")
    out = origin_burst(splicer, 300, 3, 2.6)
    assert out[0].body == key(300)
    splice = splicer.splices[0]
    assert splice.requested_at == 1.0 and dict(splice.note)["origin"] == "c"
    assert splice.gap_ms == pytest.approx(2600, abs=0.1)


def test_audio_only_stream_splices_at_any_audio_frame():
    splicer = Splicer()
    splicer.switch(0.0)
    for i in range(10):
        splicer.media(AUDIO, 23 * i, aac(i), 0.0)
    splicer.switch(1.0)
    out = splicer.media(AUDIO, 50_000, aac(99), 1.0)
    assert out[0].timestamp == 23 * 9 + 23 and splicer.interval_ms() == 23


def test_timestamps_wrap_at_32_bits_within_an_origin_and_across_a_splice():
    splicer = Splicer()
    splicer.switch(0.0)
    start = 0xFFFFFFFF - 50
    stamps = [(start + 40 * i) & 0xFFFFFFFF for i in range(4)]  # wraps after the second frame
    out = [splicer.media(VIDEO, ts, key(ts) if i == 0 else inter(ts), 0.0)[0] for i, ts in enumerate(stamps)]
    assert [o.timestamp for o in out] == stamps  # on the wire as they came, not held at the top
    splicer.switch(1.0)
    spliced = splicer.media(VIDEO, 7, key(7), 1.0)[0]
    assert spliced.timestamp == (start + 4 * 40) & 0xFFFFFFFF


def test_rotation_moves_on_and_pauses_after_a_failed_round():
    rotation = OriginRotation(["a", "b", "c"], retry_s=1.5)
    assert rotation.current == "a"
    assert rotation.failed(delivered=True) == 0 and rotation.current == "b"
    assert rotation.failed(delivered=False) == 0 and rotation.current == "c"
    assert rotation.failed(delivered=False) == 0 and rotation.current == "a"
    assert rotation.failed(delivered=False) == 1.5 and rotation.current == "b"  # three in a row
    with pytest.raises(ValueError):
        OriginRotation([], 1.0)


def test_pull_url_adds_the_stream_and_the_players_app_where_missing():
    assert pull_url("rtmp://[2001:db8::1]:1936/live", "other", "cam") == "rtmp://[2001:db8::1]:1936/live/cam"
    assert pull_url("rtmp://origin1", "live", "cam?x=1") == "rtmp://origin1:1935/live/cam?x=1"
