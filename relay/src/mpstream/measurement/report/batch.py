"""A batch of repeated runs (`results/<batch-id>/`) into its aggregate report.

    batch.json     {"format": "mpstream-batch/1", "batch_id": ..., "repeat": N,
                    "runs": ["001", "002", ...], "command": [...], "extra_vars": {...}}
    001/ 002/ ...  each a normal run folder

Each run is judged from its own data, by the same code as `mpstream report RUN_DIR`, so a
batch never trusts a stale summary. Written into the batch folder:

- `batch-summary.json` (`mpstream-batch-summary/1`): `batch_id`, `repeat`, `command`,
  `extra_vars`, `runs`, `run_ids`, `valid_runs`, `invalid_runs` ([{run, reasons}]), `phases`,
  `clients` (client -> `runs`, `samples`, `stall_free_runs`, `stall_free_fraction`, `stall_s`,
  `stall_count`, `startup_s`, `handover_s` [per phase change: `index`, `from`, `to`, `count`,
  `never`, `median`, `p95`, `max`], `down_share` [per phase with a provider down: `index`,
  `name`, `down`, `count`, `median`, `max`]), `overall` (the same over every run x client; a
  run is stall-free when all its clients were), `mptcp_mib` (where the switchers recorded
  counters: node -> per phase `runs` and `changed` counter -> `median`, `max`), `notes`,
  `plots`, `per_run` (per run: `valid`, `reasons`, `stall_free` "n/N", `stall_s`,
  `slowest_handover_s`);
- `runs.csv` (see `csvexport`), `report.md`, `report.html`, `plots/distributions.{png,svg}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mpstream.measurement.report.aggregate import aggregate, all_figures
from mpstream.measurement.report.batchmarkdown import render_batch
from mpstream.measurement.report.csvexport import runs_csv
from mpstream.measurement.report.distplots import Distribution, draw_distributions
from mpstream.measurement.report.htmlpage import write_html
from mpstream.measurement.report.runfigures import ClientFigures
from mpstream.measurement.report.stats import natural_key

BATCH_FILE = "batch.json"
BATCH_FORMAT = "mpstream-batch/1"
SUMMARY_FORMAT = "mpstream-batch-summary/1"


def is_batch(path: str | Path) -> bool:
    return (Path(path) / BATCH_FILE).is_file()


@dataclass
class Batch:
    path: Path
    info: dict = field(default_factory=dict)  # batch.json
    runs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def batch_id(self) -> str:
        return str(self.info.get("batch_id") or self.path.name)


def load_batch(path: str | Path) -> Batch:
    """batch.json and the run folders it names; raises FileNotFoundError when it is not there."""
    root = Path(path)
    try:
        info = json.loads((root / BATCH_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FileNotFoundError(f"no {BATCH_FILE} in {root}: {exc}") from exc
    except ValueError as exc:
        raise FileNotFoundError(f"{root / BATCH_FILE} is not JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise FileNotFoundError(f"{root / BATCH_FILE} is not a JSON object")
    batch = Batch(root, info)
    if info.get("format", BATCH_FORMAT) != BATCH_FORMAT:
        batch.notes.append(f"{BATCH_FILE}: format {info.get('format')!r} is not {BATCH_FORMAT}; read as such")
    listed = info.get("runs")
    if isinstance(listed, list) and listed:
        batch.runs = [str(r) for r in listed]
    else:
        batch.runs = sorted((p.name for p in root.iterdir() if p.is_dir() and (p / "meta.json").is_file()),
                            key=natural_key)
        batch.notes.append(f"{BATCH_FILE} lists no runs: every run folder found is used ({len(batch.runs)})")
    unlisted = sorted((p.name for p in root.iterdir() if p.is_dir() and p.name not in batch.runs
                       and ((p / "meta.json").is_file() or (p / "schedule.json").is_file())), key=natural_key)
    if unlisted:
        batch.notes.append(f"run folders not listed in {BATCH_FILE}, left out: {', '.join(unlisted)}")
    repeat = info.get("repeat")
    if isinstance(repeat, int) and repeat != len(batch.runs):
        batch.notes.append(f"{BATCH_FILE} asked for {repeat} runs and lists {len(batch.runs)}")
    return batch


def summarize_folder(folder: Path) -> tuple[dict, dict]:
    """(summary, meta) of one run folder, judged afresh; a missing folder is an invalid run."""
    from mpstream.measurement.report.build import summarize_run
    from mpstream.measurement.report.runfolder import load_run

    if not folder.is_dir():
        return {"valid": False, "reasons": [f"run: no run folder {folder.name}"]}, {}
    run = load_run(folder)
    summary, _, _ = summarize_run(run)
    return summary, run.meta


def run_rows(runs: list[tuple[str, dict]], figures: list[ClientFigures]) -> list[dict]:
    """One line per run for the report's run table."""
    rows = []
    for run, summary in runs:
        mine = [f for f in figures if f.run == run]
        handovers = [v for f in mine for v in f.handover_s.values() if v is not None]
        rows.append({"run": run, "valid": bool(summary.get("valid")), "reasons": list(summary.get("reasons") or []),
                     "stall_free": f"{sum(1 for f in mine if f.stall_free)}/{len(mine)}",
                     "stall_s": sum(f.stall_s or 0.0 for f in mine) if mine else None,
                     "slowest_handover_s": max(handovers, default=None)})
    return rows


