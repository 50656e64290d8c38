"""`mpstream record` beside bwm-ng on the same iperf3 traffic between two namespaces.

- the bytes and packets in our CSV add up to exactly the kernel counters' change, for
  every counter source (RTM_GETSTATS, pyroute2 RTM_GETLINK, /proc/net/dev);
- 10 s mean rates agree with bwm-ng's (`-o csv -T rate -t 100`) within 1 %;
- a parser written for bwm-ng's CSV (its README's field list) reads our file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

NS_SEND = f"t5-snd{os.getpid() % 100000}"
NS_RECV = f"t5-rcv{os.getpid() % 100000}"
SEND_IP, RECV_IP = "198.18.250.1", "198.18.250.2"
VETH = "t5veth"
SOURCES = ("netlink", "pyroute2", "proc")
INTERVAL_MS = 100
TRAFFIC_S = 12

# bwm-ng 0.6.3 README, "csv output format", type rate.
BWMNG_RATE_FIELDS = (
    "unix timestamp;iface_name;bytes_out/s;bytes_in/s;bytes_total/s;bytes_in;bytes_out;packets_out/s;"
    "packets_in/s;packets_total/s;packets_in;packets_out;errors_out/s;errors_in/s;errors_in;errors_out;"
    "bits_out/s;bits_in/s;bits_total/s;bits_in;bits_out"
).split(";")


def bwmng_style_parse(path: Path) -> list[dict]:
    """How scripts read bwm-ng's CSV: split on ';', name the fields by position, convert numbers."""
    records = []
    for line in path.read_text().splitlines():
        values = line.split(";")
        assert len(values) == len(BWMNG_RATE_FIELDS), line
        record = dict(zip(BWMNG_RATE_FIELDS, values, strict=True))
        for key in BWMNG_RATE_FIELDS:
            if key != "iface_name":
                record[key] = float(record[key])
        records.append(record)
    return records


def sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def kernel_counters(ns: str, dev: str) -> dict[str, int]:
    (link,) = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev))
    stats = link["stats64"]
    return {"rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"],
            "rx_packets": stats["rx"]["packets"], "tx_packets": stats["tx"]["packets"]}


