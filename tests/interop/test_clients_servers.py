"""`mpstream publish` and `mpstream play` against RTMP servers on loopback: nginx-rtmp, and our relay.

One 30 s session per server, everything in parallel to stay inside the time budget:
a file publisher (looped sample FLV) with a 30 s player and an ffmpeg recorder, and a
synthetic 2.5 Mbit/s publisher with a 30 s player and an ffmpeg recorder. The tests
then check what each of them saw.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support

from tests.support import media, nginx_rtmp  # noqa: E402

MPSTREAM = str(Path(sys.executable).with_name("mpstream"))
PLAY_S = 30
SYNTHETIC_BPS = 2_500_000
RECORD_S = 8

pytestmark = [
    pytest.mark.skipif(not media.have_ffmpeg(), reason="ffmpeg/ffprobe not installed"),
    pytest.mark.timeout(180),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def have_relay() -> bool:
    try:
        return importlib.util.find_spec("mpstream.streaming.relay.command") is not None
    except ModuleNotFoundError:
        return False


class OurRelay:
    """`mpstream relay` on [::1]:port as our child."""

    def __init__(self, port: int, log: Path):
        self.port = port
        self.log = log
        self.proc: subprocess.Popen | None = None

    def url(self, app: str = "live", stream: str = "test") -> str:
        return f"rtmp://[::1]:{self.port}/{app}/{stream}"

    def start(self) -> OurRelay:
        self.proc = subprocess.Popen([MPSTREAM, "relay", "--listen", f"[::1]:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("w"), start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpstream relay exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("::1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mpstream relay did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SERVERS = ["nginx-rtmp", pytest.param("mpstream-relay", marks=pytest.mark.skipif(
    not have_relay(), reason="mpstream relay is not part of this build yet"))]


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module", params=SERVERS)
def session(request, tmp_path_factory):
    """Run the whole 30 s session against one server; yield what everyone saw."""
    tmp = tmp_path_factory.mktemp(request.param)
    sample = media.sample_flv(seconds=10)
    if request.param == "nginx-rtmp":
        if not nginx_rtmp.available():
            pytest.skip("nginx with libnginx-mod-rtmp is not installed")
        server = nginx_rtmp.NginxRtmp(port=free_port()).start()
        url = server.url
    else:
        server = OurRelay(free_port(), tmp / "relay.log").start()
        url = server.url
    procs: list[subprocess.Popen] = []
    try:
        file_url, syn_url = url("live", "file"), url("live", "synthetic")
        players = {
            "file": spawn([MPSTREAM, "play", file_url, "--duration", str(PLAY_S), "--buffer-ms", "1000",
                           "--json", str(tmp / "file.json"), "--csv", str(tmp / "file.csv")], tmp / "play-file.log"),
            "synthetic": spawn([MPSTREAM, "play", syn_url, "--duration", str(PLAY_S), "--buffer-ms", "1000",
                                "--json", str(tmp / "synthetic.json")], tmp / "play-synthetic.log"),
        }
        procs += players.values()
        time.sleep(0.5)  # players first, as in the experiment
        publishers = {
            "file": spawn([MPSTREAM, "publish", file_url, "--file", str(sample), "--loop",
                           "--duration", str(PLAY_S + 4), "--json", str(tmp / "publish-file.json")],
                          tmp / "publish-file.log"),
            "synthetic": spawn([MPSTREAM, "publish", syn_url, "--bitrate", "2.5M", "--fps", "30", "--gop", "2s",
                                "--duration", str(PLAY_S + 4)], tmp / "publish-synthetic.log"),
        }
        procs += publishers.values()
        time.sleep(2)
        recorders = {
            name: spawn(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", u,
                         "-t", str(RECORD_S), "-c", "copy", "-f", "flv", str(tmp / f"ffmpeg-{name}.flv")],
                        tmp / f"ffmpeg-{name}.log")
            for name, u in (("file", file_url), ("synthetic", syn_url))
        }
        procs += recorders.values()
        codes = {f"play-{k}": p.wait(PLAY_S + 30) for k, p in players.items()}
        codes |= {f"ffmpeg-{k}": p.wait(30) for k, p in recorders.items()}
        codes |= {f"publish-{k}": p.wait(15) for k, p in publishers.items()}
        yield {"dir": tmp, "codes": codes, "sample": sample, "url": url,
               "summary": {k: _load(tmp / f"{k}.json") for k in ("file", "synthetic")}}
    finally:
        stop_all(procs)
        server.stop()


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp.glob("*.log")))


def test_file_stream_plays_for_30_s_without_a_stall(session):
    s = session["summary"]["file"]
    assert session["codes"]["play-file"] == 0, _logs(session["dir"])
    assert session["codes"]["publish-file"] == 0, _logs(session["dir"])
    assert s["ran"] and s["complete"]
    assert s["stall_count"] == 0, s["stalls"]
    assert s["startup_s"] < 5
    # The sample is 25 fps; the player hears from the publisher ~0.5 s after it starts.
    assert 25 * (PLAY_S - 3) <= s["video_frames"] <= 25 * PLAY_S
    assert s["audio_frames"] > 40 * (PLAY_S - 3)
    assert s["frames_skipped"] == 0 and s["frames_late"] == 0
    # On loopback the end-to-end latency is a few milliseconds; the clock came through.
    assert s["clock"]["source"] in ("metadata", "sei")
    assert s["latency_ms"]["p50"] is not None and -5 < s["latency_ms"]["p50"] < 200


def test_player_writes_one_csv_row_per_message(session):
    rows = (session["dir"] / "file.csv").read_text().splitlines()
    s = session["summary"]["file"]
    assert rows[0] == "arrival_s,kind,timestamp_ms,size,keyframe,latency_ms"
    media_rows = [r for r in rows[1:] if int(r.split(",")[3]) > 0]
    assert len(media_rows) >= s["video_frames"] + s["audio_frames"]


def test_ffmpeg_plays_what_mpstream_publish_sends(session):
    path = session["dir"] / "ffmpeg-file.flv"
    assert session["codes"]["ffmpeg-file"] == 0, _logs(session["dir"])
    info = media.stream_info(path)
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert media.first_video_frame_is_key(path)
    assert media.count_video_frames(path) >= 25 * (RECORD_S - 1)


def test_synthetic_stream_has_the_bitrate_asked_for(session):
    s = session["summary"]["synthetic"]
    assert session["codes"]["play-synthetic"] == 0, _logs(session["dir"])
    assert s["stall_count"] == 0, s["stalls"]
    assert s["bitrate_bps"] == pytest.approx(SYNTHETIC_BPS, rel=0.05)
    assert 30 * (PLAY_S - 3) <= s["video_frames"] <= 30 * PLAY_S


def test_ffprobe_accepts_the_synthetic_stream(session):
    path = session["dir"] / "ffmpeg-synthetic.flv"
    assert session["codes"]["ffmpeg-synthetic"] == 0, _logs(session["dir"])
    info = media.stream_info(path)
    assert info["video"]["codec_name"] == "h264"
    assert (info["video"]["width"], info["video"]["height"]) == (1280, 720)
    assert info["audio"]["codec_name"] == "aac" and info["audio"]["channels"] == 2
    assert media.count_video_frames(path) >= 30 * (RECORD_S - 1)  # the pictures decode, too


def test_refused_play_is_a_one_line_error(session):
    bad = session["url"]("no-such-app", "x")
    result = subprocess.run([MPSTREAM, "--log-level", "ERROR", "play", bad, "--duration", "3"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("mpstream play: ") and result.stderr.count("\n") == 1, result.stderr


def test_dead_server_is_a_one_line_error():
    port = free_port()  # nobody listens there
    for command in (["play", f"rtmp://[::1]:{port}/live/x", "--duration", "2"],
                    ["publish", f"rtmp://[::1]:{port}/live/x", "--no-reconnect", "--duration", "2"]):
        result = subprocess.run([MPSTREAM, "--log-level", "ERROR", *command], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 1, result
        assert result.stderr.startswith(f"mpstream {command[0]}: ") and result.stderr.count("\n") == 1
        assert "refused" in result.stderr.lower()
