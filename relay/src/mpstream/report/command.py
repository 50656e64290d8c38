"""Turn a run folder into plots, summary.json and report.md.

Reads `RUN_DIR` as the failover playbook writes it (meta.json, timeline.json,
nodes/<NODE>/rates.csv and player.json) and writes into it:

- `plots/rates.{png,svg}` (all nodes) and `plots/rates-<NODE>.{png,svg}`: per-interface data
  rate over time (push: outgoing, client: incoming, server: both), phases shaded and labelled;
- `summary.json`: `phases` (in order: `name`, `down`, `start_s`, `end_s` relative to t0, and
  `nodes` -> node -> provider -> `tx_bytes`, `rx_bytes`, `tx_share`, `rx_share`,
  `tx_mean_bps`, `rx_mean_bps`), `handover_s` (one entry per phase change, node and
  direction: `from`, `to`, `at_s`, `node`, `direction`, `surviving`, `handover_s` = seconds
  until the surviving providers carry >= 90 % of that traffic, null if never within the
  phase), `players` (client node -> its player summary), `nodes`, `thresholds`;
- `report.md`: the plots, a table per phase, handovers, players and the run's setup.

With `--baseline OTHER_RUN_DIR` the report shows the other run's shares, handover times
and stall seconds next to this run's.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (results/<run-id>)")
    parser.add_argument("--baseline", metavar="OTHER_RUN_DIR", default=None,
                        help="a run to compare with (e.g. without path watcher and tuning)")
    parser.add_argument("--bin", type=float, default=0.5, metavar="SECONDS",
                        help="plot rates over bins of this many seconds (default 0.5, 0: raw samples)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (no matplotlib needed)")


def run(args: argparse.Namespace) -> int:
    from mpstream.report.build import build_report
    from mpstream.report.markdown import console_summary

    try:
        written = build_report(args.run_dir, args.baseline, plots=not args.no_plots, bin_s=args.bin)
    except FileNotFoundError as exc:
        print(f"mpstream report: {exc}", file=sys.stderr)
        return 2
    print(console_summary(json.loads(written.summary.read_text(encoding="utf-8"))))
    print(f"report: {written.report}")
    return 0
