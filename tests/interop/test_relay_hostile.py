"""Hostile and broken peers against `mpstream relay` while a real ffmpeg player keeps watching.

Each peer must be dropped (with a log line) and the ffmpeg player must keep receiving
during every case and end with at least 95 % of the published frames.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from mpstream.streaming.rtmp.chunk import encode_message
from mpstream.streaming.rtmp.handshake import SIZE

from tests.support import media
from tests.support.relay_process import RelayProcess

pytestmark = [
    pytest.mark.skipif(not media.have_ffmpeg(), reason="ffmpeg/ffprobe not installed"),
    pytest.mark.timeout(120),
]

SECONDS = 12
CONFIG = "handshake_timeout_s = 1.0\n[limits]\nmax_message_size = 4000000\nmax_chunk_streams = 64\n"


def connect(port: int, handshake: bool) -> socket.socket:
    sock = socket.create_connection(("::1", port), timeout=5)
    if handshake:
        sock.sendall(bytes([3]) + bytes(SIZE))
        got = 0
        while got < 1 + 2 * SIZE:
            got += len(sock.recv(1 + 2 * SIZE - got))
        sock.sendall(bytes(SIZE))
    return sock


def connect_command() -> bytes:
    from mpstream.streaming.rtmp import amf0

    return encode_message(3, 20, 0, 0, amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://x/live"}), 128)


CASES = {
    "garbage handshake": (False, lambda: b"\x16\x03\x01\x02\x00" + bytes(3000)),
    "chunk size 0": (True, lambda: encode_message(2, 1, 0, 0, (0).to_bytes(4, "big"), 128)),
    "chunk size 2^31": (True, lambda: encode_message(2, 1, 0, 0, (1 << 31).to_bytes(4, "big"), 128)),
    "1-byte chunk size flood": (True, lambda: encode_message(2, 1, 0, 0, (1).to_bytes(4, "big"), 128)
                                + bytes([0xC3, 0]) * 200000),
    "message length over the limit": (True, lambda: connect_command() +
                                      bytes([0x06, 0, 0, 0, 0xFF, 0xFF, 0xF0, 9, 1, 0, 0, 0]) + bytes(4096)),
    "thousands of chunk-stream ids": (True, lambda: connect_command() + b"".join(
        encode_message(c, 9, 1, 0, b"\x27", 128) for c in range(64, 5000))),
    "slowloris handshake": (False, lambda: b"\x03" + bytes(10)),
}


def eof_within(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def player_bytes(relay: RelayProcess) -> int:
    return sum(c["bytes_out"] for c in relay.stats("/clients") if c["role"] == "player")


def test_hostile_peers_are_dropped_while_ffmpeg_keeps_playing(tmp_path):
    sample = media.sample_flv(seconds=SECONDS)
    out = tmp_path / "player.flv"
    with RelayProcess(tmp_path / "relay.log", config=CONFIG) as relay:
        player = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", relay.url(), "-c", "copy",
                                   "-f", "flv", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not any(c["role"] == "player" for c in relay.stats("/clients")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        publisher = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(sample), "-c",
                                      "copy", "-f", "flv", relay.url()], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            for name, (handshake, payload) in CASES.items():
                before = player_bytes(relay)
                sock = connect(relay.port, handshake)
                try:
                    try:
                        sock.sendall(payload())
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # dropped while we were still sending
                    assert eof_within(sock, 4.0), f"{name}: the relay kept the connection"
                finally:
                    sock.close()
                time.sleep(0.3)
                assert player_bytes(relay) > before, f"the player stalled during {name!r}"
            log = relay.log_text()
            assert log.count(" dropped: ") >= len(CASES)
            assert "no handshake and connect within 1 s" in log
            assert "chunk stream" in log and "over the limit" in log
            assert publisher.wait(timeout=SECONDS + 20) == 0
            assert player.wait(timeout=20) == 0
        finally:
            for proc in (publisher, player):
                if proc.poll() is None:
                    proc.kill()
    sent = media.count_video_frames(sample)
    got = media.count_video_frames(out)
    assert got >= 0.95 * sent, f"{got} of {sent} frames"
