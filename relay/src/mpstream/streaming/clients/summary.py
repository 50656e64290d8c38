"""A player run as one self-describing JSON document, a few printed lines, and an optional CSV.

Pure: `summarize(recording, options)` applies the playback model to a recording; nothing
here touches the network. Latency is measured per frame from the publisher's announced
start (`clock`): `latency_ms` is arrival minus send (the network and the relays),
`display_latency_ms` adds the time the frame waited in the player's buffer and stalls.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import socket
from datetime import UTC, datetime

from mpstream import __version__
from mpstream.streaming.clients.playback import AUDIO, VIDEO, Frame, Playback, simulate
from mpstream.streaming.clients.player import Received, Recording

SCHEMA = "mpstream-play/1"
CSV_FIELDS = ["arrival_s", "kind", "timestamp_ms", "size", "keyframe", "latency_ms"]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def distribution_ms(seconds: list[float]) -> dict:
    keys = {"p50": 50, "p95": 95, "p99": 99}
    out: dict = {k: _round(percentile(seconds, q), 1000) for k, q in keys.items()}
    out["max"] = _round(max(seconds), 1000) if seconds else None
    out["count"] = len(seconds)
    return out


def _round(value: float | None, scale: float = 1.0, digits: int = 1) -> float | None:
    return None if value is None else round(value * scale, digits)


def sent_s(recording: Recording, frame: Received) -> float | None:
    """When the publisher sent `frame`, in seconds since the play command (None: no announced start)."""
    if recording.start_ms is None:
        return None
    return (recording.start_ms + frame.timestamp_ms) / 1000 - recording.started_wall


def media_frames(recording: Recording) -> list[Received]:
    return [f for f in recording.frames if not f.sequence_header]


def model_frames(recording: Recording) -> list[Frame]:
    return [Frame(f.arrival_s, f.timestamp_ms, f.kind, f.size, f.keyframe, sent_s(recording, f))
            for f in media_frames(recording)]


def bitrate_series(frames: list[Received], bin_s: float = 1.0) -> list[dict]:
    """Received payload bit rate per `bin_s` interval since the play command."""
    if not frames:
        return []
    bins: dict[int, int] = {}
    for f in frames:
        index = int(f.arrival_s // bin_s)
        bins[index] = bins.get(index, 0) + f.size
    last = max(bins)
    return [{"t_s": round(i * bin_s, 3), "bps": round(bins.get(i, 0) * 8 / bin_s)} for i in range(last + 1)]


def average_bitrate(frames: list[Received]) -> float | None:
    """Payload bits per second from the first arrival to the last."""
    if len(frames) < 2:
        return None
    span = frames[-1].arrival_s - frames[0].arrival_s
    if span <= 0:
        return None
    return sum(f.size for f in frames[1:]) * 8 / span


def summarize(recording: Recording, options: dict, playback: Playback | None = None) -> dict:
    frames = media_frames(recording)
    model = model_frames(recording)
    result = playback or simulate(model, options.get("buffer_ms", 0), recording.media_end_s)
    latencies = [m.arrival_s - m.sent_s for m in model if m.sent_s is not None]
    bitrate = average_bitrate(frames)
    ran = result.startup_s is not None
    return {
        "schema": SCHEMA,
        "version": __version__,
        "command": "play",
        "url": recording.url,
        "options": options,
        "host": {"name": socket.gethostname(), "kernel": platform.release(), "pid": os.getpid()},
        # Unix seconds (what other run data is aligned on), and the same for people to read.
        "started_at": round(recording.started_wall, 3),
        "ended_at": round(recording.started_wall + recording.ended_s, 3),
        "started_at_utc": _iso(recording.started_wall),
        "ended_at_utc": _iso(recording.started_wall + recording.ended_s),
        "duration_s": round(recording.ended_s, 3),
        "stream_ended_s": _round(recording.unpublished_s, 1, 3),  # the publisher left (None: it did not)
        "ran": ran,
        "complete": recording.complete,
        "end_reason": recording.end_reason,
        "error": recording.error,
        "connection": recording.connection,
        "reconnects": recording.reconnects,
        "disconnects": recording.disconnects,
        "duplicates_dropped": recording.duplicates,
        "connected_s": _round(recording.connected_s, 1, 4),
        "play_started_s": _round(recording.play_started_s, 1, 4),
        "startup_s": _round(result.startup_s, 1, 4),
        "stall_count": result.stall_count,
        "stall_total_s": round(result.stall_total_s, 4),
        "stall_max_s": round(result.stall_max_s, 4),
        "stalls": [s.as_dict() for s in result.stalls],
        "video_frames": sum(1 for f in frames if f.kind == VIDEO),
        "audio_frames": sum(1 for f in frames if f.kind == AUDIO),
        "keyframes": sum(1 for f in frames if f.keyframe),
        "frames_shown": result.frames_shown,
        "frames_late": result.frames_late,
        "frames_skipped": result.frames_skipped,
        "discontinuities": result.discontinuities,
        "frame_interval_ms": round(result.interval_ms, 3),
        "bytes": sum(f.size for f in frames),
        "bitrate_bps": None if bitrate is None else round(bitrate),
        "bitrate_series": bitrate_series(frames),
        "latency_ms": distribution_ms(latencies),
        "display_latency_ms": distribution_ms(result.display_latency_s),
        "clock": {"start_ms": recording.start_ms, "source": recording.start_source},
        "metadata": recording.metadata,
        "statuses": recording.statuses,
    }


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def describe(summary: dict) -> list[str]:
    """The summary as a few lines for a terminal."""
    lat = summary["latency_ms"]
    startup = summary["startup_s"]
    rate = summary["bitrate_bps"]
    lines = [
        f"played {summary['url']} for {summary['duration_s']:.1f} s ({summary['end_reason']})",
        f"  startup {'never' if startup is None else f'{startup:.3f} s'}, "
        f"stalls {summary['stall_count']} (total {summary['stall_total_s']:.3f} s, "
        f"longest {summary['stall_max_s']:.3f} s)",
        f"  frames: {summary['video_frames']} video, {summary['audio_frames']} audio; "
        f"late {summary['frames_late']}, skipped {summary['frames_skipped']}",
        f"  bitrate {'-' if rate is None else f'{rate / 1e6:.3f} Mbit/s'}; latency "
        + ("unknown (no announced start)" if lat["p50"] is None else
           f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms"),
    ]
    lines += [f"  stall at {s['at_s']:.3f} s for {s['duration_s']:.3f} s" for s in summary["stalls"][:10]]
    return lines


def progress_line(recording: Recording, now_s: float, buffer_ms: float) -> str:
    """One line about a run in progress."""
    model = model_frames(recording)
    result = simulate(model, buffer_ms, min(now_s, recording.unpublished_s or now_s))
    frames = media_frames(recording)
    recent = [f for f in frames if f.arrival_s >= now_s - 10]
    rate = sum(f.size for f in recent) * 8 / min(10.0, max(now_s, 1e-3))
    video = sum(1 for f in frames if f.kind == VIDEO)
    latencies = [m.arrival_s - m.sent_s for m in model[-300:] if m.sent_s is not None]
    p50 = percentile(latencies, 50)
    return (f"play: {now_s:.0f} s, {video} video / {len(frames) - video} audio frames, "
            f"{rate / 1e6:.2f} Mbit/s, stalls {result.stall_count} ({result.stall_total_s:.1f} s)"
            + ("" if p50 is None else f", latency p50 {p50 * 1000:.0f} ms"))


def write_csv(recording: Recording, path: str) -> None:
    """One row per received audio/video message (sequence headers included, flagged by size only)."""
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        for f in recording.frames:
            sent = sent_s(recording, f)
            writer.writerow([f"{f.arrival_s:.6f}", f.kind, f.timestamp_ms, f.size, int(f.keyframe),
                             "" if sent is None else f"{(f.arrival_s - sent) * 1000:.3f}"])
