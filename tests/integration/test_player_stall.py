"""The player reports a network freeze as the stall a viewer would see.

Two namespaces joined by a veth pair: `t4-…-srv` runs `mpstream relay` and the publisher
(synthetic 1 Mbit/s), `t4-…-cli` runs `mpstream play` with a 1 s buffer. nftables in
the server namespace drops everything on the link for 3 s. TCP brings the backlog when
its retransmission timer next fires, so what the viewer sees is the gap in arrivals
minus the buffer. The gap is measured independently of the player, from the client
interface's receive counter, and the player's stall must match it within 10 %.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.testbed import listening

MPSTREAM = str(Path(sys.executable).with_name("mpstream"))
FREEZE_S = 3.0
BUFFER_MS = 1000
PLAY_S = 14
FREEZE_AT_S = 5.0  # after the player has started and filled its buffer
PORT = 19354
SUFFIX = f"{os.getpid() % 100000}"
NS_SRV, NS_CLI = f"t4-{SUFFIX}-srv", f"t4-{SUFFIX}-cli"
IF_SRV, IF_CLI = f"t4s{SUFFIX}", f"t4c{SUFFIX}"
ADDR_SRV, ADDR_CLI = "2001:2:0:f4::1", "2001:2:0:f4::2"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and nftables"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed"),
    pytest.mark.timeout(120),
]

# Watches the client interface's receive counter; prints "<monotonic> <rx_bytes>" on each change.
RX_WATCH = """
import sys, time
path = f"/sys/class/net/{sys.argv[1]}/statistics/rx_bytes"
last = None
while True:
    with open(path) as f:
        value = f.read().strip()
    if value != last:
        print(time.monotonic(), value, flush=True)
        last = value
    time.sleep(0.002)
"""

FREEZE_RULES = f"""
table inet t4_freeze {{
    chain output {{ type filter hook output priority 0; oifname "{IF_SRV}" drop; }}
    chain input {{ type filter hook input priority 0; iifname "{IF_SRV}" drop; }}
}}
"""


def sh(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, *args], check=check, capture_output=True, text=True, timeout=30)


def spawn(ns: str, args: list[str], out) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture
def link():
    """Two namespaces and a veth pair with IPv6 addresses; removed whatever happens."""
    try:
        for ns in (NS_SRV, NS_CLI):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", IF_SRV, "netns", NS_SRV, "type", "veth", "peer", "name", IF_CLI, "netns", NS_CLI)
        for ns, ifname, addr in ((NS_SRV, IF_SRV, ADDR_SRV), (NS_CLI, IF_CLI, ADDR_CLI)):
            sh("ip", "-6", "addr", "add", f"{addr}/64", "dev", ifname, "nodad", ns=ns)
            sh("ip", "link", "set", ifname, "up", ns=ns)
        # Retransmission backoff capped at 1 s (the smallest the kernel allows), so that TCP
        # retries soon after the path returns and the test stays short.
        sh("sysctl", "-qw", "net.ipv4.tcp_rto_max_ms=1000", ns=NS_SRV, check=False)
        yield
    finally:
        for ns in (NS_SRV, NS_CLI):
            sh("ip", "netns", "del", ns, check=False)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def longest_gap(rx_lines: list[str], after: float) -> tuple[float, float]:
    """(start, length) of the longest interval without received bytes, starting after `after`."""
    times = [float(line.split()[0]) for line in rx_lines if line.strip()]
    times = [t for t in times if t >= after]
    best = (0.0, 0.0)
    for a, b in zip(times, times[1:], strict=False):
        if b - a > best[1]:
            best = (a, b - a)
    return best


def test_three_second_freeze_is_reported_as_the_stall_the_viewer_sees(link, tmp_path):
    url = f"rtmp://[{ADDR_SRV}]:{PORT}/live/stall"
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("relay", "publish", "play", "rx")}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(spawn(NS_SRV, [MPSTREAM, "relay", "--listen", f"[{ADDR_SRV}]:{PORT}", "--http", "",
                                    "--max-player-lag-ms", "30000", "--disconnect-after-ms", "60000"],
                           logs["relay"]))
        assert listening(NS_SRV, PORT), (tmp_path / "relay.log").read_text()
        procs.append(spawn(NS_CLI, [sys.executable, "-c", RX_WATCH, IF_CLI], logs["rx"]))
        procs.append(spawn(NS_SRV, [MPSTREAM, "publish", url, "--bitrate", "1M", "--size", "640x360",
                                    "--duration", str(PLAY_S + 5)], logs["publish"]))
        time.sleep(0.5)
        started = time.monotonic()
        player = spawn(NS_CLI, [MPSTREAM, "play", url, "--duration", str(PLAY_S), "--buffer-ms", str(BUFFER_MS),
                                "--json", str(tmp_path / "play.json"), "--csv", str(tmp_path / "play.csv")],
                       logs["play"])
        procs.append(player)
        time.sleep(max(0.0, started + FREEZE_AT_S - time.monotonic()))
        frozen_at, frozen_wall = time.monotonic(), time.time()
        subprocess.run(["ip", "netns", "exec", NS_SRV, "nft", "-f", "-"], input=FREEZE_RULES, text=True,
                       check=True, timeout=10)
        time.sleep(max(0.0, frozen_at + FREEZE_S - time.monotonic()))
        sh("nft", "delete", "table", "inet", "t4_freeze", ns=NS_SRV)
        thawed_at = time.monotonic()
        code = player.wait(PLAY_S + 20)
    finally:
        stop(procs)
        for f in logs.values():
            f.close()
    every_log = "\n".join(f"--- {n}\n{(tmp_path / f'{n}.log').read_text()[-2000:]}"
                          for n in ("relay", "publish", "play"))
    assert code == 0, every_log
    summary = json.loads((tmp_path / "play.json").read_text())
    gap_start, gap = longest_gap((tmp_path / "rx.log").read_text().splitlines(), started)
    # The freeze happened where the test put it, and lasted at least as long.
    assert frozen_at - 0.1 <= gap_start <= frozen_at + 0.2, (gap_start - frozen_at, every_log)
    assert thawed_at - frozen_at >= FREEZE_S
    assert gap >= FREEZE_S - 0.05
    expected = gap - BUFFER_MS / 1000
    froze = summary["started_at"] + summary["stalls"][0]["at_s"] - frozen_wall if summary["stalls"] else None
    print(f"freeze {thawed_at - frozen_at:.3f} s, arrival gap {gap:.3f} s, expected stall {expected:.3f} s, "
          f"player: {summary['stall_count']} stall(s) {summary['stalls']}, picture froze {froze} s into it")
    assert summary["stall_count"] == 1, summary["stalls"]
    assert summary["stall_max_s"] == pytest.approx(expected, rel=0.10)
    assert summary["stall_total_s"] == pytest.approx(expected, rel=0.10)
    # The picture froze once the 1 s buffer had drained, about 1 s into the freeze (same clock:
    # the player's start in Unix time plus its stall time).
    froze_after = summary["started_at"] + summary["stalls"][0]["at_s"] - frozen_wall
    assert BUFFER_MS / 1000 - 0.25 <= froze_after <= BUFFER_MS / 1000 + 0.25, froze_after
