"""Edge relays with redundant origins on the emulated testbed: does a viewer notice a provider,
then its edge's origin, then the other provider failing?

    benchmarks/edge_testbed.py [--phase-seconds 8 | --long] [--prefix etb] [--keep-results DIR]

Deploys inventory/edge-testbed.example (push at site 1, origins at sites 2 and 3, an edge and a
client at sites 4 and 5, providers isp1 and isp2) under its own testbed prefix, runs failover.yml
with its phases (all up; isp2 down; origin1 down: the origin the edges pull from first, its node
cut off from both providers; isp1 down, isp2 back; all up) of 8 s each (25 s with --long), and
prints per client its stalls and startup and per edge the origins it pulled from and its
switches (seconds from t0). The playbooks' output is kept in the work folder. The testbed is
removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.testbed import REPO, STATE_ROOT, run_playbook  # noqa: E402

INVENTORY = REPO / "inventory" / "edge-testbed.example"


def playbook(name: str, extra: dict, log: Path) -> tuple[float, int, str]:
    started = time.monotonic()
    result = run_playbook(name, "-i", str(INVENTORY), extra_vars=extra, check=False, timeout=3600)
    log.write_text(result.stdout + result.stderr)
    return time.monotonic() - started, result.returncode, result.stdout


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def describe(run_dir: Path) -> list[str]:
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [f"run {run_dir.name}: valid {summary.get('valid')}"]
    lines += [f"  invalid: {reason}" for reason in summary.get("reasons", [])[:10]]
    for phase in summary.get("phases", []):
        down = ", ".join(phase.get("down", []) + [f"{n} (cut off)" for n in phase.get("down_nodes", [])]) or "none"
        lines.append(f"  phase {phase['name']!r:24} down: {down:20} {phase['start_s']:6.1f}-{phase['end_s']:6.1f} s")
    clients = [n for n, info in summary.get("nodes", {}).items() if "client" in info.get("roles", [])]
    for client in clients:
        p = summary.get("players", {}).get(client)
        if p is None:
            lines.append(f"  client {client}: no player summary")
            continue
        lines.append(f"  client {client}: {fmt(p.get('stall_count'))} stalls ({fmt(p.get('stall_total_s'))} s), "
                     f"startup {fmt(p.get('startup_s'))} s, {fmt(p.get('video_frames'))} video frames, "
                     f"latency p50 {fmt((p.get('latency_ms') or {}).get('p50'), 0)} ms")
        for stall in p.get("stalls") or []:
            lines.append(f"    stall at {fmt(stall.get('at_s'))} s of play for {fmt(stall.get('duration_s'))} s")
    for edge, info in (summary.get("edges") or {}).items():
        if not info.get("streams"):
            lines.append(f"  edge {edge}: {info.get('note')}")
        for entry in info.get("streams", []):
            lines.append(f"  edge {edge} {entry['stream']}: origins {' -> '.join(map(str, entry['origins_used']))}, "
                         f"{entry['switches']} switches, {fmt(entry.get('connections_failed'))} origin connections "
                         "failed")
            for s in entry["switch_log"]:
                lines.append(f"    at {fmt(s['at_s'], 1)} s {s['from']} -> {s['to']}: {s['mode']}, "
                             f"gap {fmt(s['gap_ms'], 0)} ms ({s.get('reason') or '?'})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase-seconds", type=float, default=8)
    parser.add_argument("--long", action="store_true", help="25 s phases (the paper's)")
    parser.add_argument("--prefix", default="etb")
    parser.add_argument("--keep-results", default=None, help="copy the run folder here")
    args = parser.parse_args()
    phase_s = 25 if args.long else args.phase_seconds

    work = Path(tempfile.mkdtemp(prefix="mpstream-edge-testbed-"))
    extra = {"testbed_prefix": args.prefix}
    print(f"inventory {INVENTORY.relative_to(REPO)}, phases of {phase_s:g} s, work folder {work}", flush=True)
    try:
        seconds, code, output = playbook("deploy.yml", extra, work / "deploy.log")
        print(f"deploy.yml    {seconds:6.1f} s  exit {code}", flush=True)
        if code != 0:
            print(output[-4000:])
            return 1
        results = work / "results"
        seconds, code, output = playbook("failover.yml", {
            **extra, "failover_phase_seconds": phase_s, "failover_results_dir": str(results)}, work / "failover.log")
        print(f"failover.yml  {seconds:6.1f} s  exit {code}", flush=True)
        run_dir = (results / "latest").resolve()
        if not (run_dir / "summary.json").exists():
            print(output[-4000:])
            return 1
        print("\n".join(describe(run_dir)))
        if args.keep_results:
            shutil.copytree(run_dir, Path(args.keep_results) / run_dir.name, dirs_exist_ok=True)
        return 0 if code == 0 else 1
    finally:
        run_playbook("playbooks/testbed.yml", "-i", str(INVENTORY),
                     extra_vars={**extra, "testbed_state": "absent"}, check=False, timeout=600)
        shutil.rmtree(STATE_ROOT / args.prefix, ignore_errors=True)
        print(f"testbed {args.prefix} removed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
