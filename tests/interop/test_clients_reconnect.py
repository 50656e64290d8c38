"""Publisher and player outlive their server: nginx-rtmp goes away and comes back, the stream goes on."""

from __future__ import annotations

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

from tests.support import nginx_rtmp  # noqa: E402

MPSTREAM = str(Path(sys.executable).with_name("mpstream"))

pytestmark = [
    pytest.mark.skipif(not nginx_rtmp.available(), reason="nginx with libnginx-mod-rtmp is not installed"),
    pytest.mark.timeout(90),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publisher_reconnects_with_backoff_and_says_so(tmp_path):
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/again"
    log = (tmp_path / "publish.log").open("w")
    server = nginx_rtmp.NginxRtmp(port=port).start()
    steady_player = subprocess.Popen(
        [MPSTREAM, "play", url, "--duration", "11", "--buffer-ms", "500", "--reconnect",
         "--json", str(tmp_path / "steady.json")],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "steady.log").open("w"), start_new_session=True)
    time.sleep(0.7)  # the player waits for the stream, so it sees the first keyframe
    publisher = subprocess.Popen(
        [MPSTREAM, "publish", url, "--bitrate", "500k", "--size", "320x240", "--backoff", "0.2",
         "--backoff-max", "1", "--json", str(tmp_path / "publish.json")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(3)
        server.stop()  # the server goes away with publisher and player connected
        time.sleep(1.5)  # a few failed attempts while nobody listens
        server = nginx_rtmp.NginxRtmp(port=port).start()
        # The new player comes once the publisher is back (under load its backoff may take longer).
        deadline = time.monotonic() + 10
        while "reconnected" not in (tmp_path / "publish.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        # nginx-rtmp starts a new player at the next keyframe, up to one 2 s GOP (60 frames) away:
        # 6 s of play leaves 4 s of frames to count.
        play = subprocess.run([MPSTREAM, "play", url, "--duration", "6", "--buffer-ms", "500",
                               "--json", str(tmp_path / "play.json")], capture_output=True, text=True, timeout=30)
        steady_code = steady_player.wait(20)
    finally:
        for proc in (publisher, steady_player):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        code = publisher.wait(15)
        steady_player.wait(15)
        server.stop()
        log.close()
    text = (tmp_path / "publish.log").read_text()
    assert code == 0, text
    assert "connection lost" in text and "reconnected" in text, text
    report = json.loads((tmp_path / "publish.json").read_text())
    assert report["reconnects"] >= 1 and report["outages"], report
    assert 1.0 <= report["outages"][0]["duration_s"] <= 4.0
    # After the reconnect a new player gets the stream, with keyframes and the announced clock.
    assert play.returncode == 0, play.stderr
    summary = json.loads((tmp_path / "play.json").read_text())
    assert summary["video_frames"] > 60 and summary["keyframes"] >= 1
    assert summary["clock"]["start_ms"] == report["start_ms"]

    # The player that was there all along reconnected too, and saw the outage as one stall.
    steady_log = (tmp_path / "steady.log").read_text()
    assert steady_code == 0, steady_log
    steady = json.loads((tmp_path / "steady.json").read_text())
    assert steady["reconnects"] >= 1 and "reconnected" in steady_log
    assert steady["startup_s"] < 3
    assert steady["stall_count"] == 1, steady["stalls"]
    # Frozen from when its 0.5 s buffer ran dry until it had reconnected (backoff 0.5, 1, 2 s) and
    # the stream had reached a keyframe again (up to one 2 s GOP later).
    outage = report["outages"][0]["duration_s"]
    assert outage - 0.5 <= steady["stall_total_s"] <= 8, (outage, steady["stalls"])