def distributions(figures: list[ClientFigures], agg: dict) -> list[Distribution]:
    """Stall seconds and startup per client, and the handover per phase change (all clients)."""
    valid = [f for f in figures if f.valid]
    clients = list(agg["clients"])
    panels = [
        Distribution("stall seconds per run", "s", {c: [f.stall_s for f in valid if f.client == c
                                                         and f.stall_s is not None] for c in clients}),
        Distribution("startup per run", "s", {c: [f.startup_s for f in valid if f.client == c
                                                  and f.startup_s is not None] for c in clients}),
    ]
    changes = {e["index"]: f"{e['index'] + 1}. {e['from']} → {e['to']}" for e in agg["overall"]["handover_s"]}
    if changes:
        panels.append(Distribution("handover after each phase change (every client)", "s", {
            label: [f.handover_s[k] for f in valid if f.handover_s.get(k) is not None]
            for k, label in changes.items()}))
    return panels


@dataclass
class BatchWritten:
    summary: Path
    report: Path
    html: Path
    csv: Path
    plots: list[Path]
    valid_runs: int
    invalid_runs: list[dict]


def _json_safe(value):
    """inf is no JSON: the figures say `never` instead (see stats.spread)."""
    return None if isinstance(value, float) and math.isinf(value) else value


def build_batch_report(path: str | Path, plots: bool = True) -> BatchWritten:
    batch = load_batch(path)
    runs, metas = [], {}
    for run in batch.runs:
        summary, meta = summarize_folder(batch.path / run)
        runs.append((run, summary))
        metas[run] = meta
    agg = aggregate(runs)
    figures = all_figures(runs)
    reasons = {run: list(summary.get("reasons") or []) for run, summary in runs}
    csv_path = batch.path / "runs.csv"
    csv_path.write_text(runs_csv([(batch.batch_id, f, reasons[f.run]) for f in figures]), encoding="utf-8")
    plot_paths = draw_distributions(distributions(figures, agg), batch.path / "plots" / "distributions",
                                    title=f"mpstream batch {batch.batch_id}: {agg['valid_runs']} valid runs") \
        if plots and agg["valid_runs"] else []
    plot_names = [str(p.relative_to(batch.path)) for p in plot_paths]
    rows = run_rows(runs, figures)
    summary = {"format": SUMMARY_FORMAT, "batch_id": batch.batch_id, "repeat": batch.info.get("repeat"),
               "command": batch.info.get("command"), "extra_vars": batch.info.get("extra_vars"), **agg,
               "notes": batch.notes + agg["notes"], "plots": plot_names,
               "per_run": [{k: _json_safe(v) for k, v in row.items()} for row in rows]}
    summary_path = batch.path / "batch-summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    first_meta = next((metas[r] for r in batch.runs if metas.get(r)), {})
    text = render_batch(batch.info | {"batch_id": batch.batch_id}, agg, rows, plot_names, first_meta, batch.notes)
    report_path = batch.path / "report.md"
    report_path.write_text(text, encoding="utf-8")
    title = f"mpstream batch {batch.batch_id}" + (f" ({len(agg['invalid_runs'])} INVALID RUNS)"
                                                  if agg["invalid_runs"] else "")
    html_path = write_html(text, batch.path / "report.html", title)
    return BatchWritten(summary_path, report_path, html_path, csv_path, plot_paths, agg["valid_runs"],
                        agg["invalid_runs"])
