#!/usr/bin/env python3
"""CPU of what runs on a node during a run: `mpstream publish` beside ffmpeg, and a supervisor.

Starts the relay on loopback, then in each round two publishers of a 1 Mbit/s, 30 fps
stream at the same time, each to its own stream name: `mpstream publish` (its synthetic
stream) and ffmpeg (`-re -stream_loop -1 -c copy` of an H.264 + AAC FLV of the same rate
and frame rate, built once with libx264), and one `mpstream.supervise` keeping `sleep`
running (a supervisor only waits for its command; the roles run three to five of them on
every node during a run). Start-up is left out: each window opens after the warm-up
(`--warmup`, 3 s). Prints, per round and as medians, the percent of one core each used
(on-CPU time from schedstat), and the publisher's ratio to ffmpeg within each round (the
machine's load drifts between rounds).

On emulated CPUs (the molecule VMs, TCG) these costs grow about twentyfold, which is why
they are measured here: a publishing VM with one vCPU had none left.

    .venv/bin/python benchmarks/node_cpu.py [--rounds 3] [--seconds 20]

Uses ports on loopback only; stops every process it started, also on failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recorder_cpu import on_cpu_ns  # noqa: E402

from tests.support import media  # noqa: E402
from tests.support.relay_process import MPSTREAM, RelayProcess  # noqa: E402

FPS = 30
BITRATE_KBPS = 1000  # video + audio, as the VM scenario's run
AUDIO_KBPS = 64


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_round(relay: RelayProcess, sample: Path, state_dir: Path, warmup_s: float, seconds: float) -> dict[str, float]:
    """Percent of one core each used over the window, all running at the same time."""
    supervise = [sys.executable, "-m", "mpstream.supervise"]
    started = subprocess.run([*supervise, "start", "--name", "idle", "--state-dir", str(state_dir), "--",
                              "sleep", "3600"], capture_output=True, text=True, check=True)
    supervisor_pid = json.loads(started.stdout)["pid"]
    procs = {
        "mpstream publish": subprocess.Popen(
            [MPSTREAM, "publish", relay.url("synthetic", host="127.0.0.1"), "--bitrate", f"{BITRATE_KBPS}k",
             "--audio-bitrate", f"{AUDIO_KBPS}k", "--fps", str(FPS), "--gop", "2s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "ffmpeg -re -c copy": subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(sample),
             "-c", "copy", "-f", "flv", relay.url("file", host="127.0.0.1")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    pids = {name: proc.pid for name, proc in procs.items()} | {"mpstream.supervise (waiting)": supervisor_pid}
    try:
        time.sleep(warmup_s)
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early with {proc.returncode}")
        start = {name: on_cpu_ns(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        return {name: 100.0 * (on_cpu_ns(pid) - start[name]) / 1e9 / elapsed for name, pid in pids.items()}
    finally:
        for proc in procs.values():
            stop(proc)
        subprocess.run([*supervise, "stop", "--name", "idle", "--state-dir", str(state_dir)],
                       capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per round")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if not media.have_ffmpeg():
        sys.exit("node_cpu: needs ffmpeg and ffprobe (make setup installs them)")
    sample = media.sample_flv(seconds=20, fps=FPS, video_kbps=BITRATE_KBPS - AUDIO_KBPS, audio_kbps=AUDIO_KBPS)
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="node-cpu-") as tmp:
        with RelayProcess(Path(tmp) / "relay.log") as relay:
            for index in range(args.rounds):
                result = one_round(relay, sample, Path(tmp), args.warmup, args.seconds)
                rounds.append(result)
                ratio = result["mpstream publish"] / result["ffmpeg -re -c copy"]
                print(f"round {index + 1}: " + ", ".join(f"{name} {pct:.2f} %" for name, pct in result.items())
                      + f"; publish/ffmpeg {ratio:.2f}x", flush=True)
    print(f"medians over {args.rounds} rounds of {args.seconds:g} s (percent of one core):")
    for name in rounds[0]:
        print(f"  {name:32s} {statistics.median(r[name] for r in rounds):6.2f} %")
    ratios = [r["mpstream publish"] / r["ffmpeg -re -c copy"] for r in rounds]
    print(f"  publish/ffmpeg ratio, median of rounds: {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
