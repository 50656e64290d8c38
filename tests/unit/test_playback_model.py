"""The playback model against scripted arrival patterns whose answers are worked out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpstream.streaming.clients.playback import AUDIO, VIDEO, Frame, frame_interval_ms, simulate

FPS = 30
STEP_MS = 1000 / FPS


def steady(seconds: float, start_s: float = 0.0, first_index: int = 0, fps: int = FPS) -> list[Frame]:
    """Video frames that arrive exactly when they are due, a keyframe every 2 s."""
    count = round(seconds * fps)
    return [
        Frame(arrival_s=start_s + k / fps, timestamp_ms=(first_index + k) * 1000 / fps, kind=VIDEO,
              size=1000, keyframe=(first_index + k) % (2 * fps) == 0)
        for k in range(count)
    ]


def with_pause(total_s: float, pause_at_s: float, pause_s: float) -> list[Frame]:
    """A steady stream whose frames due during [pause_at, pause_at + pause) arrive together at its end
    (what TCP delivers after an outage: nothing is lost, the backlog comes in one burst)."""
    frames = []
    for f in steady(total_s):
        if pause_at_s <= f.arrival_s < pause_at_s + pause_s:
            f = Frame(pause_at_s + pause_s, f.timestamp_ms, f.kind, f.size, f.keyframe)
        frames.append(f)
    return frames


def test_steady_stream_starts_after_the_buffer_and_never_stalls():
    result = simulate(steady(20), buffer_ms=1000, end_s=20)
    assert result.startup_s == pytest.approx(1.0)
    assert result.stall_count == 0
    assert result.frames_late == 0 and result.frames_skipped == 0
    assert result.interval_ms == pytest.approx(STEP_MS)


def test_two_second_pause_with_one_second_buffer_is_one_stall_of_one_second():
    result = simulate(with_pause(20, pause_at_s=10, pause_s=2.0), buffer_ms=1000, end_s=20)
    assert result.stall_count == 1
    stall = result.stalls[0]
    assert stall.at_s == pytest.approx(11.0)  # the 1 s buffer ran dry 1 s into the pause
    assert stall.duration_s == pytest.approx(1.0)
    assert result.stall_total_s == pytest.approx(1.0) and result.stall_max_s == pytest.approx(1.0)
    assert result.frames_late == 30  # one second of frames at 30 fps came after their moment


@pytest.mark.parametrize(("pause_s", "buffer_ms", "expected"), [
    (0.5, 1000, 0.0),  # the buffer covers the pause
    (1.0, 1000, 0.0),  # exactly covered
    (3.0, 1000, 2.0),
    (3.0, 500, 2.5),
    (2.0, 0, 2.0),  # no buffer: the whole pause is seen
])
def test_stall_is_the_pause_minus_the_buffer(pause_s, buffer_ms, expected):
    result = simulate(with_pause(20, pause_at_s=8, pause_s=pause_s), buffer_ms=buffer_ms, end_s=20)
    assert result.stall_total_s == pytest.approx(expected, abs=1e-6)
    assert result.stall_count == (1 if expected else 0)


def test_two_pauses_are_two_stalls_with_their_times():
    frames = steady(30)
    for at, length in ((5.0, 2.5), (15.0, 4.0)):
        frames = [Frame(at + length, f.timestamp_ms, f.kind, f.size, f.keyframe)
                  if at <= f.arrival_s < at + length else f for f in frames]
    result = simulate(frames, buffer_ms=1000, end_s=30)
    # The first stall leaves playback 1.5 s behind, so 2.5 s are buffered when the second pause
    # begins: it freezes 2.5 s later for the remaining 1.5 s.
    assert [(round(s.at_s, 3), round(s.duration_s, 3)) for s in result.stalls] == [(6.0, 1.5), (17.5, 1.5)]
    assert result.stall_total_s == pytest.approx(3.0)


def test_startup_waits_for_the_first_keyframe():
    # Joining mid-GOP: 0.5 s of inter frames come first and cannot be decoded.
    frames = [f for f in steady(10) if f.timestamp_ms >= 1500]
    result = simulate(frames, buffer_ms=1000, end_s=10)
    assert result.frames_skipped == 15
    assert result.startup_s == pytest.approx(3.0)  # keyframe at 2.0 s + 1.0 s of buffer
    assert result.stall_count == 0


def test_zero_buffer_starts_at_the_first_frame():
    result = simulate(steady(5, start_s=0.25), buffer_ms=0, end_s=5.25)
    assert result.startup_s == pytest.approx(0.25)
    assert result.stall_count == 0


def test_stream_that_stops_leaves_an_open_stall_until_the_end():
    result = simulate(steady(10), buffer_ms=1000, end_s=15)
    assert result.stall_count == 1
    stall = result.stalls[0]
    assert stall.open
    assert stall.at_s == pytest.approx(11.0) and stall.duration_s == pytest.approx(4.0)


def test_never_started_has_no_startup():
    result = simulate(steady(0.5), buffer_ms=1000, end_s=5)
    assert result.startup_s is None
    assert result.stall_count == 0


def test_lost_frames_freeze_until_the_buffer_is_refilled():
    # Frames due in [10, 12) never arrive (a relay dropped them); the stream goes on live.
    frames = [f for f in steady(20) if not 10 <= f.arrival_s < 12]
    result = simulate(frames, buffer_ms=1000, end_s=20)
    assert result.discontinuities == 1
    assert result.stall_count == 1
    # Dry at 11.0; from 12.0 live frames refill 1.0 s of buffer, so playback resumes at 13.0.
    assert result.stalls[0].at_s == pytest.approx(11.0)
    assert result.stalls[0].duration_s == pytest.approx(2.0, abs=STEP_MS / 1000 + 1e-6)


def test_timestamps_restarting_from_zero_are_stitched_without_a_stall():
    first = steady(10)
    second = steady(10, start_s=10.0)  # a new publisher: timestamps start again at 0
    result = simulate(first + second, buffer_ms=1000, end_s=20)
    assert result.discontinuities == 1
    assert result.stall_count == 0
    assert result.frames_skipped == 0


def test_audio_only_stream_uses_the_audio_timeline():
    step = 1024 / 44100
    frames = [Frame(k * step, k * step * 1000, AUDIO, 300) for k in range(400)]
    result = simulate(frames, buffer_ms=500, end_s=400 * step)
    assert result.timeline == AUDIO
    assert result.startup_s == pytest.approx(round(0.5 / step + 0.4999) * step, abs=step)
    assert result.stall_count == 0


def test_display_latency_is_buffer_plus_network_delay():
    # Each frame sent 0.05 s before it arrives; the 1 s buffer adds one second on top.
    frames = [Frame(f.arrival_s, f.timestamp_ms, f.kind, f.size, f.keyframe, sent_s=f.arrival_s - 0.05)
              for f in steady(10)]
    result = simulate(frames, buffer_ms=1000, end_s=10)
    assert result.display_latency_s
    assert min(result.display_latency_s) == pytest.approx(1.05, abs=1e-6)
    assert max(result.display_latency_s) == pytest.approx(1.05, abs=1e-6)


def test_frame_interval_is_the_median_step():
    assert frame_interval_ms([0, 40, 80, 120, 500]) == pytest.approx(40)
    assert frame_interval_ms([]) > 0


# The summary a player run produces --------------------------------------------------------

def recording_of(frames: list[Frame], ended_s: float, start_ms: int | None = None):
    from mpstream.streaming.clients.player import Received, Recording

    rec = Recording("rtmp://example.invalid/live/x", started_wall=1_000_000.0, ended_s=ended_s,
                    end_reason="duration", start_ms=start_ms, start_source="sei" if start_ms else None)
    rec.frames = [Received(f.arrival_s, round(f.timestamp_ms), f.kind, f.size, f.keyframe) for f in frames]
    return rec


def test_summary_has_the_documented_keys_and_numbers():
    from mpstream.streaming.clients.summary import describe, summarize

    # Sent at start + ts; each frame arrives 40 ms after it was sent.
    frames = [Frame(f.arrival_s + 0.04, f.timestamp_ms, f.kind, 1250, f.keyframe) for f in steady(20)]
    rec = recording_of(frames, ended_s=20.0, start_ms=1_000_000_000)
    summary = summarize(rec, {"buffer_ms": 1000, "duration_s": 20})
    for key in ("startup_s", "stall_count", "stall_total_s", "stall_max_s", "stalls", "video_frames",
                "audio_frames", "bitrate_bps", "latency_ms", "version", "options", "url", "started_at",
                "ended_at"):
        assert key in summary, key
    assert summary["video_frames"] == 600 and summary["audio_frames"] == 0
    assert summary["bitrate_bps"] == pytest.approx(1250 * 8 * 30, rel=0.01)
    assert summary["latency_ms"]["p50"] == pytest.approx(40, abs=0.5)
    assert summary["latency_ms"]["p99"] == pytest.approx(40, abs=0.5)
    assert summary["stall_count"] == 0 and summary["startup_s"] == pytest.approx(1.04)
    assert summary["started_at"] == 1_000_000.0 and summary["ended_at"] == 1_000_020.0
    assert summary["started_at_utc"].startswith("1970-01-12T13:46:40")
    assert any("stalls 0" in line for line in describe(summary))


def test_a_publisher_that_left_is_an_end_not_a_stall():
    from mpstream.streaming.clients.summary import summarize

    rec = recording_of(steady(10), ended_s=30.0)
    assert summarize(rec, {"buffer_ms": 1000})["stall_count"] == 1  # starved until the end of the run
    rec.unpublished_s = 10.0
    summary = summarize(rec, {"buffer_ms": 1000})
    assert summary["stall_count"] == 0 and summary["stream_ended_s"] == 10.0


def test_unknown_start_means_unknown_latency():
    from mpstream.streaming.clients.summary import summarize

    summary = summarize(recording_of(steady(5), ended_s=5.0), {"buffer_ms": 500})
    assert summary["latency_ms"]["p50"] is None and summary["latency_ms"]["count"] == 0


def test_percentiles_interpolate_between_ranks():
    from mpstream.streaming.clients.summary import percentile

    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) is None


def test_bitrate_series_has_one_bin_per_second():
    from mpstream.streaming.clients.player import Received
    from mpstream.streaming.clients.summary import bitrate_series

    frames = [Received(t / 10, t * 100, VIDEO, 1000, False) for t in range(30)]
    series = bitrate_series(frames)
    assert [b["t_s"] for b in series] == [0.0, 1.0, 2.0]
    assert all(b["bps"] == 80_000 for b in series)


def test_csv_has_one_row_per_message(tmp_path):
    from mpstream.streaming.clients.summary import CSV_FIELDS, write_csv

    rec = recording_of(steady(2), ended_s=2.0, start_ms=1_000_000_000)
    write_csv(rec, str(tmp_path / "f.csv"))
    rows = (tmp_path / "f.csv").read_text().splitlines()
    assert rows[0].split(",") == CSV_FIELDS and len(rows) == 61
    assert rows[1].split(",")[1:5] == ["video", "0", "1000", "1"]


@settings(max_examples=60, deadline=None)
@given(pause_ms=st.integers(0, 5000), buffer_ms=st.integers(0, 3000), pause_at_frame=st.integers(100, 300))
def test_any_pause_stalls_for_what_the_buffer_does_not_cover(pause_ms, buffer_ms, pause_at_frame):
    pause_at = pause_at_frame / FPS
    result = simulate(with_pause(20, pause_at_s=pause_at, pause_s=pause_ms / 1000), buffer_ms=buffer_ms,
                      end_s=20 + pause_ms / 1000)
    expected = max(0.0, pause_ms - buffer_ms) / 1000
    assert result.stall_total_s == pytest.approx(expected, abs=STEP_MS / 1000 + 1e-6)
    assert result.stall_count == (1 if result.stall_total_s > 0 else 0)
    assert result.frames_skipped == 0
