"""Turn a run folder into plots, summary.json and report.md, and say whether the run is valid.

Reads `RUN_DIR` as the failover playbook writes it (meta.json, schedule.json, the switchers'
records nodes/<NODE>/switches.jsonl and routers/switches.jsonl, nodes/<NODE>/rates.csv and
player.json; older runs: a planned timeline.json) and writes into it:

- `timeline.json` (when schedule.json is there; format `mpstream-timeline/2`): per phase the
  planned and the actual `start`/`end` (a phase starts when its switch had taken effect at
  every switcher: the latest actual time), every recorded switch with its lag, the lags'
  p50/p99/max, and `valid` with its `reasons`;
- `plots/overview.{png,svg}`: every node and provider at once (share per phase, down
  providers hatched); `plots/rates-<NODE>.{png,svg}`: per-interface data rate over time
  (push: outgoing, client: incoming, server: both), actual phases shaded, missed planned
  instants dotted; `plots/rates.{png,svg}`: all nodes stacked, for runs of a few nodes;
- `summary.json`: `valid`, `reasons`, `switch_lag_s` (p50, p99, max, count, worst, unchanged, by_commit),
  `phases` (in order: `name`, `down` (providers), `down_nodes` (only where the phase named
  hosts: nodes cut off from all their providers), `start_s`, `end_s` relative to t0 as they really ran,
  `planned_start_s`, `planned_end_s`, and `nodes` -> node -> provider -> `tx_bytes`,
  `rx_bytes`, `tx_share`, `rx_share`, `tx_mean_bps`, `rx_mean_bps` from the NIC's counters,
  which count what an outage drops too, and where the node's switcher counted them
  `delivered_rx_bytes`, `delivered_rx_share`: what got past the drop), `handover_s` (one entry
  per phase change, node and direction: `from`, `to`, `at_s`, `node`, `direction`,
  `surviving`, `handover_s` = seconds until the surviving providers carry >= 90 % of that
  traffic, null if never within the phase), `players` (client node -> its player summary),
  `players_overall` (stall-free clients, startup p50/p95, stalls in all), `nodes`, `thresholds`,
  and with edge relays `edges` (edge node -> `streams`: per pulled stream `origins_used` in order,
  `origin_at_end`, `switches`, `switch_log` with `at_s` from t0, `from`, `to`, `mode`, `gap_ms`,
  `reason`; from nodes/<EDGE>/edge-streams.json, see `report.edges`);
- `report.md`: a banner and the reasons when the run is invalid, the switch lags, the plots,
  a table per phase, handovers, players (worst first), the edges' origins and switches and
  the run's setup.

A run is invalid when a switch took effect later or earlier than the schedule's tolerance,
failed or was not recorded, a switcher was cancelled or the run interrupted, a client has no
player summary or its player did not play through the whole schedule, a node's recording
does not cover it, or a provider a node's switcher held down still delivered to it (more than
3 % of its bytes in that phase); a run with only planned times (old timeline.json) is never valid.
Exit status: 0, or 3 for an invalid run (every file is still written; the reasons go to
stderr) unless `--allow-invalid`; 2 when RUN_DIR is no folder.

With `--baseline OTHER_RUN_DIR` the report shows the other run's shares, handover times
and stall seconds next to this run's.

A batch folder (one with `batch.json`: repeated runs, see `report.batch`) gets its aggregate:
`batch-summary.json`, `runs.csv`, `report.md` and `report.html` over its valid runs, every
invalid run named with its reasons (exit 3 when there is one, unless `--allow-invalid`).

`--compare [NAME=]PATH ... --output DIR` puts runs or batches side by side (see
`report.compare`).

Every report.md has a self-contained report.html beside it (figures inline, no request
leaves the file).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_INVALID = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?", default=None,
                        help="the run folder (results/<run-id>), or a batch folder (with batch.json)")
    parser.add_argument("--compare", nargs="+", metavar="RUN_OR_BATCH", default=None,
                        help="runs or batches side by side, each NAME=PATH or PATH (labelled by its folder name); "
                             "needs --output")
    parser.add_argument("--output", metavar="DIR", default=None, help="where --compare writes its report")
    parser.add_argument("--baseline", metavar="OTHER_RUN_DIR", default=None,
                        help="a run to compare with (e.g. without path watcher and tuning)")
    parser.add_argument("--bin", type=float, default=0.5, metavar="SECONDS",
                        help="plot rates over bins of this many seconds (default 0.5, 0: raw samples)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (no matplotlib needed)")
    parser.add_argument("--allow-invalid", action="store_true",
                        help=f"exit 0 also for an invalid run (default: exit {EXIT_INVALID}; the reasons are "
                             "printed either way)")


def _invalid_exit(args: argparse.Namespace, what: str, invalid: list[dict]) -> int:
    if not invalid:
        return 0
    print(f"mpstream report: {len(invalid)} INVALID RUN(S) in {what}, left out of every figure:", file=sys.stderr)
    for entry in invalid:
        print(f"  - {entry['run']}: " + "; ".join(entry["reasons"]), file=sys.stderr)
    return 0 if args.allow_invalid else EXIT_INVALID


def run_compare(args: argparse.Namespace) -> int:
    from mpstream.measurement.report.compare import build_compare_report

    if not args.output:
        print("mpstream report: --compare needs --output DIR", file=sys.stderr)
        return 2
    try:
        written = build_compare_report(args.compare, args.output, plots=not args.no_plots)
    except FileNotFoundError as exc:
        print(f"mpstream report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {written.report}\nhtml: {written.html}")
    items = json.loads(written.summary.read_text(encoding="utf-8"))["items"]
    invalid = [{"run": f"{item['label']}/{entry['run']}", "reasons": entry["reasons"]}
               for item in items for entry in item["agg"]["invalid_runs"]]
    return _invalid_exit(args, "the compared items", invalid)


def run_batch(args: argparse.Namespace) -> int:
    from mpstream.measurement.report.batch import build_batch_report

    try:
        written = build_batch_report(args.run_dir, plots=not args.no_plots)
    except FileNotFoundError as exc:
        print(f"mpstream report: {exc}", file=sys.stderr)
        return 2
    print(f"batch {args.run_dir}: {written.valid_runs} valid runs, {len(written.invalid_runs)} invalid")
    print(f"report: {written.report}\nhtml: {written.html}\ncsv: {written.csv}")
    return _invalid_exit(args, str(args.run_dir), written.invalid_runs)


def run(args: argparse.Namespace) -> int:
    from mpstream.measurement.report.batch import is_batch
    from mpstream.measurement.report.build import build_report
    from mpstream.measurement.report.markdown import console_summary

    if args.compare:
        if args.run_dir is not None:
            print("mpstream report: give either RUN_DIR or --compare, not both", file=sys.stderr)
            return 2
        return run_compare(args)
    if args.run_dir is None:
        print("mpstream report: RUN_DIR (or --compare ... --output DIR) is needed", file=sys.stderr)
        return 2
    if is_batch(args.run_dir):
        if args.baseline:
            print("mpstream report: --baseline is for one run; put batches side by side with --compare",
                  file=sys.stderr)
            return 2
        return run_batch(args)

    try:
        written = build_report(args.run_dir, args.baseline, plots=not args.no_plots, bin_s=args.bin)
    except FileNotFoundError as exc:
        print(f"mpstream report: {exc}", file=sys.stderr)
        return 2
    print(console_summary(json.loads(written.summary.read_text(encoding="utf-8"))))
    print(f"html: {written.html}")
    print(f"report: {written.report}")
    if written.valid:
        return 0
    print(f"mpstream report: INVALID RUN {args.run_dir}: its numbers do not describe the planned scenario:",
          file=sys.stderr)
    for reason in written.reasons:
        print(f"  - {reason}", file=sys.stderr)
    return 0 if args.allow_invalid else EXIT_INVALID
