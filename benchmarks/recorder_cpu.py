#!/usr/bin/env python3
"""CPU used by `mpstream record` beside bwm-ng, sampling 10 interfaces every 100 ms.

Builds a private network namespace (`t5-bench`) with 10 veth interfaces (5 pairs), starts
bwm-ng (`-o csv -T rate -t 100`) and the recorder (once per counter source) in it at the
same time, lets them warm up, then reads each process's on-CPU time (schedstat, ns) over
a measuring window. Repeats the round and prints the medians side by side, and each
recorder's ratio to bwm-ng in every round (the machine's load drifts between rounds, so a
ratio is taken within one) with the median of those ratios.

Start-up is left out for every peer alike: the window opens after the warm-up (`--warmup`,
2 s), when the interpreter has started and imported and bwm-ng has set up, so the figures
are the steady cost of sampling. What it measures is idle interfaces (the veths carry no
traffic but what IPv6 sends on its own now and then): the recorder's cheapest case, as a
kernel answer byte for byte the one before is not parsed again, while bwm-ng does the same
work every time. `tests/integration/test_recorder_vs_bwmng.py` runs both on traffic.

    sudo .venv/bin/python benchmarks/recorder_cpu.py [--rounds 3] [--seconds 10]

Needs root. Removes the namespace and every process it started, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import statistics
import subprocess
import sys
import time
from pathlib import Path

NAMESPACE = "t5-bench"
INTERFACES = 10
PEER = "bwm-ng"  # what the recorders are held against, round by round
VENV_BIN = Path(sys.executable).parent


def on_cpu_ns(pid: int) -> int:
    """Nanoseconds all threads of `pid` have run on a CPU."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        with contextlib.suppress(FileNotFoundError):
            total += int(Path(path).read_text().split()[0])
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


@contextlib.contextmanager
def namespace_with_interfaces():
    run("ip", "netns", "add", NAMESPACE)
    try:
        run("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
        for i in range(0, INTERFACES, 2):  # veth pairs: this kernel has no dummy driver
            run("ip", "-n", NAMESPACE, "link", "add", f"bench{i}", "type", "veth", "peer", "name", f"bench{i + 1}")
            for name in (f"bench{i}", f"bench{i + 1}"):
                run("ip", "-n", NAMESPACE, "link", "set", name, "up")
        yield
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], check=False)


def commands() -> dict[str, list[str]]:
    in_ns = ["ip", "netns", "exec", NAMESPACE]
    interfaces = ",".join(f"bench{i}" for i in range(INTERFACES))
    return {
        "bwm-ng": in_ns + ["bwm-ng", "-o", "csv", "-T", "rate", "-t", "100", "-I", interfaces,
                           "-F", "/dev/null"],
        "mpstream record (netlink)": in_ns + [str(VENV_BIN / "mpstream"), "record", "-t", "100",
                                              "-I", interfaces, "--source", "netlink", "-F", "/dev/null"],
        "mpstream record (pyroute2)": in_ns + [str(VENV_BIN / "mpstream"), "record", "-t", "100",
                                               "-I", interfaces, "--source", "pyroute2", "-F", "/dev/null"],
        "mpstream record (proc)": in_ns + [str(VENV_BIN / "mpstream"), "record", "-t", "100",
                                           "-I", interfaces, "--source", "proc", "-F", "/dev/null"],
    }


def one_round(warmup_s: float, seconds: float) -> tuple[dict[str, float], dict[str, int]]:
    """Percent of one core each tool used over the window (all running at the same time), and RSS."""
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands().items():
            procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(warmup_s)  # interpreter start-up and imports are not the steady state
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early with {proc.returncode}")
        start = {name: on_cpu_ns(p.pid) for name, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        end = {name: on_cpu_ns(p.pid) for name, p in procs.items()}
        rss = {name: rss_kib(p.pid) for name, p in procs.items()}
        return {name: 100.0 * (end[name] - start[name]) / 1e9 / elapsed for name in procs}, rss
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per round")
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    memory: dict[str, list[int]] = {}
    ratios: dict[str, list[float]] = {}  # to the peer measured in the same round
    with namespace_with_interfaces():
        for number in range(1, args.rounds + 1):
            cpu, rss = one_round(args.warmup, args.seconds)
            print(f"round {number}: " + ", ".join(f"{k} {v:.3f} %" for k, v in cpu.items()), flush=True)
            print(f"  to {PEER} in this round: "
                  + ", ".join(f"{k} {v / cpu[PEER]:.2f}x" for k, v in cpu.items() if k != PEER), flush=True)
            for name, value in cpu.items():
                results.setdefault(name, []).append(value)
                memory.setdefault(name, []).append(rss[name])
                ratios.setdefault(name, []).append(value / cpu[PEER])
    print(f"\nmedian of {args.rounds} rounds, {INTERFACES} interfaces, 100 ms interval, "
          f"start-up left out ({args.warmup:g} s warm-up):")
    print(f"  {'':28s} {'CPU (% of one core)':>20s} {'to ' + PEER:>12s} {'RSS (MiB)':>10s}")
    for name, values in results.items():
        print(f"  {name:28s} {statistics.median(values):20.3f} {statistics.median(ratios[name]):11.2f}x "
              f"{statistics.median(memory[name]) / 1024:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
