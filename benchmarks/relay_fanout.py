#!/usr/bin/env python3
"""Fan-out cost: one ~1 Mbit/s stream to N viewers on loopback, `mpstream relay` beside nginx-rtmp.

For each N and each server (in the same run, with the same load generator): ffmpeg
publishes a looped H.264/AAC sample with `-re -c copy`; N viewers join (RTMP players
from mpstream.rtmp.ClientSession that, once playing, only count bytes and send
acknowledgements); after a warm-up the server process's CPU time (utime+stime from
/proc/<pid>/stat) and every viewer's received bytes are measured over a window.
A viewer "kept up" when it received at least 90 % of the stream's byte rate.
Prints a table and the viewers-per-core ratio (ours / nginx-rtmp).

    .venv/bin/python benchmarks/relay_fanout.py [--viewers 50,200] [--seconds 10] [--rounds 1]
        [--load python|rtmpdump] [--relay-args "--flush-interval-ms 50"]

Uses ports on 127.0.0.1 only; stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpstream import flv  # noqa: E402
from mpstream.rtmp import ClientSession, PlayStarted, parse_rtmp_url  # noqa: E402
from mpstream.rtmp import messages as m  # noqa: E402
from mpstream.rtmp.chunk import encode_message  # noqa: E402

from tests.support import media, nginx_rtmp  # noqa: E402
from tests.support.relay_process import RelayProcess, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ACK_WINDOW = 2_500_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Viewer(asyncio.Protocol):
    """Plays until PlayStarted, then only counts bytes (and acknowledges them)."""

    def __init__(self, url: str):
        target = parse_rtmp_url(url)
        self.session = ClientSession(target.app, target.tc_url, auto="play", stream=target.stream, buffer_ms=3000)
        self.transport: asyncio.Transport | None = None
        self.playing = asyncio.get_running_loop().create_future()
        self.bytes = 0
        self._acked = 0
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.session.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.playing.done():
            events = self.session.receive_data(data)
            self.transport.write(self.session.data_to_send())
            if any(isinstance(e, PlayStarted) for e in events):
                self.playing.set_result(True)
        elif self.bytes - self._acked >= ACK_WINDOW:
            self._acked = self.bytes
            self.transport.write(encode_message(m.CSID_CONTROL, m.ACKNOWLEDGEMENT, 0, 0, m.u32(self.bytes),
                                                self.session.chunk_size))

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.playing.done():
            self.playing.set_result(False)


def written_bytes(pid: int) -> int:
    """Bytes a process has written with write(2) so far (rtmpdump: the FLV it writes to /dev/null)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def measure_rtmpdump(url: str, pid: int, viewers: int, warmup: float, seconds: float, byte_rate: float) -> dict:
    """The same measurement with rtmpdump processes as viewers (librtmp: IPv4 URLs only)."""
    procs = [subprocess.Popen(["rtmpdump", "-q", "-v", "-r", url, "-o", "/dev/null"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(viewers)]
    try:
        time.sleep(2 + warmup)
        alive = [p for p in procs if p.poll() is None]
        before = {p.pid: written_bytes(p.pid) for p in alive}
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        received = [written_bytes(p.pid) - before[p.pid] if p.poll() is None else 0 for p in alive]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    window = t1 - t0
    received += [0] * (viewers - len(received))
    return {"viewers": viewers, "playing": len(alive), "cpu": (cpu1 - cpu0) / window,
            "kept_up": sum(1 for r in received if r >= 0.9 * byte_rate * window),
            "median_mbps": statistics.median(received) * 8 / window / 1e6,
            "min_mbps": min(received) * 8 / window / 1e6}


async def measure(url: str, pid: int, viewers: int, warmup: float, seconds: float, byte_rate: float) -> dict:
    loop = asyncio.get_running_loop()
    target = parse_rtmp_url(url)
    peers: list[Viewer] = []
    for _ in range(viewers):
        _, viewer = await loop.create_connection(lambda: Viewer(url), target.host, target.port)
        peers.append(viewer)
    started = await asyncio.wait_for(asyncio.gather(*(p.playing for p in peers)), 30)
    await asyncio.sleep(warmup)
    before = [p.bytes for p in peers]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    received = [p.bytes - b for p, b in zip(peers, before, strict=True)]
    for p in peers:
        p.transport.close()
    window = t1 - t0
    cpu = (cpu1 - cpu0) / window
    kept_up = sum(1 for r in received if r >= 0.9 * byte_rate * window)
    return {"viewers": viewers, "playing": sum(started), "kept_up": kept_up, "cpu": cpu,
            "median_mbps": statistics.median(received) * 8 / window / 1e6,
            "min_mbps": min(received) * 8 / window / 1e6}


def publish(sample: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
                             str(sample), "-c", "copy", "-f", "flv", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_one(server: str, sample: Path, viewers: int, args, byte_rate: float, workdir: Path) -> dict:
    port = free_port()
    if server == "nginx-rtmp":
        context = nginx_rtmp.NginxRtmp(port=port)
    else:
        context = RelayProcess(workdir / f"relay-{viewers}.log", extra=tuple(args.relay_args.split()))
    with context as srv:
        url = srv.url("live", "bench") if server == "nginx-rtmp" else srv.url("bench", host="127.0.0.1")
        publisher = publish(sample, url)
        try:
            time.sleep(1.5)
            if args.load == "rtmpdump":
                result = measure_rtmpdump(url, srv.pid, viewers, args.warmup, args.seconds, byte_rate)
            else:
                result = asyncio.run(measure(url, srv.pid, viewers, args.warmup, args.seconds, byte_rate))
        finally:
            publisher.terminate()
            publisher.wait(timeout=10)
    result["server"] = server
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="50,200", help="comma-separated viewer counts (default: 50,200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window (default: 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after all viewers play (default: 3)")
    parser.add_argument("--relay-args", default="", help="extra `mpstream relay` flags, e.g. '--flush-interval-ms 40'")
    parser.add_argument("--load", choices=["python", "rtmpdump"], default="python",
                        help="viewers: in-process RTMP players (default) or one rtmpdump process each")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions; medians are reported (default: 1)")
    args = parser.parse_args()
    if not nginx_rtmp.available():
        print("nginx with libnginx-mod-rtmp is needed for the comparison", file=sys.stderr)
        return 2
    sample = media.sample_flv(seconds=10, video_kbps=900, audio_kbps=96)
    tags = list(flv.read_tags(sample.read_bytes()))
    duration = (tags[-1].timestamp - tags[0].timestamp) / 1000 + 0.04
    byte_rate = sum(len(t.body) for t in tags) / duration
    print(f"stream: {sample.name}, {byte_rate * 8 / 1e6:.2f} Mbit/s of media; "
          f"{args.seconds:g} s window after {args.warmup:g} s warm-up; {os.cpu_count()} cores; "
          f"viewers: {args.load}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpstream-fanout-") as tmp:
        for viewers in [int(v) for v in args.viewers.split(",")]:
            for server in ("mpstream", "nginx-rtmp"):
                results = [run_one(server, sample, viewers, args, byte_rate, Path(tmp)) for _ in range(args.rounds)]
                row = {k: (statistics.median(r[k] for r in results) if isinstance(v, (int, float)) else v)
                       for k, v in results[0].items()}
                row["kept_up"] = min(r["kept_up"] for r in results)  # the worst round counts
                rows.append(row)
    print(f"{'server':<11} {'viewers':>7} {'playing':>7} {'kept up':>7} {'CPU %':>7} {'CPU %/viewer':>12} "
          f"{'viewers/core':>12} {'median Mbit/s':>13} {'min Mbit/s':>10}")
    for r in rows:
        per_core = r["viewers"] / r["cpu"] if r["cpu"] > 0 else float("inf")
        r["per_core"] = per_core
        print(f"{r['server']:<11} {r['viewers']:>7} {r['playing']:>7} {r['kept_up']:>7} {100 * r['cpu']:>7.1f} "
              f"{100 * r['cpu'] / r['viewers']:>12.3f} {per_core:>12.0f} {r['median_mbps']:>13.2f} "
              f"{r['min_mbps']:>10.2f}")
    for viewers in sorted({r["viewers"] for r in rows}):
        ours = next(r for r in rows if r["viewers"] == viewers and r["server"] == "mpstream")
        theirs = next(r for r in rows if r["viewers"] == viewers and r["server"] == "nginx-rtmp")
        ratio = ours["per_core"] / theirs["per_core"]
        print(f"{viewers} viewers: viewers per core, mpstream / nginx-rtmp = {ratio:.2f} "
              f"(all kept up: mpstream {ours['kept_up'] == viewers}, nginx-rtmp {theirs['kept_up'] == viewers})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
