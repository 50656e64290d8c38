"""Which settings shorten the stall when one provider fails as the other returns.

The paper's phase 3 on the t8-pw topology (see test_pathwatch_recovery): a 3 Mbit/s
stream over two 2 Mbit/s providers, so both carry data; isp2 goes down for 8 s (its
subflow backs off exponentially with data in flight), then at once isp1 goes down and
isp2 comes back. The stall is the longest gap between bytes arriving at the server in
the 15 s after that switch (`--window`). Variants: kernel defaults, `net.mptcp.stale_loss_cnt=1`,
`net.ipv4.tcp_rto_max_ms=1000` (caps the backoff), the path watcher, and both (with and
without its aborting the failed provider's subflows).

The path watcher does not re-create a provider that comes back while no other provider
answers (its backed-off subflows are then the only path, and removing them would leave
no path to announce the new ones): this case is the retransmission timers' job, which
only the backoff cap shortens.

A benchmark (timings on a shared machine are no test): it repeats each variant and prints
medians. Needs root; builds and removes its own namespaces.

    .venv/bin/python benchmarks/pathwatch_detection.py [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The topology is the recovery test's, so both measure the same thing.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from test_pathwatch_recovery import (  # noqa: E402
    BIN,
    CLIENT,
    PORT,
    PREFIX,
    SERVER,
    SOURCE,
    C,
    S,
    build,
    outage,
    subflows_from,
    teardown,
    wait_for,
)

BASE_SYSCTLS = ("net.mptcp.blackhole_timeout=0", "net.mptcp.enabled=1")
VARIANTS = {
    "kernel defaults": {"sysctls": (), "watcher": False},
    "stale_loss_cnt=1": {"sysctls": ("net.mptcp.stale_loss_cnt=1",), "watcher": False},
    "tcp_rto_max_ms=1000": {"sysctls": ("net.ipv4.tcp_rto_max_ms=1000",), "watcher": False},
    "path watcher": {"sysctls": (), "watcher": True},
    "watcher --no-abort + rto_max 1000": {
        "sysctls": ("net.ipv4.tcp_rto_max_ms=1000",),
        "watcher": True,
        "watcher_args": ("--no-abort",),
    },
    "watcher + rto_max 1000": {"sysctls": ("net.ipv4.tcp_rto_max_ms=1000",), "watcher": True},
}
ISP2_DOWN = 8.0
WINDOW = 6.0

# Records when bytes arrive; writes the arrival times (CLOCK_MONOTONIC, shared by all
# processes on the machine) when it is told to stop.
SINK = """
import json, signal, socket, sys, time
arrivals = []
def stop(*_):
    json.dump(arrivals, open(sys.argv[1], "w")); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", %d)); s.listen(1)
c, _ = s.accept()
while c.recv(65536):
    arrivals.append(time.monotonic())
"""


def longest_gap(arrivals: list[float], start: float, end: float) -> float:
    times = [start] + [t for t in arrivals if start <= t <= end] + [end]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def run_variant(name: str, workdir: Path, window: float = WINDOW) -> dict:
    variant = VARIANTS[name]
    procs: list[subprocess.Popen] = []
    teardown()
    try:
        build(BASE_SYSCTLS + variant["sysctls"])
        arrivals_file = workdir / "arrivals.json"

        def spawn(namespace, *argv):
            procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", namespace, *argv],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            return procs[-1]

        sink = spawn(SERVER, sys.executable, "-c", SINK % PORT, str(arrivals_file))
        time.sleep(0.3)
        spawn(CLIENT, sys.executable, "-c", SOURCE % (S[1], PORT))
        if variant["watcher"]:
            for namespace, mine, theirs in ((CLIENT, C, S), (SERVER, S, C)):
                probes = [f"--probe=isp{p},{mine[p]},{theirs[p]}" for p in (1, 2)]
                spawn(
                    namespace,
                    f"{BIN}/mpstream",
                    "pathwatch",
                    *probes,
                    "--interval",
                    "0.1",
                    "--down-after",
                    "0.5",
                    "--events",
                    str(workdir / f"{namespace}.jsonl"),
                    *variant.get("watcher_args", ()),
                )
        if not wait_for(lambda: subflows_from(C[1]) >= 1 and subflows_from(C[2]) >= 1, 10):
            raise RuntimeError("no subflow over isp2 to begin with")
        time.sleep(1.0)
        outage(2, True)
        time.sleep(ISP2_DOWN)
        outage(1, True)
        outage(2, False)
        switched = time.monotonic()
        time.sleep(window)
        sink.terminate()
        sink.wait(timeout=5)
        arrivals = json.loads(arrivals_file.read_text())
        watcher_events = [
            json.loads(line)
            for path in sorted(workdir.glob(f"{PREFIX}-*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        for path in workdir.glob(f"{PREFIX}-*.jsonl"):
            path.unlink()
        return {
            "variant": name,
            "stall": longest_gap(arrivals, switched, switched + window),
            "bytes_after": sum(1 for t in arrivals if switched + window - 1.0 < t <= switched + window),
            "watcher": [
                (e["event"], e.get("provider")) for e in watcher_events if e["event"].startswith("recreate")
            ],
        }
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        teardown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured after the switch")
    parser.add_argument("variants", nargs="*", default=list(VARIANTS), help="default: all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="t8-detect-") as workdir:
        for name in args.variants:
            stalls = [run_variant(name, Path(workdir), args.window)["stall"] for _ in range(args.trials)]
            print(
                f"{name:>22}: median stall {statistics.median(stalls):.2f} s "
                f"(min {min(stalls):.2f}, max {max(stalls):.2f}, {args.trials} trials)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
