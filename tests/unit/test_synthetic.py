"""The synthetic stream: exact byte budgets, a video-like size pattern, well-formed H.264/AAC framing."""

from __future__ import annotations

import itertools
import re
import statistics

import pytest
from mpstream.streaming import flv
from mpstream.streaming.clients import aac, h264
from mpstream.streaming.clients.synthetic import SyntheticOptions, SyntheticStream, parse_duration, parse_rate


def take_seconds(stream: SyntheticStream, seconds: float) -> list[flv.Tag]:
    return list(itertools.takewhile(lambda t: t.timestamp < seconds * 1000, stream.tags()))


@pytest.mark.parametrize("bitrate", [500_000, 2_500_000, 6_000_000])
def test_payload_bitrate_is_what_was_asked(bitrate):
    tags = take_seconds(SyntheticStream(SyntheticOptions(bitrate_bps=bitrate)), 10)
    measured = sum(len(t.body) for t in tags) * 8 / 10
    assert measured == pytest.approx(bitrate, rel=0.005)


def test_every_gop_starts_with_a_keyframe_several_times_an_inter_frame():
    options = SyntheticOptions(fps=30, gop_s=2, keyframe_ratio=8)
    video = [t for t in take_seconds(SyntheticStream(options), 10) if t.type == flv.TAG_VIDEO]
    keys = [i for i, t in enumerate(video) if flv.is_keyframe(t.body)]
    assert keys == [0, 60, 120, 180, 240]
    key_sizes = [len(video[i].body) for i in keys]
    inter_sizes = [len(t.body) for i, t in enumerate(video) if i not in keys]
    assert statistics.mean(key_sizes) / statistics.mean(inter_sizes) == pytest.approx(8, rel=0.1)
    assert min(inter_sizes) < statistics.mean(inter_sizes) * 0.85 < statistics.mean(inter_sizes) * 1.15 \
        < max(inter_sizes)  # the inter frames vary like an encoder's


def test_timestamps_follow_frame_rate_and_aac_frame_duration():
    tags = take_seconds(SyntheticStream(SyntheticOptions(fps=25)), 4)
    video = [t.timestamp for t in tags if t.type == flv.TAG_VIDEO]
    audio = [t.timestamp for t in tags if t.type == flv.TAG_AUDIO]
    assert video[:4] == [0, 40, 80, 120] and len(video) == 100
    assert len(audio) == 173  # 4 s of 1024-sample frames at 44.1 kHz
    assert audio[1] == 23 and audio[10] == 232
    assert [t.timestamp for t in tags] == sorted(t.timestamp for t in tags)


def test_sequence_headers_describe_the_stream():
    stream = SyntheticStream(SyntheticOptions(width=640, height=360))
    video, audio = stream.header_tags()
    assert flv.is_video_sequence_header(video.body) and flv.is_keyframe(video.body)
    assert flv.is_audio_sequence_header(audio.body)
    config = video.body[5:]
    assert config[0] == 1 and config[1] == h264.PROFILE_BASELINE
    assert h264.length_size_of(config) == 4
    assert audio.body[2:] == bytes([0x12, 0x10])  # AAC-LC, 44.1 kHz, stereo
    assert stream.metadata()["width"] == 640


def test_frames_are_length_prefixed_nal_units_of_the_right_kinds():
    stream = SyntheticStream(SyntheticOptions(fps=30, gop_s=1))
    video = [t for t in take_seconds(stream, 1.1) if t.type == flv.TAG_VIDEO]
    kinds = [[u[0] & 0x1F for u in h264.split_avcc(t.body[5:])] for t in video[:2]]
    assert kinds[0] == [h264.NAL_SPS, h264.NAL_PPS, h264.NAL_IDR, h264.NAL_FILLER]
    assert kinds[1] == [h264.NAL_SLICE, h264.NAL_FILLER]
    for tag in video:
        assert sum(4 + len(u) for u in h264.split_avcc(tag.body[5:])) == len(tag.body) - 5


def test_same_options_same_bytes():
    a = take_seconds(SyntheticStream(), 3)
    b = take_seconds(SyntheticStream(), 3)
    assert a == b
    c = take_seconds(SyntheticStream(SyntheticOptions(seed=2)), 3)
    assert [len(t.body) for t in a] != [len(t.body) for t in c]


@pytest.mark.parametrize("size", [aac.MIN_FRAME_SIZE, 8, 20, 22, 23, 100, 133, 134, 135, 271, 272, 400, 1500])
def test_aac_frames_have_exactly_the_size_asked(size):
    frame = aac.silent_frame(size)
    assert len(frame) == size
    assert frame[0] >> 5 == 1  # starts with a channel pair element


def test_aac_frame_below_the_minimum_is_refused():
    with pytest.raises(ValueError):
        aac.silent_frame(aac.MIN_FRAME_SIZE - 1)


