#!/usr/bin/env python3
"""Fan-out cost: one ~1 Mbit/s stream to N viewers on loopback, `mpstream relay` beside its peers.

The peers: nginx-rtmp (Debian), node-media-server (npm, on Debian's nodejs) and a minimal relay
on pyrtmp (PyPI; benchmarks/peers/pyrtmp_relay.py), the last two installed by `make bench-peers`
under .cache/bench-peers/. A peer that is not there is skipped with a line that says why.

For each N, each round and each server in turn (the servers of one round share the machine's
mood): a timed publisher (its own process) sends a looped H.264/AAC sample in real time and
notes when it sent each video frame (wall clock); N viewers join (RTMP players from
mpstream.streaming.rtmp.ClientSession that, once playing, count bytes and send acknowledgements; a few
of them, the probes, also parse what arrives and note when each video frame came). After a
warm-up the server's CPU time (utime+stime from /proc/<pid>/stat), every viewer's bytes and
the probes' frames are measured over a window, and the server's RSS at its end.
A viewer "kept up" when it received at least 90 % of the stream's byte rate. The added latency
is probe arrival minus publisher send, per video frame (p50, p99 over the probes' frames); it
includes the viewers' own event loop, which is the same for every server.
Prints medians over the rounds (kept up: the worst round) and viewers per core relative to
nginx-rtmp measured in the same run.

    .venv/bin/python benchmarks/relay_fanout.py [--viewers 50,200,500,1000] [--seconds 10] [--rounds 3]
        [--servers mpstream,nginx-rtmp,node-media-server,pyrtmp] [--relay-args "--flush-interval-ms 50"]
        [--before DIR]

`--before DIR` adds the relay of another tree (`git archive REV relay | tar -x -C DIR`) as the server
`mpstream-before`, run from DIR/relay/src with this venv: a change against what it changed,
in one run.

Uses ports on 127.0.0.1 only; stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpstream.streaming import flv  # noqa: E402
from mpstream.streaming.relay import eventloop  # noqa: E402
from mpstream.streaming.rtmp import (  # noqa: E402
    ClientSession,
    MediaMessage,
    PlayStarted,
    PublishStarted,
    amf0,
    parse_rtmp_url,
)
from mpstream.streaming.rtmp import messages as m  # noqa: E402
from mpstream.streaming.rtmp.chunk import encode_message  # noqa: E402

from tests.support import media, nginx_rtmp  # noqa: E402
from tests.support.relay_process import RelayProcess, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ACK_WINDOW = 2_500_000
PROBES = 5  # viewers that also time every video frame
PEERS_DIR = REPO / ".cache" / "bench-peers"
NODE_MEDIA_SERVER = PEERS_DIR / "node_modules" / "node-media-server" / "bin" / "app.js"
PYRTMP_PYTHON = PEERS_DIR / "pyrtmp-venv" / "bin" / "python"
PYRTMP_RELAY = REPO / "benchmarks" / "peers" / "pyrtmp_relay.py"
SERVERS = ("mpstream", "nginx-rtmp", "node-media-server", "pyrtmp")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def frame_key(body: bytes) -> int:
    """What tells a video frame apart (the publisher's sample repeats only once per loop)."""
    return zlib.crc32(body) ^ len(body) << 32


# ------------------------------------------------------------ servers


def _wait_listening(proc: subprocess.Popen, port: int, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


class ChildServer:
    """A peer run as our child process on 127.0.0.1 (its own session: stopping it stops all of it)."""

    name = ""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def url(self, stream: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{stream}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self):
        log = open(self.workdir / f"{self.name}-{self.port}.log", "wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        try:
            _wait_listening(self.proc, self.port, self.name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None


class NodeMediaServer(ChildServer):
    name = "node-media-server"

    def command(self) -> list[str]:
        config = {"bind": "127.0.0.1", "rtmp": {"port": self.port}, "http": {"port": free_port()},
                  "store": {"path": str(self.workdir / "nms-data"), "maxHistory": 10},
                  "auth": {"play": False, "publish": False, "secret": "bench",
                           "jwt": {"secret": "bench", "users": []}},
                  "webadmin": {"enable": False}, "record": {"auto": False, "path": str(self.workdir / "nms-rec")}}
        path = self.workdir / f"nms-{self.port}.json"
        path.write_text(json.dumps(config))
        return ["node", str(NODE_MEDIA_SERVER), "-c", str(path), "--no-admin"]


class PyrtmpRelay(ChildServer):
    name = "pyrtmp"

    def command(self) -> list[str]:
        return [str(PYRTMP_PYTHON), str(PYRTMP_RELAY), "127.0.0.1", str(self.port)]


class Mpstream:
    """This tree's relay, or with `source` (a checkout's relay/src) another one's."""

    def __init__(self, workdir: Path, viewers: int, relay_args: str, source: Path | None = None):
        self.name = "mpstream-before" if source else "mpstream"
        extra = ("--max-connections", str(viewers + 64), *relay_args.split())
        env = {**os.environ, "PYTHONPATH": str(source)} if source else None
        self.relay = RelayProcess(workdir / f"{self.name}-{viewers}.log", extra=extra, env=env)

    def url(self, stream: str) -> str:
        return self.relay.url(stream, host="127.0.0.1")

    @property
    def pid(self) -> int:
        return self.relay.pid

    def __enter__(self):
        self.relay.start()
        return self

    def __exit__(self, *exc) -> None:
        self.relay.stop()


class Nginx:
    name = "nginx-rtmp"

    def __init__(self):
        self.server = nginx_rtmp.NginxRtmp(port=free_port())

    def url(self, stream: str) -> str:
        return self.server.url("live", stream)

    @property
    def pid(self) -> int:
        return self.server.pid

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


def missing(server: str) -> str | None:
    """Why a server cannot run here, or None."""
    if server == "nginx-rtmp" and not nginx_rtmp.available():
        return "nginx with libnginx-mod-rtmp is not installed (make setup)"
    if server == "node-media-server":
        if shutil.which("node") is None:
            return "no nodejs (make bench-peers)"
        if not NODE_MEDIA_SERVER.exists():
            return f"{NODE_MEDIA_SERVER.relative_to(REPO)} not found (make bench-peers)"
    if server == "pyrtmp":
        if not PYRTMP_PYTHON.exists():
            return f"{PYRTMP_PYTHON.relative_to(REPO)} not found (make bench-peers)"
        if subprocess.run([str(PYRTMP_PYTHON), "-c", "import pyrtmp"], capture_output=True).returncode:
            return "pyrtmp does not import in its venv (make bench-peers)"
    return None


def make_server(name: str, workdir: Path, viewers: int, relay_args: str, before: Path | None = None):
    if name == "mpstream":
        return Mpstream(workdir, viewers, relay_args)
    if name == "mpstream-before":
        return Mpstream(workdir, viewers, relay_args, source=before)
    if name == "nginx-rtmp":
        return Nginx()
    return NodeMediaServer(workdir) if name == "node-media-server" else PyrtmpRelay(workdir)


# ------------------------------------------------------------ publisher


def _exchange(sock: socket.socket, session: ClientSession) -> list:
    sock.sendall(session.data_to_send())
    return session.receive_data(sock.recv(65536))


def publish_timed(sample: Path, url: str, log_path: Path) -> None:
    """Publish the sample in a loop, in real time; log "key wall-clock" for every video frame sent."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tags = list(flv.read_tags(sample.read_bytes()))
    target = parse_rtmp_url(url)
    session = ClientSession(target.app, target.tc_url, auto="publish", stream=target.stream)
    sock = socket.create_connection((target.host, target.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while not any(isinstance(e, PublishStarted) for e in _exchange(sock, session)):
        pass
    sid = session.stream_id
    headers = [t for t in tags if t.type == flv.TAG_SCRIPT or flv.is_video_sequence_header(t.body)
               or t.type == flv.TAG_AUDIO and flv.is_audio_sequence_header(t.body)]
    frames = [t for t in tags if t not in headers and t.type in (flv.TAG_AUDIO, flv.TAG_VIDEO)]
    for tag in headers:
        if tag.type == flv.TAG_SCRIPT:
            session.send_message(m.CSID_DATA, m.DATA_AMF0, sid, 0, amf0.encode("@setDataFrame") + tag.body)
        else:
            session.send_media(tag.type, sid, 0, tag.body)
    sock.sendall(session.data_to_send())
    sock.setblocking(False)
    period = frames[-1].timestamp - frames[0].timestamp + 40
    start = time.monotonic()
    with open(log_path, "w", buffering=1) as log:
        for loop in range(1_000_000):
            for tag in frames:
                ts = tag.timestamp + loop * period
                delay = start + ts / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                session.send_media(tag.type, sid, ts, tag.body)
                data = session.data_to_send()
                sock.setblocking(True)
                sock.sendall(data)
                sock.setblocking(False)
                if tag.type == flv.TAG_VIDEO:
                    log.write(f"{frame_key(tag.body)} {time.time():.6f}\n")
                try:
                    answer = sock.recv(65536)  # acknowledgements and pings from the server
                except BlockingIOError:
                    continue
                if not answer:
                    return
                session.receive_data(answer)


def sent_times(log_path: Path) -> dict[int, list[float]]:
    sent: dict[int, list[float]] = {}
    for line in log_path.read_text().splitlines():
        key, _, when = line.partition(" ")
        if when:
            sent.setdefault(int(key), []).append(float(when))
    return sent


def added_latencies(sent: dict[int, list[float]], arrivals: list[tuple[int, float]]) -> list[float]:
    """Per video frame a probe received: its arrival minus the latest time the publisher sent it before."""
    latencies = []
    for key, arrived in arrivals:
        before = [t for t in sent.get(key, ()) if t <= arrived]
        if before:
            latencies.append(arrived - max(before))
    return latencies


# ------------------------------------------------------------ viewers


class Viewer(asyncio.Protocol):
    """Plays until PlayStarted, then only counts bytes (and acknowledges them); a probe also times frames."""

    def __init__(self, url: str, probe: bool = False):
        target = parse_rtmp_url(url)
        self.session = ClientSession(target.app, target.tc_url, auto="play", stream=target.stream, buffer_ms=3000)
        self.transport: asyncio.Transport | None = None
        self.playing = asyncio.get_running_loop().create_future()
        self.probe = probe
        self.timing = False
        self.arrivals: list[tuple[int, float]] = []  # (frame key, wall clock) while timing
        self.bytes = 0
        self._acked = 0
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.session.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.probe or not self.playing.done():
            now = time.time()
            events = self.session.receive_data(data)
            self.transport.write(self.session.data_to_send())  # (its acknowledgements too)
            for event in events:
                if isinstance(event, PlayStarted) and not self.playing.done():
                    self.playing.set_result(True)
                elif self.timing and isinstance(event, MediaMessage) and event.type_id == m.VIDEO:
                    self.arrivals.append((frame_key(event.body), now))
        elif self.bytes - self._acked >= ACK_WINDOW:
            self._acked = self.bytes
            self.transport.write(encode_message(m.CSID_CONTROL, m.ACKNOWLEDGEMENT, 0, 0, m.u32(self.bytes),
                                                self.session.chunk_size))

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.playing.done():
            self.playing.set_result(False)


async def measure(url: str, pid: int, viewers: int, warmup: float, seconds: float, byte_rate: float) -> dict:
    loop = asyncio.get_running_loop()
    target = parse_rtmp_url(url)
    peers: list[Viewer] = []
    step = max(1, viewers // PROBES)  # probes spread over the joining order
    for index in range(viewers):
        probe = index % step == 0 and index // step < PROBES
        _, viewer = await loop.create_connection(lambda probe=probe: Viewer(url, probe), target.host, target.port)
        peers.append(viewer)
    # A server that cannot keep up may not start every viewer: those count as not playing.
    await asyncio.wait([p.playing for p in peers], timeout=60)
    started = [p.playing.done() and p.playing.result() for p in peers]
    await asyncio.sleep(warmup)
    before = [p.bytes for p in peers]
    for p in peers:
        p.timing = True
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    rss = rss_mb(pid)
    for p in peers:
        p.timing = False
    received = [p.bytes - b for p, b in zip(peers, before, strict=True)]
    for p in peers:
        p.transport.close()
    window = t1 - t0
    return {"viewers": viewers, "playing": sum(started), "cpu": (cpu1 - cpu0) / window, "rss_mb": rss,
            "kept_up": sum(1 for r in received if r >= 0.9 * byte_rate * window),
            "median_mbps": statistics.median(received) * 8 / window / 1e6,
            "min_mbps": min(received) * 8 / window / 1e6,
            "arrivals": [a for p in peers for a in p.arrivals]}


def run_one(server_name: str, sample: Path, viewers: int, args, byte_rate: float, workdir: Path) -> dict:
    with make_server(server_name, workdir, viewers, args.relay_args, args.before) as server:
        url = server.url("bench")
        log_path = workdir / f"sent-{server_name}-{viewers}.log"
        publisher = multiprocessing.get_context("fork").Process(target=publish_timed, args=(sample, url, log_path))
        publisher.start()
        try:
            time.sleep(1.5)
            with asyncio.Runner(loop_factory=eventloop.loop_factory()) as runner:  # uvloop: viewers that lag less
                result = runner.run(measure(url, server.pid, viewers, args.warmup, args.seconds, byte_rate))
        finally:
            publisher.terminate()
            publisher.join(10)
    latencies = sorted(added_latencies(sent_times(log_path), result.pop("arrivals")))
    result["latency_p50_ms"] = 1000 * latencies[len(latencies) // 2] if latencies else float("nan")
    result["latency_p99_ms"] = 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] \
        if latencies else float("nan")
    result["server"] = server_name
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="50,200,500,1000", help="comma-separated viewer counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window (default: 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after all viewers play (default: 3)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; medians are reported (default: 3)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--relay-args", default="", help="extra `mpstream relay` flags, e.g. '--flush-interval-ms 40'")
    parser.add_argument("--before", type=Path, help="another checkout whose relay runs beside as mpstream-before")
    args = parser.parse_args()
    if args.before:
        args.before = args.before.resolve() / "relay" / "src"
        if not (args.before / "mpstream" / "cli.py").exists():
            parser.error(f"--before: no mpstream package under {args.before}")
    names = args.servers.split(",")
    if args.before and "mpstream-before" not in names:
        names.insert(names.index("mpstream") + 1 if "mpstream" in names else 0, "mpstream-before")
    known = SERVERS + (("mpstream-before",) if args.before else ())
    servers = []
    for name in names:
        if name not in known:
            parser.error(f"unknown server {name!r}")
        why = missing(name)
        if why:
            print(f"{name}: skipped, {why}")
        else:
            servers.append(name)
    if "nginx-rtmp" not in servers:
        print("nginx-rtmp is the reference: without it there are no ratios", file=sys.stderr)
        return 2
    sample = media.sample_flv(seconds=10, video_kbps=900, audio_kbps=96)
    tags = list(flv.read_tags(sample.read_bytes()))
    duration = (tags[-1].timestamp - tags[0].timestamp) / 1000 + 0.04
    byte_rate = sum(len(t.body) for t in tags) / duration
    print(f"stream: {sample.name}, {byte_rate * 8 / 1e6:.2f} Mbit/s of media; {args.seconds:g} s window after "
          f"{args.warmup:g} s warm-up; {args.rounds} rounds; {os.cpu_count()} cores; servers: {', '.join(servers)}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpstream-fanout-") as tmp:
        for viewers in [int(v) for v in args.viewers.split(",")]:
            results: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name in servers:
                    results[name].append(run_one(name, sample, viewers, args, byte_rate, Path(tmp)))
            for name in servers:
                rounds = results[name]
                row = {k: (statistics.median(r[k] for r in rounds) if isinstance(v, (int, float)) else v)
                       for k, v in rounds[0].items()}
                row["kept_up"] = min(r["kept_up"] for r in rounds)  # the worst round counts
                row["playing"] = min(r["playing"] for r in rounds)
                row["viewers"] = viewers
                row["per_core"] = row["viewers"] / row["cpu"] if row["cpu"] > 0 else float("inf")
                rows.append(row)
            reference = next(r for r in rows if r["viewers"] == viewers and r["server"] == "nginx-rtmp")
            for row in rows[-len(servers):]:
                row["ratio"] = row["per_core"] / reference["per_core"]
                print(f"  {viewers} viewers, {row['server']}: {100 * row['cpu']:.1f} % CPU, "
                      f"{row['ratio']:.2f}x nginx-rtmp", flush=True)
    print(f"{'server':<17} {'viewers':>7} {'playing':>7} {'kept up':>7} {'CPU %':>6} {'viewers/core':>12} "
          f"{'vs nginx':>8} {'RSS MB':>6} {'latency p50/p99 ms':>18} {'median Mbit/s':>13} {'min Mbit/s':>10}")
    for r in rows:
        latency = f"{r['latency_p50_ms']:.0f} / {r['latency_p99_ms']:.0f}"
        print(f"{r['server']:<17} {r['viewers']:>7} {r['playing']:>7} {r['kept_up']:>7} {100 * r['cpu']:>6.1f} "
              f"{r['per_core']:>12.0f} {r['ratio']:>7.2f}x {r['rss_mb']:>6.1f} {latency:>18} "
              f"{r['median_mbps']:>13.2f} {r['min_mbps']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
