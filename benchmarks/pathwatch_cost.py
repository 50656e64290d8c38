#!/usr/bin/env python3
"""The path watcher's cost per node with 2, 10 and 40 peers: CPU and probe packets a second.

Builds two namespaces, a node (`t8-pwc-n`) and its peers (`t8-pwc-p`), joined by one veth
pair per provider (two providers); every peer is one IPv4 and one IPv6 address per
provider on the peers' side, so the node's watcher probes 2 providers x 2 families x N
peer addresses, as on a NorNet node with N other sites. The peers' kernel answers the
echoes. Each variant runs `mpstream pathwatch --no-recreate` (probing and tracking only,
0.1 s rounds as the multihoming role sets them) and, after a warm-up, reads over a window:

- CPU: utime + stime from /proc/PID/stat, in % of one core;
- probes: echo requests sent by the node (Icmp OutEchos + Icmp6OutEchos, /proc/net/snmp*);
- downs: providers declared down (a working network: must stay 0).

Variants: `bounded` (the default, 2 probes a round per provider), `probe-all` (every probe
every round, `probe_all: true`) and, with `--before REV`, the watcher as it was at that git
revision (one raw socket per probe). Rounds interleave the variants; the table shows
medians of the rounds.

    .venv/bin/python benchmarks/pathwatch_cost.py [--rounds 3] [--seconds 10] [--before REV]

Needs root. Removes the namespaces and every process it started, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

NODE, PEERS = "t8-pwc-n", "t8-pwc-p"
PROVIDERS = (1, 2)
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The watcher's command line without the `mpstream` wrapper of a given source tree.
RUN_WATCHER = "import sys; from mpstream.cli import main; sys.exit(main(sys.argv[1:]))"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def node_address(provider: int, version: int) -> str:
    return f"198.18.{provider}.1" if version == 4 else f"2001:2:0:{provider}::1"


def peer_address(provider: int, version: int, peer: int) -> str:
    return f"198.18.{provider}.{10 + peer}" if version == 4 else f"2001:2:0:{provider}::{10 + peer:x}"


def teardown() -> None:
    for name in (NODE, PEERS):
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", name, check=False)


def build(peers: int) -> None:
    for name in (NODE, PEERS):
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
    for p in PROVIDERS:
        sh("ip", "-n", NODE, "link", "add", f"nic{p}", "type", "veth", "peer", "name", f"up{p}", "netns", PEERS)
        sh("ip", "-n", NODE, "addr", "add", f"{node_address(p, 4)}/24", "dev", f"nic{p}")
        sh("ip", "-n", NODE, "addr", "add", f"{node_address(p, 6)}/64", "dev", f"nic{p}", "nodad")
        for i in range(peers):
            sh("ip", "-n", PEERS, "addr", "add", f"{peer_address(p, 4, i)}/24", "dev", f"up{p}")
            sh("ip", "-n", PEERS, "addr", "add", f"{peer_address(p, 6, i)}/64", "dev", f"up{p}", "nodad")
        for name, dev in ((NODE, f"nic{p}"), (PEERS, f"up{p}")):
            sh("ip", "-n", name, "link", "set", dev, "up")


def config(peers: int, probe_all: bool) -> dict:
    providers = [
        {
            "name": f"isp{p}",
            "devices": [f"nic{p}"],
            "addresses": [node_address(p, 4), node_address(p, 6)],
            "probes": [
                {"source": node_address(p, v), "target": peer_address(p, v, i), "peer": f"site{i}"}
                for i in range(peers)
                for v in (4, 6)
            ],
        }
        for p in PROVIDERS
    ]
    return {"interval": 0.1, "down_after": 0.3, "probe_all": probe_all, "providers": providers}


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def echoes_sent() -> int:
    text = sh("ip", "netns", "exec", NODE, "cat", "/proc/net/snmp", "/proc/net/snmp6").stdout
    lines = text.splitlines()
    total = 0
    for header, values in zip(lines, lines[1:], strict=False):
        if header.startswith("Icmp:") and values.startswith("Icmp:"):
            names, numbers = header.split()[1:], values.split()[1:]
            if "OutEchos" in names:
                total += int(numbers[names.index("OutEchos")])
    for line in lines:
        if line.startswith("Icmp6OutEchos "):
            total += int(line.split()[1])
    return total


def measure(src: Path, peers: int, probe_all: bool, seconds: float, warmup: float, workdir: Path) -> dict:
    config_file, events = workdir / "pathwatch.json", workdir / "events.jsonl"
    config_file.write_text(json.dumps(config(peers, probe_all)))
    events.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = ["pathwatch", "--config", str(config_file), "--no-recreate", "--events", str(events)]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", NODE, sys.executable, "-c", RUN_WATCHER, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # `ip netns exec` execs the command: proc.pid is the watcher's
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"the watcher from {src} exited with {proc.returncode}")
        ticks, sent, started = cpu_ticks(proc.pid), echoes_sent(), time.monotonic()
        time.sleep(seconds)
        ticks, sent = cpu_ticks(proc.pid) - ticks, echoes_sent() - sent
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lines = events.read_text().splitlines() if events.exists() else []
    transitions = [e for e in map(json.loads, lines) if e["event"] == "provider"]
    return {
        "cpu": 100.0 * ticks / CLK_TCK / elapsed,
        "probes": sent / elapsed,
        "downs": sum(e["new"] == "down" for e in transitions),
        "ups": sum(e["new"] == "up" for e in transitions),
    }


def source_tree(rev: str | None, workdir: Path) -> Path:
    """relay/src of the working tree, or of git revision `rev` unpacked under `workdir`."""
    if rev is None:
        return REPO / "relay" / "src"
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "relay/src/mpstream"], check=True, capture_output=True
    ).stdout
    target = workdir / f"rev-{rev.replace('/', '_')}"
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "relay" / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--peers", type=int, nargs="+", default=[2, 10, 40])
    parser.add_argument("--before", metavar="REV", help="also measure the watcher of this git revision")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="t8-pwc-") as tmp:
        workdir = Path(tmp)
        variants = {"bounded": (source_tree(None, workdir), False), "probe-all": (source_tree(None, workdir), True)}
        if args.before:
            variants[f"before ({args.before})"] = (source_tree(args.before, workdir), True)
        results: dict[tuple[str, int], list[dict]] = {}
        for peers in args.peers:
            teardown()
            try:
                build(peers)
                for _ in range(args.rounds):
                    for name, (src, probe_all) in variants.items():
                        results.setdefault((name, peers), []).append(
                            measure(src, peers, probe_all, args.seconds, args.warmup, workdir)
                        )
            finally:
                teardown()
    print(
        f"\nmedians of {args.rounds} rounds, {args.seconds:.0f} s windows; 2 providers x 2 families, "
        "0.1 s rounds; downs: providers declared down on a working network"
    )
    print(f"{'variant':<24} {'peers':>5} {'probes/s':>9} {'CPU % of a core':>16} {'downs':>6}")
    for (name, peers), runs in results.items():
        cpu = statistics.median(r["cpu"] for r in runs)
        probes = statistics.median(r["probes"] for r in runs)
        downs = max(r["downs"] for r in runs)
        print(f"{name:<24} {peers:>5} {probes:>9.0f} {cpu:>16.2f} {downs:>6}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
