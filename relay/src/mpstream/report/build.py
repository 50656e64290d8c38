"""Turning a run folder into `summary.json`, `plots/` and `report.md` (the report command's work)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mpstream.report import analysis, markdown
from mpstream.report.runfolder import Run, load_run

log = logging.getLogger(__name__)


@dataclass
class Written:
    summary: Path
    report: Path
    plots: list[Path]


def _stalls(player: dict | None, t0: float) -> list[tuple[float, float]]:
    """Player stalls on the run's clock (they are recorded relative to the player's start)."""
    if not player or player.get("started_at") is None:
        return []
    started = float(player["started_at"]) - t0
    return [(started + float(s.get("at_s", 0.0)), float(s.get("duration_s", 0.0))) for s in player.get("stalls") or []]


def draw_plots(run: Run, summary: dict, out_dir: Path, bin_s: float = 0.5) -> list[Path]:
    from mpstream.report.plots import Panel, draw, provider_colours

    t0, phases = analysis.run_clock(run.timeline, run.nodes)
    all_providers = analysis.provider_order(run.meta, {p for n in summary["nodes"].values()
                                                       for p in n["interfaces"].values()})
    colours = provider_colours(all_providers)
    panels_by_node: dict[str, list[Panel]] = {}
    for node, info in summary["nodes"].items():
        if not run.nodes[node].rows:
            continue
        providers = info["interfaces"]
        series = analysis.provider_series(run.nodes[node].rows, t0, providers)
        ordered = {p: series[p] for p in analysis.provider_order(run.meta, series)}
        labels = {}
        for nic, provider in providers.items():
            labels[provider] = f"{nic} ({provider})" if provider not in labels else labels[provider] + f"+{nic}"
        stalls = _stalls(run.nodes[node].player, t0)
        panels_by_node[node] = [Panel(node, d, ordered, labels, stalls) for d in info["directions"]]
    written: list[Path] = []
    plots_dir = out_dir / "plots"
    overview = [panel for panels in panels_by_node.values() for panel in panels if panel.series]
    if overview:
        written += draw(overview, phases, colours, plots_dir / "rates", title=f"mpstream run {run.run_id}",
                        bin_s=bin_s)
    for node, panels in panels_by_node.items():
        panels = [p for p in panels if p.series]
        if panels:
            written += draw(panels, phases, colours, plots_dir / f"rates-{node}", bin_s=bin_s)
    return written


def build_report(run_dir: str | Path, baseline_dir: str | Path | None = None, plots: bool = True,
                 bin_s: float = 0.5) -> Written:
    run = load_run(run_dir)
    summary = analysis.summarize(run.meta, run.timeline, run.nodes)
    baseline_summary = baseline_name = None
    if baseline_dir is not None:
        baseline = load_run(baseline_dir)
        baseline_summary = analysis.summarize(baseline.meta, baseline.timeline, baseline.nodes)
        baseline_name = baseline.run_id
        summary["baseline"] = {"run_id": baseline_name, "path": str(baseline_dir)}
    summary["notes"] = run.notes
    out_dir = run.path
    plot_paths = draw_plots(run, summary, out_dir, bin_s) if plots else []
    summary["plots"] = [str(p.relative_to(out_dir)) for p in plot_paths]
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    report_path = out_dir / "report.md"
    report_path.write_text(markdown.render(summary, run.meta, summary["plots"], run.notes,
                                           baseline_summary, baseline_name), encoding="utf-8")
    return Written(summary_path, report_path, plot_paths)
