"""Real ffmpeg publishes to `mpstream relay` and real ffmpeg plays it back, over IPv6 and IPv4 loopback."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from mpstream.streaming.rtmp import VIDEO, MediaMessage, StreamCreated

from tests.support import media
from tests.support.relay_process import RelayProcess
from tests.support.rtmp_client import RtmpPeer

pytestmark = [
    pytest.mark.skipif(not media.have_ffmpeg(), reason="ffmpeg/ffprobe not installed"),
    pytest.mark.timeout(120),
]

SECONDS = 6


@pytest.fixture
def relay(tmp_path):
    process = RelayProcess(tmp_path / "relay.log").start()
    try:
        yield process
    finally:
        code = process.stop()  # SIGTERM
    log = process.log_text()
    assert code == 0 and "SIGTERM received" in log and log.rstrip().endswith("stopped"), log[-1000:]
    assert "Traceback" not in log


@pytest.fixture(scope="module")
def sample() -> Path:
    return media.sample_flv(seconds=SECONDS)


def ffmpeg_publish(path: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", str(path),
                             "-c", "copy", "-f", "flv", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ffmpeg_play(url: str, out: Path, seconds: float | None = None) -> subprocess.Popen:
    limit = ["-t", str(seconds)] if seconds else []
    return subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", url, *limit,
                             "-c", "copy", "-f", "flv", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_playing(relay: RelayProcess, players: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streams = relay.stats("/streams")
        if streams and streams[0]["players"] >= players:
            return
        time.sleep(0.05)
    raise AssertionError(f"{players} players did not start within {timeout} s")


def check_copy(sample: Path, received: Path) -> None:
    sent_frames = media.count_video_frames(sample)
    got_frames = media.count_video_frames(received)
    assert got_frames >= 0.95 * sent_frames, f"{got_frames} of {sent_frames} video frames decoded"
    sent, got = media.stream_info(sample), media.stream_info(received)
    for kind in ("video", "audio"):
        assert got[kind]["codec_name"] == sent[kind]["codec_name"]
    assert (got["video"]["width"], got["video"]["height"]) == (sent["video"]["width"], sent["video"]["height"])
    assert got["audio"]["sample_rate"] == sent["audio"]["sample_rate"]


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
def test_ffmpeg_publish_and_play_copy(relay, sample, tmp_path, host):
    out = tmp_path / "received.flv"
    player = ffmpeg_play(relay.url(host=host), out)
    wait_playing(relay, 1)
    publisher = ffmpeg_publish(sample, relay.url(host=host))
    assert publisher.wait(timeout=SECONDS + 20) == 0, publisher.stderr.read()
    assert player.wait(timeout=20) == 0, player.stderr.read()
    check_copy(sample, out)
    log = relay.log_text()
    family = "[::1]:" if ":" in host else "127.0.0.1:"
    assert f"connected from {family}" in log and "publishes live/cam" in log and "plays live/cam" in log


def test_twenty_ffmpeg_players_all_receive_the_stream(relay, sample, tmp_path):
    outs = [tmp_path / f"player{i}.flv" for i in range(20)]
    players = [ffmpeg_play(relay.url(host="::1" if i % 2 else "127.0.0.1"), out) for i, out in enumerate(outs)]
    try:
        wait_playing(relay, 20, timeout=30)
        publisher = ffmpeg_publish(sample, relay.url())
        assert publisher.wait(timeout=SECONDS + 30) == 0
        for player in players:
            assert player.wait(timeout=30) == 0
    finally:
        for player in players:
            if player.poll() is None:
                player.kill()
    for out in outs:
        check_copy(sample, out)


def test_mid_stream_joiners_start_with_a_keyframe_at_once(relay, sample, tmp_path):
    publisher = ffmpeg_publish(sample, relay.url())
    try:
        time.sleep(2.9)  # well inside the second GOP

        async def join() -> tuple[float, MediaMessage]:
            peer = await RtmpPeer.open(relay.url(), "play")
            try:
                await peer.wait_for(StreamCreated)  # the play command goes out as this is handled
                asked = next(t for t, e in peer.events if isinstance(e, StreamCreated))
                frame = await peer.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.body[1] == 1)
                arrived = next(t for t, e in peer.events if e is frame)
                return arrived - asked, frame
            finally:
                await peer.close()

        delay, frame = asyncio.run(join())
        assert frame.body[0] >> 4 == 1, "first video frame is not a keyframe"
        assert delay < 0.2, f"first keyframe {delay * 1000:.0f} ms after the play command"
        out = tmp_path / "late.flv"
        late = ffmpeg_play(relay.url(), out, seconds=1.5)
        assert late.wait(timeout=20) == 0, late.stderr.read()
        assert media.first_video_frame_is_key(out)
        assert media.count_video_frames(out) >= 25
    finally:
        publisher.wait(timeout=SECONDS + 20)
