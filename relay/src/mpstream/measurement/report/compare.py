"""Several runs or batches side by side (`mpstream report --compare A B ... --output DIR`).

Each item is a run folder (one run) or a batch folder (its runs), labelled `NAME=PATH` or by
its folder name. Per item, over its valid runs and clients: runs, stall-free runs, stall
seconds, startup, the handover after each phase change and the failed provider's share;
distributions drawn as one box per item (the handover one panel per phase change, pooled
when there are more than MAX_CHANGE_PANELS). Written into DIR: `compare.json`, `runs.csv` (the
`batch` column holds the item's label), `report.md`, `report.html`,
`plots/distributions.{png,svg}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mpstream.measurement.report.aggregate import aggregate, all_figures
from mpstream.measurement.report.batch import is_batch, load_batch, summarize_folder
from mpstream.measurement.report.batchmarkdown import render_compare
from mpstream.measurement.report.csvexport import runs_csv
from mpstream.measurement.report.distplots import Distribution, draw_distributions
from mpstream.measurement.report.htmlpage import write_html
from mpstream.measurement.report.stats import spread

FORMAT = "mpstream-compare/1"
# up to this many phase changes get a handover panel each; beyond, one panel pools them
MAX_CHANGE_PANELS = 4


def parse_item(text: str) -> tuple[str, Path]:
    """`NAME=PATH` or `PATH` (labelled by its folder name); a path that exists as given wins."""
    if "=" in text and not Path(text).exists():
        name, _, path = text.partition("=")
        if name and path:
            return name, Path(path)
    path = Path(text)
    return path.resolve().name or text, path


@dataclass
class Item:
    label: str
    path: Path
    runs: list[tuple[str, dict]]
    notes: list[str]


def load_item(label: str, path: Path) -> Item:
    """The runs of a batch folder, or the one run of a run folder (FileNotFoundError: neither)."""
    if is_batch(path):
        batch = load_batch(path)
        return Item(label, path, [(run, summarize_folder(batch.path / run)[0]) for run in batch.runs], batch.notes)
    if not path.is_dir():
        raise FileNotFoundError(f"no run or batch folder at {path}")
    summary, meta = summarize_folder(path)
    return Item(label, path, [(str(meta.get("run_id") or path.name), summary)], [])


@dataclass
class CompareWritten:
    summary: Path
    report: Path
    html: Path
    csv: Path
    plots: list[Path]
    invalid_runs: int


def build_compare_report(specs: list[str], output: str | Path, plots: bool = True) -> CompareWritten:
    out_dir = Path(output)
    labels: list[str] = []
    items = []
    for spec in specs:
        label, path = parse_item(spec)
        if label in labels:  # two folders of one name: keep them apart
            label = f"{label} ({len(labels) + 1})"
        labels.append(label)
        items.append(load_item(label, path))
    out_dir.mkdir(parents=True, exist_ok=True)  # only once every item was found
    rendered, csv_rows, panels = [], [], {"stall": {}, "startup": {}, "handover": {}}
    per_change: dict[str, dict[str, list[float]]] = {}  # change -> item -> handovers
    for item in items:
        agg = aggregate(item.runs)
        figures = all_figures(item.runs)
        reasons = {run: list(s.get("reasons") or []) for run, s in item.runs}
        csv_rows += [(item.label, f, reasons[f.run]) for f in figures]
        valid = [f for f in figures if f.valid]
        handovers = [v for f in valid for v in f.handover_s.values() if v is not None]
        rendered.append({"label": item.label, "path": str(item.path), "agg": agg, "notes": item.notes,
                         "handover_all": spread(handovers)})
        panels["stall"][item.label] = [f.stall_s for f in valid if f.stall_s is not None]
        panels["startup"][item.label] = [f.startup_s for f in valid if f.startup_s is not None]
        panels["handover"][item.label] = handovers
        for entry in agg["overall"]["handover_s"]:
            label = f"{entry['index'] + 1}. {entry['from']} → {entry['to']}"
            per_change.setdefault(label, {})[item.label] = [f.handover_s[entry["index"]] for f in valid
                                                            if f.handover_s.get(entry["index"]) is not None]
    csv_path = out_dir / "runs.csv"
    csv_path.write_text(runs_csv(csv_rows), encoding="utf-8")
    handover_panels = [Distribution(f"handover after the change to phase {label}", "s", groups)
                       for label, groups in per_change.items()] if len(per_change) <= MAX_CHANGE_PANELS else [
        Distribution("handover after every phase change, per run and client", "s", panels["handover"])]
    plot_paths = draw_distributions([
        Distribution("stall seconds per run and client", "s", panels["stall"]),
        Distribution("startup per run and client", "s", panels["startup"]),
        *handover_panels,
    ], out_dir / "plots" / "distributions", title="mpstream comparison") if plots else []
    plot_names = [str(p.relative_to(out_dir)) for p in plot_paths]
    summary_path = out_dir / "compare.json"
    summary_path.write_text(json.dumps({"format": FORMAT, "items": rendered, "plots": plot_names}, indent=2) + "\n",
                            encoding="utf-8")
    text = render_compare(rendered, plot_names)
    report_path = out_dir / "report.md"
    report_path.write_text(text, encoding="utf-8")
    invalid = sum(len(r["agg"]["invalid_runs"]) for r in rendered)
    title = "mpstream comparison: " + ", ".join(labels) + (f" ({invalid} INVALID RUNS)" if invalid else "")
    html_path = write_html(text, out_dir / "report.html", title)
    return CompareWritten(summary_path, report_path, html_path, csv_path, plot_paths, invalid)
