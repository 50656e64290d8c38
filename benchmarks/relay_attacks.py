#!/usr/bin/env python3
"""Issue 21's attacks against `mpstream relay` and nginx-rtmp, side by side, with a real ffmpeg victim.

For each case and server (a fresh server process each time, on loopback): ffmpeg publishes
a sample with `-re -c copy` and an ffmpeg player records it (the victim); after a warm-up
the attack runs for `--seconds` in threads (tests/support/rtmp_attacks.py) while new
players probe the server every second (time to their first video frame). Measured: the
victim's share of the published frames, the slowest probe (or how many failed), the
server's CPU seconds and peak RSS above idle during the attack, whether the attacker was
dropped, and the bytes of log the server wrote. Both servers get the same open-files
limit (soft 1024 as a systemd unit without LimitNOFILE, hard 524288 or the machine's).

    .venv/bin/python benchmarks/relay_attacks.py [--seconds 8] [--cases empty,pings] [--servers mpstream,nginx]

Prints a Markdown table (docs/relay-under-attack.md has one). Stops every process it started.
"""

from __future__ import annotations

import argparse
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import media, nginx_rtmp, relay_process  # noqa: E402
from tests.support import rtmp_attacks as attack  # noqa: E402
from tests.support.relay_process import RelayProcess, free_port  # noqa: E402

# A systemd unit's default: soft 1024, hard 524288 (or what this machine's hard limit allows).
NOFILE = f"1024:{min(524288, resource.getrlimit(resource.RLIMIT_NOFILE)[1])}"
APP = "live"


def cases(seconds: float, reader_seconds: float = 45.0) -> dict:
    """name -> attack(port): Outcome."""
    return {
        "empty": ("empty messages, 4 connections", lambda port: attack.empty_messages(port, seconds, app=APP)),
        "aggregates": ("aggregates of empty messages, 4 connections",
                       lambda port: attack.empty_aggregates(port, seconds, app=APP)),
        "partial": ("unfinished 8 MiB messages on 60 chunk streams",
                    lambda port: attack.partial_messages(port, seconds)),
        "gop": ("16 published streams, 100 kB frames, no keyframes",
                lambda port: attack.gop_streams(port, seconds, app=APP)),
        "names": ("plays with 6 MB names, never reading", lambda port: attack.long_names_not_reading(port, seconds)),
        "pings": ("pings, never reading", lambda port: attack.pings_not_reading(port, seconds)),
        "unknown": ("unknown commands (+ a name with a newline)", lambda port: attack.log_forging(port, seconds)),
        "storm": ("10 000 connections at once", lambda port: attack.fd_storm(port, seconds, count=10_000)),
        "takeover": ("publisher stalled 5.5 s, 7 publish attempts", None),
        "readers": (f"20 players that never read, {reader_seconds:g} s",
                    lambda port: attack.players_not_reading(port, reader_seconds, app=APP)),
    }


