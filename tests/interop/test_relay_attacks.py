"""The attacks of issue 21 against one `mpstream relay`, while a real ffmpeg publisher and player go on.

For every attack: a new player gets its first video frame within 1 s while it runs, the
relay's RSS stays within 64 MiB of what it was before the attacks, the attacker is dropped
where a budget says so; at the end the ffmpeg player has >= 95 % of the published frames
and the log has no traceback, no forged line, and stays small. The relay runs with a
512-file limit (as a unit with a low LimitNOFILE would), so that a connection storm meets it.
Meanwhile 20 players that never read sit on the victim's stream; the relay must close them
by their missing acknowledgements (disconnect_after_ms is 5 s here instead of 30).
The side-by-side run with nginx-rtmp is benchmarks/relay_attacks.py.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from tests.support import media, relay_process
from tests.support import rtmp_attacks as attack
from tests.support.relay_process import RelayProcess

pytestmark = [
    pytest.mark.skipif(not media.have_ffmpeg(), reason="ffmpeg/ffprobe not installed"),
    pytest.mark.timeout(240),
]

SECONDS = 45
READERS_S = 25  # the players that never read are judged after this long (the cases take longer)
RSS_BOUND = 64 << 20
FIRST_FRAME_S = 1.0
OPEN_FILES = 512
# disconnect_after_ms: short, so that players that never read are closed within the run; longer than
# every attack on the output budget, so that those are still stopped by the budget, not by this.
CONFIG = """\
disconnect_after_ms = 5000

[apps.live]
publish_key = "k"

[apps."*"]
"""

# name -> (attack(port), the relay must drop the attacker)
CASES = {
    "empty messages (4 connections)": (lambda port: attack.empty_messages(port, 4.0, app="tv"), True),
    "aggregates of empty messages": (lambda port: attack.empty_aggregates(port, 4.0, app="tv"), True),
    "unfinished 8 MiB messages on 60 chunk streams": (lambda port: attack.partial_messages(port, 2.0), True),
    "16 streams with huge GOPs": (lambda port: attack.gop_streams(port, 3.0, app="tv"), True),
    "6 MB names, never reading": (lambda port: attack.long_names_not_reading(port, 2.0), True),
    "pings, never reading": (lambda port: attack.pings_not_reading(port, 4.0), True),
    "unknown commands and a forged log line": (lambda port: attack.log_forging(port, 4.0), True),
    "connection storm": (lambda port: attack.fd_storm(port, 3.0, count=1500), True),
}


@pytest.fixture
def limited_relay(tmp_path, monkeypatch):
    """`mpstream relay` started under a low open-files limit (soft = hard)."""
    wrapper = tmp_path / "mpstream-limited"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile={OPEN_FILES}:{OPEN_FILES} "{relay_process.MPSTREAM}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(relay_process, "MPSTREAM", str(wrapper))
    return RelayProcess(tmp_path / "relay.log", config=CONFIG)


def run_case(relay: RelayProcess, run, idle_rss: int) -> tuple[attack.Outcome, float | None, int]:
    """The attack in a thread; a new player's time to its first frame while it runs; the peak RSS."""
    result: list[attack.Outcome] = []
    with attack.RssWatch(relay.pid) as rss:
        thread = threading.Thread(target=lambda: result.append(run(relay.port)))
        thread.start()
        time.sleep(1.0)
        first_frame = attack.probe_first_frame(relay.url(app="tv"), timeout=5.0)
        thread.join()
    return result[0], first_frame, rss.peak - idle_rss


def test_attacks_leave_the_relay_responsive_and_the_victim_whole(tmp_path, limited_relay):
    sample = media.sample_flv(seconds=SECONDS)
    out = tmp_path / "victim.flv"
    findings: list[str] = []
    with limited_relay as relay:
        player = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", relay.url(app="tv"),
                                   "-c", "copy", "-f", "flv", str(out)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not any(c["role"] == "player" for c in relay.stats("/clients")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        publisher = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(sample), "-c",
                                      "copy", "-f", "flv", relay.url(app="tv")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            idle_rss = attack.rss_bytes(relay.pid)
            readers: list[attack.Outcome] = []
            not_reading = threading.Thread(target=lambda: readers.append(
                attack.players_not_reading(relay.port, READERS_S, app="tv")))
            not_reading.start()
            for name, (run, must_drop) in CASES.items():
                outcome, first_frame, grown = run_case(relay, run, idle_rss)
                print(f"{name}: {outcome}, first frame {first_frame}, RSS +{grown / 2**20:.1f} MiB")
                if first_frame is None or first_frame > FIRST_FRAME_S:
                    findings.append(f"{name}: a new player's first frame after {first_frame} s")
                if grown > RSS_BOUND:
                    findings.append(f"{name}: RSS grew by {grown / 2**20:.1f} MiB")
                if must_drop and not outcome.dropped:
                    findings.append(f"{name}: the attacker was not dropped ({outcome})")

            not_reading.join()
            print(f"players that never read: {readers}")
            if not readers or not readers[0].dropped:
                findings.append(f"players that never read were not all closed: {readers}")

            # Stream takeover: the publisher stalls (as on an MPTCP failover); nobody may take its name.
            publisher.send_signal(signal.SIGSTOP)
            try:
                time.sleep(5.5)
                answers = [attack.publish_once(relay.port, "tv", "cam") for _ in range(7)]
            finally:
                publisher.send_signal(signal.SIGCONT)
            if any("NetStream.Publish.Start" in codes for codes in answers):
                findings.append(f"takeover: a second publisher got the stalled stream ({answers})")

            # App/stream name collision: app live/x is under live's key, not the open "*".
            codes = attack.publish_once(relay.port, "live/x", "s")
            if "NetStream.Publish.Start" in codes:
                findings.append(f"collision: a keyless publish to app live/x was accepted ({codes})")

            # Numbers and URLs that raised: the relay answers, or refuses, and goes on.
            answers = attack.bad_numbers(relay.port)
            if not answers[0].endswith("NetConnection.Connect.Rejected") or \
                    not all("_result" in a for a in answers[1:]):
                findings.append(f"bad numbers: {answers}")

            # connect + createStream + play in one write is played.
            if not attack.one_write_play(relay.port, "cam", app="tv"):
                findings.append("connect + createStream + play in one write got no video")

            assert publisher.wait(timeout=SECONDS + 30) == 0
            assert player.wait(timeout=30) == 0
        finally:
            for proc in (publisher, player):
                if proc.poll() is None:
                    proc.kill()
        log = relay.log_text()
    sent = media.count_video_frames(sample)
    got = media.count_video_frames(out)
    if got < 0.95 * sent:
        findings.append(f"the victim got {got} of {sent} frames")
    if "not acknowledged" not in log:
        findings.append("no player was closed for its missing acknowledgements")
    if "Traceback" in log:
        findings.append("a traceback in the log")
    if any(line.startswith("2026-12-01 00:00:00 WARNING mpstream.relay: FORGED") for line in log.splitlines()):
        findings.append("a forged log line")
    if len(log) > 200_000:
        findings.append(f"{len(log)} bytes of log")
    if "max_connections 1000 lowered to" not in log:
        findings.append("max_connections was not fitted to the open-files limit")
    if log.count("accepting connections failed") > 3:
        findings.append(f"{log.count('accepting connections failed')} accept failure lines")
    assert not findings, "\n".join(findings)
