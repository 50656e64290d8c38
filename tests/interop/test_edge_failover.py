"""An edge relay with two origins on loopback: the origin it pulls from is SIGKILLed, the viewers go on.

One `mpstream publish --file` feeds both origins (A over IPv6, B over IPv4); the edge pulls
from A for an `mpstream play` with a 1 s buffer and for ffmpeg. A is killed part way; the
next origin in the edge's list answers with garbage (a real socket), the one after it is B.
The player must see no stall, at least 95 % of the frames and timestamps that never go
back or repeat, ffmpeg must go on decoding, the edge's stats must name B with one switch,
the publisher's connection to B must not have noticed A, and the pull must end once its
players have left. About 19 s (the 30 s run of issue 18 is benchmarks/edge_failover.py).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support import media
from tests.support.relay_process import MPSTREAM, RelayProcess

pytestmark = [
    pytest.mark.skipif(not media.have_ffmpeg(), reason="ffmpeg/ffprobe not installed"),
    pytest.mark.timeout(90),
]

PLAY_S = 14
KILL_AT_S = 5
FPS = 25  # of the sample file


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def published(relay: RelayProcess) -> bool:
    return any(s["publishing"] for s in relay.stats("/streams"))


class GarbageOrigin:
    """A listener on loopback that answers every connection with bytes that are not RTMP."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)) * 8)

    def close(self) -> None:
        self.sock.close()


class FfmpegPlayer:
    """ffmpeg decoding the stream (video only) and saying how many frames it has decoded, with when."""

    def __init__(self, url: str, seconds: float, log: Path):
        self.progress: list[tuple[float, int]] = []  # (monotonic time, frames decoded)
        self.proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", url, "-t", str(seconds), "-an",
             "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.25"],
            stdout=subprocess.PIPE, stderr=log.open("wb"), text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("frame="):
                self.progress.append((time.monotonic(), int(line.split("=", 1)[1])))

    def frames_at(self, moment: float) -> int:
        return max((n for t, n in self.progress if t <= moment), default=0)