def test_nal_units_contain_no_start_code_emulation():
    units = [h264.sps(1920, 1080, 30), h264.pps(), h264.idr_slice(320, 240, 0), h264.p_slice(320, 240, 3),
             h264.sei_user_data(bytes(16), bytes(300))]
    for unit in units:
        assert not re.search(rb"\x00\x00[\x00-\x02]", unit), unit[:8]  # 00 00 03 is the escape itself


def test_escape_inserts_emulation_prevention_bytes():
    assert h264.escape(b"\x00\x00\x01\x00\x00\x00") == b"\x00\x00\x03\x01\x00\x00\x03\x00"
    assert h264.unescape(h264.escape(b"\x00\x00\x02\x00\x00\x03")) == b"\x00\x00\x02\x00\x00\x03"


def test_sei_user_data_round_trip():
    uuid = bytes(range(16))
    for payload in (b"", b"x" * 10, b"\x00" * 300):
        unit = h264.sei_user_data(uuid, payload)
        assert h264.sei_user_data_payload(unit, uuid) == payload
        assert h264.sei_user_data_payload(unit, bytes(16)) is None
    assert h264.sei_user_data_payload(h264.pps(), uuid) is None


def test_filler_has_the_size_asked():
    assert len(h264.filler(2)) == 2 and len(h264.filler(5000)) == 5000
    with pytest.raises(ValueError):
        h264.filler(1)


@pytest.mark.parametrize(("text", "value"), [("2.5M", 2_500_000), ("800k", 800_000), ("128000", 128_000)])
def test_parse_rate(text, value):
    assert parse_rate(text) == value


@pytest.mark.parametrize(("text", "value"), [("2s", 2.0), ("500ms", 0.5), ("1.5", 1.5)])
def test_parse_duration(text, value):
    assert parse_duration(text) == value


def test_options_are_checked():
    with pytest.raises(ValueError):
        SyntheticStream(SyntheticOptions(bitrate_bps=100_000, audio_bps=128_000))
    with pytest.raises(ValueError):
        parse_rate("-1M")


# The clock announcement and file replay ----------------------------------------------------

def test_keyframes_carry_the_start_and_other_frames_stay_as_they_are():
    from mpstream.streaming.clients import clock

    stream = SyntheticStream(SyntheticOptions(gop_s=1))
    video = [t for t in take_seconds(stream, 1.1) if t.type == flv.TAG_VIDEO]
    stamped = clock.stamp_keyframe(video[0].body, 1_700_000_000_123)
    assert len(stamped) > len(video[0].body)
    assert clock.start_from_keyframe(stamped) == 1_700_000_000_123
    assert clock.start_from_keyframe(video[0].body) is None
    assert clock.stamp_keyframe(video[1].body, 1) == video[1].body  # inter frames untouched
    header = stream.header_tags()[0].body
    assert clock.stamp_keyframe(header, 1) == header  # so are sequence headers


def test_metadata_announces_the_start():
    from mpstream.streaming.clients import clock

    meta = clock.announce({"width": 640.0}, 1_700_000_000_000)
    assert meta["width"] == 640.0
    assert clock.start_from_metadata(["onMetaData", meta]) == 1_700_000_000_000
    assert clock.start_from_metadata(["onMetaData", {"width": 1.0}]) is None


def write_flv(path, stream: SyntheticStream, seconds: float) -> None:
    data = bytearray(flv.file_header())
    for tag in stream.header_tags() + take_seconds(stream, seconds):
        data += flv.encode_tag(tag)
    path.write_bytes(bytes(data))


def test_file_source_separates_headers_and_loops_with_continuing_timestamps(tmp_path):
    from mpstream.streaming.clients.sources import FileSource

    path = tmp_path / "two-seconds.flv"
    write_flv(path, SyntheticStream(SyntheticOptions(fps=25)), 2)
    source = FileSource(path, loop=True)
    assert [flv.is_video_sequence_header(t.body) or flv.is_audio_sequence_header(t.body)
            for t in source.header_tags()] == [True, True]
    assert source.loop_ms == 2000  # last video frame at 1960 ms + one 40 ms frame
    tags = list(itertools.islice(source.tags(), 400))
    video = [t.timestamp for t in tags if t.type == flv.TAG_VIDEO]
    assert video[:3] == [0, 40, 80]
    assert video[50:53] == [2000, 2040, 2080]  # the second loop goes on where the first ended
    assert all(b > a for a, b in zip(video, video[1:], strict=False))


def test_file_source_without_loop_ends(tmp_path):
    from mpstream.streaming.clients.sources import FileSource

    path = tmp_path / "one-second.flv"
    write_flv(path, SyntheticStream(SyntheticOptions(fps=25)), 1)
    tags = list(FileSource(path).tags())
    assert sum(1 for t in tags if t.type == flv.TAG_VIDEO) == 25
    with pytest.raises(flv.FLVError):
        (tmp_path / "empty.flv").write_bytes(flv.file_header())
        FileSource(tmp_path / "empty.flv")