@pytest.fixture
def veth_pair():
    """Two namespaces joined by a veth pair, IPv6 off so that nothing but the test talks."""
    made = []
    try:
        for ns in (NS_SEND, NS_RECV):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", NS_SEND, "link", "add", VETH, "type", "veth", "peer", "name", VETH, "netns", NS_RECV)
        for ns, address in ((NS_SEND, SEND_IP), (NS_RECV, RECV_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{address}/30", "dev", VETH)
            sh("ip", "-n", ns, "link", "set", VETH, "up")
        yield
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


class Processes:
    """Processes started by the test; all are stopped at the end, also on failure."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, *command: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(command, **kwargs)
        self.started.append(proc)
        return proc

    def stop_all(self):
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def processes():
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_for_rows(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and f";{VETH};" in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"no rows for {VETH} in {path}")


def mean_rate(records: list[dict], key: str, start: float, end: float) -> float:
    """Time-weighted mean of a rate column over the samples read in [start, end]."""
    rows = [r for r in records if r["iface_name"] == VETH and start <= r["unix timestamp"] <= end]
    weighted = seconds = 0.0
    for before, row in zip(rows, rows[1:], strict=False):
        elapsed = row["unix timestamp"] - before["unix timestamp"]
        weighted += row[key] * elapsed
        seconds += elapsed
    assert seconds > 0.9 * (end - start), "samples do not cover the window"
    return weighted / seconds


def test_recorder_matches_kernel_counters_and_bwmng(veth_pair, processes, tmp_path):
    in_send = ["ip", "netns", "exec", NS_SEND]
    processes.start("ip", "netns", "exec", NS_RECV, "iperf3", "-s", "-1", "-B", RECV_IP)
    before = kernel_counters(NS_SEND, VETH)

    ours = {}
    for source in SOURCES:
        out = tmp_path / f"mpstream-{source}.csv"
        ours[source] = (out, processes.start(
            *in_send, sys.executable, "-m", "mpstream", "record", "--interfaces", VETH,
            "--interval-ms", str(INTERVAL_MS), "--source", source, "--output", str(out)))
    bwmng_csv = tmp_path / "bwm-ng.csv"
    bwmng = processes.start(*in_send, "bwm-ng", "-o", "csv", "-T", "rate", "-t", str(INTERVAL_MS),
                            "-I", VETH, "-F", str(bwmng_csv))
    for out, _ in ours.values():
        wait_for_rows(out)
    wait_for_rows(bwmng_csv)

    traffic_started = time.time()
    iperf = subprocess.run(
        [*in_send, "iperf3", "-c", RECV_IP, "-u", "-b", "40M", "-l", "1200", "-t", str(TRAFFIC_S), "-J"],
        capture_output=True, text=True, timeout=TRAFFIC_S + 30)
    assert iperf.returncode == 0, iperf.stdout[-2000:] + iperf.stderr[-2000:]
    time.sleep(0.3)
    for _, proc in ours.values():
        proc.send_signal(signal.SIGTERM)
    for source, (_, proc) in ours.items():
        assert proc.wait(timeout=10) == 0, f"{source}: {proc.stderr.read().decode()[-2000:]}"
    after = kernel_counters(NS_SEND, VETH)
    bwmng.send_signal(signal.SIGTERM)
    bwmng.wait(timeout=10)

    kernel_delta = {key: after[key] - before[key] for key in before}
    assert kernel_delta["tx_bytes"] > 40e6 / 8 * TRAFFIC_S * 0.5  # the traffic really ran
    for source, (out, _) in ours.items():
        records = bwmng_style_parse(out)
        mine = [r for r in records if r["iface_name"] == VETH]
        totals = {"tx_bytes": sum(r["bytes_out"] for r in mine), "rx_bytes": sum(r["bytes_in"] for r in mine),
                  "tx_packets": sum(r["packets_out"] for r in mine),
                  "rx_packets": sum(r["packets_in"] for r in mine)}
        assert totals == kernel_delta, source
        assert all(r["bits_out"] == 8 * r["bytes_out"] for r in mine)
        assert {r["iface_name"] for r in records} == {VETH, "total"}

    bwmng_records = bwmng_style_parse(bwmng_csv)
    window = (traffic_started + 1.0, traffic_started + 11.0)
    reference = mean_rate(bwmng_records, "bytes_out/s", *window)
    assert reference > 0.5 * 40e6 / 8
    for source, (out, _) in ours.items():
        rate = mean_rate(bwmng_style_parse(out), "bytes_out/s", *window)
        print(f"{source}: {rate:.1f} B/s, bwm-ng {reference:.1f} B/s, {100 * (rate / reference - 1):+.3f} %")
        assert abs(rate - reference) / reference < 0.01, (source, rate, reference)


@pytest.fixture
def lone_namespace():
    ns = f"t5-dyn{os.getpid() % 100000}"
    sh("ip", "netns", "add", ns)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def rows_of(path: Path, name: str) -> list[list[str]]:
    return [line.split(";") for line in path.read_text().splitlines() if line.split(";")[1] == name]


def test_interfaces_that_come_and_go_sigterm_and_sigkill(lone_namespace, processes, tmp_path):
    ns = lone_namespace
    out = tmp_path / "rates.csv"
    recorder = processes.start("ip", "netns", "exec", ns, sys.executable, "-m", "mpstream", "record",
                               "--interfaces", "%lo", "--interval-ms", "50", "--output", str(out))
    wait_for_total = time.monotonic() + 10
    while not (out.exists() and ";total;" in out.read_text()) and time.monotonic() < wait_for_total:
        time.sleep(0.05)
    sh("ip", "-n", ns, "link", "add", "t5new", "type", "veth", "peer", "name", "t5peer")
    time.sleep(0.3)  # down: not recorded, like bwm-ng
    assert rows_of(out, "t5new") == []
    sh("ip", "-n", ns, "link", "set", "t5new", "up")
    time.sleep(0.4)
    sh("ip", "-n", ns, "link", "del", "t5new")
    time.sleep(0.3)
    started = time.monotonic()
    recorder.send_signal(signal.SIGTERM)
    assert recorder.wait(timeout=5) == 0
    assert time.monotonic() - started < 2
    new_rows = rows_of(out, "t5new")
    assert len(new_rows) >= 3 and new_rows[0][5] == "0" and new_rows[0][6] == "0"  # no peak at first sight
    assert rows_of(out, "lo") == []
    last_new = float(new_rows[-1][0])
    assert float(rows_of(out, "total")[-1][0]) > last_new  # still sampling after it vanished
    assert out.read_text().endswith(";0;0\n")  # the last row is complete

    killed_out = tmp_path / "killed.csv"
    killed = processes.start("ip", "netns", "exec", ns, sys.executable, "-m", "mpstream", "record",
                             "--interval-ms", "20", "--output", str(killed_out))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # start-up takes a while on a busy machine
        if killed_out.exists() and killed_out.read_text().count(";total;") >= 10:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=5)
    from mpstream.measurement.recorder.csvformat import parse_text

    rows = parse_text(killed_out.read_text())  # at most a torn last line, which the reader skips
    assert len(rows) >= 10