def test_edge_survives_its_origin_being_killed(tmp_path):
    sample = media.sample_flv(seconds=12)
    origin_a = RelayProcess(tmp_path / "origin-a.log").start()
    origin_b = RelayProcess(tmp_path / "origin-b.log").start()
    garbage = GarbageOrigin()
    # The kill is an EOF; silence is the unit tests' part (2 s here: no needless switch on a loaded machine).
    edge = RelayProcess(tmp_path / "edge.log", extra=(
        "--origin", f"rtmp://[::1]:{origin_a.port}/live", "--origin", f"rtmp://127.0.0.1:{garbage.port}/live",
        "--origin", f"rtmp://127.0.0.1:{origin_b.port}/live", "--pull-linger-s", "1",
        "--origin-silence-s", "2")).start()
    processes: list[subprocess.Popen] = []
    try:
        publisher = subprocess.Popen(
            [MPSTREAM, "publish", "--file", str(sample), "--loop", "--duration", str(PLAY_S + 6),
             origin_a.url(host="::1"), origin_b.url(host="127.0.0.1"), "--json", str(tmp_path / "publish.json")],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "publish.log").open("wb"), start_new_session=True)
        processes.append(publisher)
        wait_for(lambda: published(origin_a) and published(origin_b), 10, "both origins hold the stream")
        player = subprocess.Popen(
            [MPSTREAM, "play", edge.url(), "--duration", str(PLAY_S), "--buffer-ms", "1000",
             "--json", str(tmp_path / "play.json"), "--csv", str(tmp_path / "frames.csv")],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "play.log").open("wb"), start_new_session=True)
        processes.append(player)
        ffmpeg = FfmpegPlayer(edge.url(host="127.0.0.1"), PLAY_S - 1, tmp_path / "ffmpeg.log")
        processes.append(ffmpeg.proc)
        started = time.monotonic()

        time.sleep(KILL_AT_S)
        origin_a.proc.kill()  # SIGKILL: no goodbye to the edge
        killed = time.monotonic()
        # A late joiner shares the pull and starts at once, at a keyframe from the edge's GOP cache.
        late = subprocess.Popen(
            [MPSTREAM, "play", edge.url(), "--duration", "3", "--buffer-ms", "1000", "--json",
             str(tmp_path / "late.json"), "--csv", str(tmp_path / "late.csv")],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "late.log").open("wb"), start_new_session=True)
        processes.append(late)
        wait_for(lambda: (edge.stats("/streams") or [{}])[0].get("players") == 3, 5, "three players at the edge")
        assert edge.stats()["edge"]["pulls_started"] == 1
        pull = wait_for(lambda: [p for p in [edge.stats("/streams")[0]["pull"]] if p["switches"]], 5,
                        "a switch in the stats")[0]
        assert pull["delivering_origin"] == f"rtmp://127.0.0.1:{origin_b.port}/live/cam", pull
        switch = pull["switch_log"][0]
        assert switch["previous_origin"].startswith(f"rtmp://[::1]:{origin_a.port}/") and switch["gap_ms"] < 500
        # One publisher feeds both origins: B's keyframe is one A delivered, so nothing is sent twice.
        assert switch["mode"] == "aligned" and switch["skipped_as_delivered"] > 0, switch
        assert garbage.connections == 1 and "protocol error" in pull["failures"][1]["reason"], pull["failures"]
        metrics = edge.metrics()
        assert 'mpstream_relay_stream_pull_switches_total{stream="live/cam"} 1' in metrics
        assert f'origin="rtmp://127.0.0.1:{origin_b.port}/live/cam"}} 1' in metrics

        assert player.wait(timeout=PLAY_S + 15) == 0, (tmp_path / "play.log").read_text()[-2000:]
        assert ffmpeg.proc.wait(timeout=15) == 0, (tmp_path / "ffmpeg.log").read_text()[-2000:]
        assert late.wait(timeout=5) == 0, (tmp_path / "late.log").read_text()[-2000:]
        ffmpeg.reader.join(5)
        # The pull ends once its players have gone (1 s linger, then the next housekeeping round).
        wait_for(lambda: not edge.stats("/streams"), 4, "the pull ended after its players left")
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        origin_b.stop()
        origin_a.stop()
        garbage.close()
        edge_code = edge.stop()
    edge_log = edge.log_text()
    assert edge_code == 0 and "Traceback" not in edge_log, edge_log[-2000:]

    # The publisher went on to B while its connection to A failed and retried on its own.
    report = json.loads((tmp_path / "publish.json").read_text())
    to_a, to_b = report["urls"]
    assert to_a["outages"] and to_a["connections"] == 1, to_a
    assert to_b["reconnects"] == 0 and not to_b["outages"] and to_b["tags_sent"] > to_a["tags_sent"], to_b
    late_summary = json.loads((tmp_path / "late.json").read_text())
    assert late_summary["startup_s"] < 0.5 and late_summary["stall_count"] == 0, late_summary
    with open(tmp_path / "late.csv") as handle:
        first_frame = next(r for r in csv.DictReader(handle) if r["kind"] == "video" and int(r["size"]) > 100)
    assert first_frame["keyframe"] == "1"
    summary = json.loads((tmp_path / "play.json").read_text())
    assert summary["stall_count"] == 0 and summary["reconnects"] == 0, summary
    played_s = summary["duration_s"] - summary["play_started_s"]
    assert summary["video_frames"] >= 0.95 * FPS * played_s, (summary["video_frames"], played_s)
    with open(tmp_path / "frames.csv") as handle:
        rows = list(csv.DictReader(handle))
    for kind in ("video", "audio"):
        stamps = [int(r["timestamp_ms"]) for r in rows if r["kind"] == kind]
        assert stamps and all(b >= a for a, b in zip(stamps, stamps[1:], strict=False)), f"{kind} timestamps went back"
    video = [(r["timestamp_ms"], r["size"]) for r in rows if r["kind"] == "video"]
    assert len(set(video)) == len(video), "a video frame came twice"
    # ffmpeg decoded on after the kill: about as many frames as the time left at 25 fps.
    after = ffmpeg.frames_at(started + PLAY_S) - ffmpeg.frames_at(killed + 0.5)
    assert after >= 0.8 * FPS * (PLAY_S - 1 - KILL_AT_S - 0.5 - 1), (after, ffmpeg.progress[-3:])
