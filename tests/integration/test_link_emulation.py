"""Delay on the emulated testbed without netem: one delayed provider, its RTT and goodput,
the undelayed provider untouched, idempotence, check mode and removal of the emulators."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.testbed import emulated_testbed, listening, netns_exec, recap, run_playbook

PREFIX = "t16le"
# isp1's access links get 10 ms each way: two nodes on isp1 see 4 x 10 = 40 ms RTT.
PROVIDERS = [
    {"name": "isp1", "index": 1, "nic": "nic1", "rate_up": "4mbit", "rate_down": "4mbit", "delay": "10ms"},
    {"name": "isp2", "index": 2, "nic": "nic2", "rate_up": "4mbit", "rate_down": "4mbit"},
]
VARIABLES = {"testbed_prefix": PREFIX, "mpstream_providers": PROVIDERS}
PUSH1_ISP1, SERVER1_ISP1, ISP2_GATEWAY_SITE1 = "198.18.17.10", "198.18.18.10", "198.18.33.1"
EMULATORS = Path("/run/mpstream-testbed") / f"{PREFIX}-linkemu"
RTT_MS = 40.0


def supervisors() -> list[int]:
    """Processes that supervise one of this testbed's emulators (named after its routers)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"linkemu-{PREFIX}-".encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def built():
    with emulated_testbed(PREFIX, VARIABLES) as first_run:
        yield first_run
    assert supervisors() == []
    assert not EMULATORS.exists()


def rtts(ns: str, target: str, count: int, interval: float = 0.05, nic: str | None = None) -> list[float]:
    args = ["ping", "-n", "-i", str(interval), "-c", str(count), "-W", "2"] + (["-I", nic] if nic else [])
    out = netns_exec(ns, *args, target).stdout
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


# A real-time sleeper, as the emulator is: how late this machine's timers wake it (ms, one
# line per 10 ms sleep, after a line `ready`: its start-up stays out of the pings' window).
TIMER_PROBE = """
import select, time
from mpstream.paths.outage.priority import make_urgent
assert make_urgent(0)
print("ready", flush=True)
for _ in range({count}):
    start = time.monotonic()
    select.select([], [], [], 0.01)
    print((time.monotonic() - start - 0.01) * 1000, flush=True)
"""


def test_two_nodes_with_10ms_access_links_see_40ms_rtt(built):
    push1 = f"{PREFIX}-push1"
    rtts(push1, SERVER1_ISP1, 3, 0.2)  # neighbours resolved
    windows = []
    # Every window: 200 answers, the median on 40 ms, none early. The tail (p95 within 10 %)
    # in one of three windows, beyond what this machine's timers add at the same time: a
    # round trip passes four holds of the emulator, each ended by a timer, and a VM's timers
    # wake a real-time sleeper late when the host is busy (p95 0.2-0.5 ms, p99 up to 1.6 ms
    # here; the delayed path's p95 was 44.6-48.4 ms in such windows, in CI and on an idle
    # guest). So the allowance is the p95 of four such wake-ups in a row, measured beside the
    # pings; a late emulator is late beyond it. Its p99 is the benchmark's
    # (benchmarks/link_emulation.py).
    for _ in range(3):
        probe = subprocess.Popen([sys.executable, "-c", TIMER_PROBE.format(count=380)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert probe.stdout.readline() == "ready\n"
            times = rtts(push1, SERVER1_ISP1, 200, 0.02)
            late = [float(line) for line in probe.communicate(timeout=30)[0].split()]
        finally:
            probe.kill()
            probe.wait()
        assert len(times) == 200 and len(late) == 380
        assert abs(statistics.median(times) - RTT_MS) <= 0.05 * RTT_MS + 1, statistics.median(times)
        assert RTT_MS - 0.5 <= min(times), sorted(times)
        four_late = quantile([sum(late[i:i + 4]) for i in range(len(late) - 3)], 0.95)
        windows.append((quantile(times, 0.95), four_late))
        print(f"p95 over isp1 (40 ms) {windows[-1][0]:.2f} ms; four timer wake-ups late by {four_late:.2f} ms (p95)")
        if windows[-1][0] <= 1.10 * RTT_MS + four_late:
            break
    assert min(delayed - timers for delayed, timers in windows) <= 1.10 * RTT_MS, windows


def test_a_delayed_link_carries_its_shaped_rate(built):
    server = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-server1", "iperf3", "-s", "-1", "-B", SERVER1_ISP1],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert listening(f"{PREFIX}-server1", 5201)
        out = netns_exec(f"{PREFIX}-push1", "iperf3", "-c", SERVER1_ISP1, "-B", PUSH1_ISP1, "--bind-dev", "nic1",
                         "-t", "8", "-O", "2", "-J", check=True).stdout
    finally:
        server.kill()
        server.wait()
    goodput = json.loads(out)["end"]["sum_received"]["bits_per_second"]
    # Within 10 % of the shaped rate; tbf counts whole frames, so TCP payload stays below it.
    assert 0.90 * 4e6 <= goodput <= 4e6, goodput


def test_a_provider_without_delay_has_neither_rules_nor_emulator(built):
    assert sorted(p.name for p in EMULATORS.glob("*.pid")) == [f"linkemu-{PREFIX}-isp1.pid"]
    for tool in ("iptables-save", "ip6tables-save"):
        rules = netns_exec(f"{PREFIX}-isp2", tool, "-t", "mangle", check=True).stdout
        assert "NFQUEUE" not in rules
        assert netns_exec(f"{PREFIX}-isp1", tool, "-t", "mangle", check=True).stdout.count("NFQUEUE") == 6
    times = rtts(f"{PREFIX}-push1", ISP2_GATEWAY_SITE1, 20, 0.02, nic="nic2")
    assert len(times) == 20 and statistics.median(times) < 1.0


def test_second_run_changes_nothing_and_check_mode_reports_a_new_delay(built):
    assert recap(built.stdout)["localhost"]["changed"] == 1
    again = run_playbook("playbooks/testbed.yml", extra_vars=VARIABLES)
    assert recap(again.stdout)["localhost"]["changed"] == 0
    slower = [dict(PROVIDERS[0], delay="30ms"), PROVIDERS[1]]
    checked = run_playbook("playbooks/testbed.yml", "--check", extra_vars={**VARIABLES, "mpstream_providers": slower})
    assert recap(checked.stdout)["localhost"]["changed"] == 1
    times = rtts(f"{PREFIX}-push1", SERVER1_ISP1, 10, 0.05)
    assert abs(statistics.median(times) - RTT_MS) <= 3, times  # still 40 ms: check mode changed nothing


def test_removing_the_delay_removes_rules_and_emulator_and_the_delay(built):
    plain = [{k: v for k, v in p.items() if k != "delay"} for p in PROVIDERS]
    run_playbook("playbooks/testbed.yml", extra_vars={**VARIABLES, "mpstream_providers": plain})
    try:
        assert supervisors() == [] and list(EMULATORS.glob("*.pid")) == []
        assert "NFQUEUE" not in netns_exec(f"{PREFIX}-isp1", "iptables-save", "-t", "mangle", check=True).stdout
        times = rtts(f"{PREFIX}-push1", SERVER1_ISP1, 20, 0.02)
        assert len(times) == 20 and statistics.median(times) < 1.0
    finally:
        run_playbook("playbooks/testbed.yml", extra_vars=VARIABLES)  # as the other tests expect it
