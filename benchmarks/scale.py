"""The experiment at NorNet scale on the emulated testbed: how long it takes, and whether
the outages happened when the report says.

    benchmarks/scale.py --sites 20 --providers 3 --phase-seconds 8 [--rounds 1] [--spread]

Builds a NorNet-shaped inventory (tests/support/scale_inventory.py: push at site 1, the
relay at site 2 on 100 Mbit/s, a viewer at every other site, 20 Mbit/s links, a 1 Mbit/s
stream), then times `deploy.yml`, its re-run (which must change nothing) and
`failover.yml` (per round), and prints, per run: the switches' lag behind plan
(p50/p99/max over every node and switch), the largest share a down provider still carried
at any node in phases 2 and 3 (receive, and the push node's send; at the NIC, which counts
what the outage drops there too, and delivered past the drop), how many clients
reported their stalls, and whether the run was valid. Each playbook's output, with the
time of every task (ansible.posix.profile_tasks), is kept in the work folder. The testbed
is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scale_inventory import write_inventory  # noqa: E402
from tests.support.testbed import STATE_ROOT, recap, run_playbook  # noqa: E402


def timed(playbook: str, inventory: Path, extra: dict, log: Path, check: bool = True) -> tuple[float, str, int]:
    """Run a playbook with the task profiler on; its output goes to `log`."""
    started = time.monotonic()
    os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    result = run_playbook(playbook, "-i", str(inventory), extra_vars=extra, check=check, timeout=3600)
    log.write_text(result.stdout + result.stderr)
    return time.monotonic() - started, result.stdout, result.returncode


def changed(output: str) -> int:
    return sum(counts.get("changed", 0) for counts in recap(output).values())


def down_shares(summary: dict, key: str = "rx_share") -> dict[str, float]:
    """The largest share a down provider carried at any node, per phase with an outage: `rx_share`
    counts what reached the NIC (also what the outage dropped there), `delivered_rx_share` what got
    past the drop; the push node's `tx_share` counts with either (nothing dropped is sent)."""
    worst = {}
    for phase in summary.get("phases", []):
        for provider in phase.get("down", []):
            shares = []
            for node, providers in phase.get("nodes", {}).items():
                figures = providers.get(provider, {})
                for name in (key, "tx_share") if node.startswith("push") else (key,):
                    if figures.get(name) is not None:
                        shares.append(figures[name])
            worst[f"{phase['name']} ({provider})"] = max(shares, default=float("nan"))
    return worst


def describe_run(results: Path) -> dict:
    run_dir = (results / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    timeline = json.loads((run_dir / "timeline.json").read_text())
    clients = [n for n, info in json.loads((run_dir / "meta.json").read_text())["inventory"]["nodes"].items()
               if "client" in info.get("roles", [])]
    players = summary.get("players", {})
    return {"valid": summary.get("valid"), "reasons": summary.get("reasons", []), "lag_s": timeline.get("lag_s", {}),
            "down_shares": down_shares(summary), "delivered_shares": down_shares(summary, "delivered_rx_share"),
            "players": sum(1 for c in clients if players.get(c, {}).get("stall_count") is not None),
            "clients": len(clients),
            "stall_free": sum(1 for c in clients if players.get(c, {}).get("stall_count") == 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--phase-seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="failover runs on the one deployment")
    parser.add_argument("--spread", action="store_true", help="site indices spread over 1-255")
    parser.add_argument("--prefix", default="bsc")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mpstream-scale-"))
    inventory = write_inventory(work / "inventory", args.sites, args.providers, spread=args.spread)
    extra = {"testbed_prefix": args.prefix}
    scenario_s = 4 * args.phase_seconds
    print(f"{args.sites} sites x {args.providers} providers, {args.sites - 2} clients, phases of "
          f"{args.phase_seconds:g} s (scenario {scenario_s:g} s); work folder {work}", flush=True)
    try:
        seconds, output, _ = timed("deploy.yml", inventory, extra, work / "deploy.log")
        print(f"deploy.yml            {seconds:7.1f} s  changed={changed(output)}", flush=True)
        seconds, output, _ = timed("deploy.yml", inventory, extra, work / "deploy-again.log")
        print(f"deploy.yml again      {seconds:7.1f} s  changed={changed(output)}", flush=True)
        for round_ in range(1, args.rounds + 1):
            results = work / f"results{round_}"
            seconds, output, code = timed("failover.yml", inventory, {
                **extra, "failover_phase_seconds": args.phase_seconds, "failover_results_dir": str(results)},
                work / f"failover{round_}.log", check=False)
            print(f"failover.yml #{round_}        {seconds:7.1f} s  ({seconds - scenario_s:+.1f} s beyond the "
                  f"scenario, exit {code})", flush=True)
            if not (results / "latest" / "summary.json").exists():
                print(output[-4000:])
                continue
            run = describe_run(results)
            lag = {key: (run["lag_s"].get(key) or float("nan")) * 1000 for key in ("p50", "p99", "max")}
            print(f"  switch lag          p50 {lag['p50']:6.1f} ms  p99 {lag['p99']:6.1f} ms  "
                  f"max {lag['max']:6.1f} ms  ({run['lag_s'].get('count')} switches, "
                  f"{run['lag_s'].get('by_commit', 0)} timed by their commit notice, "
                  f"{run['lag_s'].get('unchanged', 0)} more needed no transaction)")
            for phase, share in run["down_shares"].items():
                delivered = run["delivered_shares"].get(phase, float("nan"))
                print(f"  down provider share {share * 100:6.2f} % at the NIC, {delivered * 100:6.2f} % delivered  "
                      f"worst node, {phase}")
            print(f"  players reported    {run['players']}/{run['clients']} clients, "
                  f"{run['stall_free']} without a stall")
            print(f"  valid               {run['valid']}" + "".join(f"\n    {r}" for r in run["reasons"][:10]))
    finally:
        run_playbook("playbooks/testbed.yml", "-i", str(inventory),
                     extra_vars={**extra, "testbed_state": "absent"}, check=False)
        shutil.rmtree(STATE_ROOT / args.prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