class Server:
    """One server process with the victim around it."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.workdir = workdir
        self.proc: RelayProcess | nginx_rtmp.NginxRtmp | None = None

    def start(self) -> None:
        if self.kind == "mpstream":
            wrapper = self.workdir / "mpstream-limited"
            if not wrapper.exists():
                wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile={NOFILE} "{relay_process.MPSTREAM}" "$@"\n')
                wrapper.chmod(0o755)
            relay_process.MPSTREAM = str(wrapper)
            self.proc = RelayProcess(self.workdir / f"relay-{time.monotonic_ns()}.log").start()
        else:
            self.proc = nginx_rtmp.NginxRtmp(free_port(), app=APP)
            self.proc.start()
            subprocess.run(["prlimit", f"--nofile={NOFILE}", "--pid", str(self.proc.pid)], check=True)

    @property
    def port(self) -> int:
        return self.proc.port  # type: ignore[union-attr]

    @property
    def pid(self) -> int:
        return self.proc.pid  # type: ignore[union-attr]

    def url(self, stream: str = "cam") -> str:
        return f"rtmp://[::1]:{self.port}/{APP}/{stream}"

    def log_bytes(self) -> int:
        if self.kind == "mpstream":
            return self.proc.log.stat().st_size  # type: ignore[union-attr]
        path = self.proc.prefix / "error.log"  # type: ignore[union-attr]
        return path.stat().st_size if path.exists() else 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def probe_loop(url: str, stop: threading.Event, results: list) -> None:
    while not stop.is_set():
        results.append(attack.probe_first_frame(url, timeout=3.0))
        stop.wait(1.0)


def run_case(kind: str, key: str, name: str, run, seconds: float, sample: Path, sent_frames: int,
             workdir: Path) -> dict:
    server = Server(kind, workdir)
    out = workdir / f"victim-{kind}-{key}.flv"
    server.start()
    procs: list[subprocess.Popen] = []
    try:
        # nginx-rtmp keeps players of an unpublished stream: the victim ends on 8 s without data
        # (longer than the takeover case's stall), so that its file is finished either way.
        player = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-rw_timeout", "8000000", "-y", "-i",
                                   server.url(), "-c", "copy", "-f", "flv", str(out)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        procs.append(player)
        time.sleep(1.0)
        publisher = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(sample), "-c",
                                      "copy", "-f", "flv", server.url()], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        procs.append(publisher)
        time.sleep(2.5)
        idle_rss = attack.rss_bytes(server.pid)
        cpu0 = attack.cpu_seconds(server.pid)
        log0 = server.log_bytes()
        probes: list = []
        stop = threading.Event()
        prober = threading.Thread(target=probe_loop, args=(server.url(), stop, probes))
        with attack.RssWatch(server.pid) as rss:
            prober.start()
            if run is None:  # takeover: the publisher stalls, others try its name
                publisher.send_signal(signal.SIGSTOP)
                time.sleep(5.5)
                answers = [attack.publish_once(server.port, APP, "cam") for _ in range(7)]
                publisher.send_signal(signal.SIGCONT)
                taken = sum("NetStream.Publish.Start" in codes for codes in answers)
                outcome = attack.Outcome(taken == 0, 0, f"{taken} of 7 took the stream")
            else:
                outcome = run(server.port)
            stop.set()
            prober.join()
        cpu = attack.cpu_seconds(server.pid) - cpu0
        log_grown = server.log_bytes() - log0
        publisher.wait(timeout=120)
        player.wait(timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
    got = media.count_video_frames(out) if out.exists() else 0
    answered = [p for p in probes if p is not None]
    return {
        "case": name, "server": kind, "victim": 100.0 * got / sent_frames,
        "probes": f"{len(answered)}/{len(probes)}",
        "slowest": max(answered) if answered else None,
        "cpu": cpu, "rss": (rss.peak - idle_rss) / 2**20, "dropped": outcome.dropped, "detail": outcome.detail,
        "log": log_grown,
    }


def table(rows: list[dict]) -> str:
    lines = ["| case | server | victim frames | new players served | slowest first frame | CPU s | "
             "RSS above idle | attacker stopped | log bytes |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        slowest = f"{r['slowest']:.2f} s" if r["slowest"] is not None else "-"
        stopped = ("yes" if r["dropped"] else "no") + (f" ({r['detail']})" if r["detail"] else "")
        lines.append(f"| {r['case']} | {r['server']} | {r['victim']:.1f} % | {r['probes']} | {slowest} | "
                     f"{r['cpu']:.2f} | {r['rss']:.1f} MiB | {stopped} | {r['log']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each attack (default 8)")
    parser.add_argument("--reader-seconds", type=float, default=45.0,
                        help="how long players that never read are given (default 45)")
    parser.add_argument("--cases", default="", help="comma-separated subset of: " + ",".join(cases(1)))
    parser.add_argument("--servers", default="mpstream,nginx")
    args = parser.parse_args()
    chosen = cases(args.seconds, args.reader_seconds)
    keys = [k for k in args.cases.split(",") if k] or list(chosen)
    servers = [s for s in args.servers.split(",") if s]
    if "nginx" in servers and not nginx_rtmp.available():
        print("nginx-rtmp is not installed: mpstream only", file=sys.stderr)
        servers.remove("nginx")
    rows = []
    with tempfile.TemporaryDirectory(prefix="relay-attacks-") as tmp:
        for key in keys:
            name, run = chosen[key]
            sample = media.sample_flv(seconds=(args.reader_seconds if key == "readers" else args.seconds) + 14)
            sent = media.count_video_frames(sample)
            for kind in servers:
                row = run_case(kind, key, name, run, args.seconds, sample, sent, Path(tmp))
                print(f"{row['case']} / {kind}: victim {row['victim']:.1f} %, probes {row['probes']}, "
                      f"slowest {row['slowest']}, CPU {row['cpu']:.2f} s, RSS +{row['rss']:.1f} MiB, "
                      f"stopped {row['dropped']} {row['detail']}, log {row['log']} B", file=sys.stderr)
                rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
