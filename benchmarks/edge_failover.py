#!/usr/bin/env python3
"""Edge failover on loopback: what an edge adds to latency, and what its viewers see when an origin dies.

Two `mpstream relay` origins (A over IPv6, B over IPv4), an edge with both as origins, and
`mpstream play` viewers with a 1 s buffer: one from the edge, one from A directly, one from
B directly, all for `--seconds` (default 30, issue 18's case). At `--kill-at` (default 10 s)
A is SIGKILLed, or with `--failure stop` SIGSTOPped: alive but silent, like a node that lost
all its providers (and a publisher connection that no longer drains). ffmpeg also plays
from the edge and reports what it decoded.

- latency: publisher wall clock to player arrival per frame (the publisher's announced start
  plus the frame's timestamp), p50/p99 over the frames before the kill, edge vs A directly;
  after the kill, edge vs B directly;
- per switch (from the edge's stats API): mode, detection-to-splice and splice gap in ms;
- the edge's viewer: stalls, frames received against 25 fps x time played, timestamps that go
  back, frames received twice; ffmpeg's decoded frames after the kill.

`--feed one` (default) publishes one source to both origins (`mpstream publish URL_A URL_B`:
aligned splices); `--feed separate` starts one publisher per origin, 0.7 s apart (the origins'
timelines differ: rebased splices). Several `--rounds` print medians.

    .venv/bin/python benchmarks/edge_failover.py [--seconds 30] [--kill-at 10] [--rounds 3] [--feed one|separate]
        [--failure kill|stop] [--edge-args "--origin-silence-s 0.6"]

Uses ports on loopback only; stops every process it started.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import media  # noqa: E402
from tests.support.relay_process import MPSTREAM, RelayProcess  # noqa: E402

FPS = 25  # of the sample file


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spawn(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=kwargs.pop("stdout", subprocess.DEVNULL), stderr=log.open("wb"),
                            start_new_session=True, **kwargs)


def play(url: str, seconds: float, workdir: Path, name: str) -> subprocess.Popen:
    return spawn([MPSTREAM, "play", url, "--duration", str(seconds), "--buffer-ms", "1000", "--progress", "60",
                  "--json", str(workdir / f"{name}.json"), "--csv", str(workdir / f"{name}.csv")],
                 workdir / f"{name}.log")


def frames(workdir: Path, name: str) -> tuple[dict, list[dict]]:
    summary = json.loads((workdir / f"{name}.json").read_text())
    with open(workdir / f"{name}.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["at"] = summary["started_at"] + float(row["arrival_s"])  # Unix time of arrival
    return summary, rows


def latencies(rows: list[dict], start: float, end: float) -> list[float]:
    return [float(r["latency_ms"]) for r in rows if start <= r["at"] < end and r["latency_ms"] not in ("", None)]


def wait_published(relays: list[RelayProcess], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(any(s["publishing"] for s in r.stats("/streams")) for r in relays):
            return
        time.sleep(0.05)
    raise RuntimeError("the origins did not get the stream")


def one_round(args, sample: Path, workdir: Path) -> dict:
    a = RelayProcess(workdir / "origin-a.log").start()
    b = RelayProcess(workdir / "origin-b.log").start()
    edge = RelayProcess(workdir / "edge.log", extra=(
        "--origin", f"rtmp://[::1]:{a.port}/live", "--origin", f"rtmp://127.0.0.1:{b.port}/live",
        *args.edge_args.split())).start()
    procs: list[subprocess.Popen] = []
    progress: list[tuple[float, int]] = []
    try:
        feed = [MPSTREAM, "publish", "--file", str(sample), "--loop", "--duration", str(args.seconds + 8)]
        if args.feed == "one":
            procs.append(spawn(feed + [a.url(host="::1"), b.url(host="127.0.0.1")], workdir / "publish.log"))
        else:
            procs.append(spawn(feed + [a.url(host="::1")], workdir / "publish-a.log"))
            time.sleep(0.7)
            procs.append(spawn(feed + [b.url(host="127.0.0.1")], workdir / "publish-b.log"))
        wait_published([a, b])
        time.sleep(0.5)
        procs += [play(edge.url(), args.seconds, workdir, "edge"), play(a.url(), args.seconds, workdir, "direct-a"),
                  play(b.url(host="127.0.0.1"), args.seconds, workdir, "direct-b")]
        ffmpeg = spawn(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", edge.url(host="127.0.0.1"),
                        "-t", str(args.seconds - 1), "-an", "-f", "null", "-", "-progress", "pipe:1",
                        "-stats_period", "0.25"], workdir / "ffmpeg.log", stdout=subprocess.PIPE, text=True)
        procs.append(ffmpeg)

        def read_progress() -> None:
            for line in ffmpeg.stdout:
                if line.startswith("frame="):
                    progress.append((time.time(), int(line.split("=", 1)[1])))

        reader = threading.Thread(target=read_progress, daemon=True)
        reader.start()
        started = time.time()
        time.sleep(args.kill_at)
        if args.failure == "kill":
            a.proc.kill()
        else:
            a.proc.send_signal(signal.SIGSTOP)  # alive but mute: what a node cut off from its providers looks like
        killed = time.time()
        time.sleep(2)
        pull = edge.stats("/streams")[0]["pull"]
        for proc in procs[-4:]:
            proc.wait(timeout=args.seconds + 30)
        reader.join(5)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        if args.failure == "stop" and a.proc is not None and a.proc.poll() is None:
            a.proc.send_signal(signal.SIGCONT)
        for relay in (edge, b, a):
            relay.stop()
    edge_summary, edge_rows = frames(workdir, "edge")
    _, a_rows = frames(workdir, "direct-a")
    _, b_rows = frames(workdir, "direct-b")
    warm = started + 2  # the GOP cache burst at the start is not latency
    played = edge_summary["duration_s"] - (edge_summary["play_started_s"] or 0)
    video = [r for r in edge_rows if r["kind"] == "video"]
    stamps = {kind: [int(r["timestamp_ms"]) for r in edge_rows if r["kind"] == kind] for kind in ("video", "audio")}
    decoded_after = max((n for t, n in progress), default=0) - max((n for t, n in progress if t <= killed + 0.5),
                                                                    default=0)
    return {
        "before": {"edge": latencies(edge_rows, warm, killed), "direct": latencies(a_rows, warm, killed)},
        "after": {"edge": latencies(edge_rows, killed + 3, time.time()),
                  "direct": latencies(b_rows, killed + 3, time.time())},
        "switches": pull["switch_log"],
        "killed_at_s": killed - started,
        "stalls": edge_summary["stall_count"],
        "stall_total_s": edge_summary["stall_total_s"],
        "reconnects": edge_summary["reconnects"],
        "video_frames": len(video) - 1,  # without the sequence header
        "expected_frames": FPS * played,
        # Frames the timestamps received span (25 fps): what is missing shows here, the join burst does not.
        "span_frames": (stamps["video"][-1] - stamps["video"][0]) / (1000 / FPS) + 1 if stamps["video"] else 0,
        "backwards": sum(sum(1 for x, y in zip(s, s[1:], strict=False) if y < x) for s in stamps.values()),
        "twice": len(video) - len({(r["timestamp_ms"], r["size"]) for r in video}),
        "ffmpeg_decoded_after_kill": decoded_after,
        "ffmpeg_exit": ffmpeg.returncode,
    }


def show(n: int, result: dict, args) -> None:
    how = "SIGKILLed" if args.failure == "kill" else "SIGSTOPped (silent)"
    print(f"round {n}: {args.seconds:g} s, origin A {how} at {result['killed_at_s']:.1f} s, feed {args.feed}"
          + (f", edge {args.edge_args}" if args.edge_args else ""))
    if args.feed != "one":
        print("  latency: not measured (the viewer takes the start time the new origin announces and the splice "
              "rebases timestamps: publisher clock + timestamp no longer say when a frame was sent)")
    for phase, reference in (("before", "A directly"), ("after", "B directly")) if args.feed == "one" else ():
        e, d = result[phase]["edge"], result[phase]["direct"]
        p = {(who, q): percentile(v, q) for who, v in (("edge", e), ("direct", d)) for q in (50, 99)}
        print(f"  latency {phase} the kill (ms): edge p50 {p['edge', 50]:.1f} p99 {p['edge', 99]:.1f} | "
              f"{reference} p50 {p['direct', 50]:.1f} p99 {p['direct', 99]:.1f} | added p50 "
              f"{p['edge', 50] - p['direct', 50]:+.1f} p99 {p['edge', 99] - p['direct', 99]:+.1f}")
    for i, s in enumerate(result["switches"], 1):
        print(f"  switch {i}: {s['previous_origin']} -> {s['origin']} ({s['reason']}): {s['mode']}, "
              f"detect to splice {s['detect_to_splice_ms']:.1f} ms, splice gap {s['gap_ms']:.1f} ms, "
              f"{s['skipped_as_delivered']} messages skipped as delivered, {s['headers_resent']} headers re-sent")
    share = 100 * result["video_frames"] / result["expected_frames"]
    print(f"  edge viewer (1 s buffer): {result['stalls']} stalls ({result['stall_total_s']:.3f} s), "
          f"{result['video_frames']} video frames for {result['expected_frames']:.0f} at 25 fps x time played "
          f"({share:.1f} %; the join burst counts) and {result['span_frames']:.0f} spanned by their timestamps "
          f"({100 * result['video_frames'] / max(1, result['span_frames']):.1f} %), "
          f"{result['backwards']} timestamps back, {result['twice']} frames twice, {result['reconnects']} reconnects")
    print(f"  ffmpeg from the edge: exit {result['ffmpeg_exit']}, {result['ffmpeg_decoded_after_kill']} frames "
          f"decoded after the kill")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the viewers play (default: 30)")
    parser.add_argument("--kill-at", type=float, default=10.0, help="SIGKILL origin A after this long (default: 10)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions; medians are printed (default: 1)")
    parser.add_argument("--failure", choices=["kill", "stop"], default="kill",
                        help="how origin A fails: SIGKILL (connection reset) or SIGSTOP (silent; default: kill)")
    parser.add_argument("--edge-args", default="", help="extra `mpstream relay` flags for the edge, e.g. "
                        "'--flush-interval-ms 10'")
    parser.add_argument("--feed", choices=["one", "separate"], default="one",
                        help="one publisher to both origins, or one per origin (default: one)")
    args = parser.parse_args()
    if not media.have_ffmpeg():
        print("needs ffmpeg", file=sys.stderr)
        return 2
    sample = media.sample_flv(seconds=12)
    results = []
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="edge-failover-") as tmp:
            results.append(one_round(args, sample, Path(tmp)))
        show(n, results[-1], args)
    if args.rounds > 1 and args.feed == "one":
        def median(f):
            return statistics.median(f(r) for r in results)
        added = {q: median(lambda r, q=q: percentile(r["before"]["edge"], q) - percentile(r["before"]["direct"], q))
                 for q in (50, 99)}
        gaps = [s["gap_ms"] for r in results for s in r["switches"]]
        print(f"medians of {args.rounds} rounds: added latency p50 {added[50]:+.1f} ms, p99 {added[99]:+.1f} ms; "
              f"splice gap {statistics.median(gaps):.1f} ms; stalls {median(lambda r: r['stalls'])}; frames "
              f"{median(lambda r: 100 * r['video_frames'] / r['expected_frames']):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
