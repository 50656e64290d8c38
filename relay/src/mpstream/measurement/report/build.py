"""Turning a run folder into `timeline.json`, `summary.json`, `plots/`, `report.md` and `report.html`
(the report command's work)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mpstream.measurement.report import analysis, clocks, delivered, markdown
from mpstream.measurement.report.figures import Job, draw_all
from mpstream.measurement.report.htmlpage import write_html
from mpstream.measurement.report.mib import mptcp_mib
from mpstream.measurement.report.players import players_overall
from mpstream.measurement.report.runfolder import Run, load_run
from mpstream.measurement.report.timeline import FORMAT, ScheduleError, build_timeline, legacy_timeline
from mpstream.measurement.report.validity import verdict

log = logging.getLogger(__name__)

NO_PHASES_REASON = "run: no schedule.json and no timeline.json, so the phases are unknown"
# a stacked figure of every node's rates stays readable up to this many panels; beyond, the
# overview heatmap and the per-node figures tell the story
MAX_STACKED_PANELS = 8


@dataclass
class Written:
    summary: Path
    report: Path
    plots: list[Path]
    timeline: Path | None = None  # written only where schedule.json was there to build it from
    valid: bool = True
    reasons: list[str] = field(default_factory=list)
    html: Path | None = None


def run_timeline(run: Run) -> tuple[dict, bool]:
    """The timeline to slice the run by, and whether it was built here (from schedule.json).

    Without a schedule: a format-2 timeline as found, or an old planned-only one (never valid),
    or nothing (one phase over the data, not valid either).
    """
    reasons = []
    if run.schedule is not None:
        try:
            return build_timeline(run.schedule, run.records), True
        except ScheduleError as exc:
            reasons.append(f"run: {exc}")
    if run.timeline.get("format") == FORMAT:
        timeline = dict(run.timeline)
    elif run.timeline.get("phases"):
        timeline = legacy_timeline(run.timeline)
    else:
        timeline = {"valid": False, "reasons": [NO_PHASES_REASON]}
    timeline["reasons"] = list(timeline.get("reasons") or []) + reasons
    timeline["valid"] = not timeline["reasons"]
    return timeline, False


def summarize_run(run: Run) -> tuple[dict, dict, bool]:
    """(summary, timeline, timeline built here) with the verdict in both."""
    timeline, built = run_timeline(run)
    reasons = verdict(run.meta, run.nodes, timeline)
    timeline = {**timeline, "valid": not reasons, "reasons": reasons}
    summary = analysis.summarize(run.meta, timeline, run.nodes)
    delivered.annotate(summary, timeline, run.meta)
    inventory_nodes = (run.meta.get("inventory") or {}).get("nodes") or {}
    clients = [n for n, info in inventory_nodes.items() if "client" in ((info or {}).get("roles") or [])]
    summary.update({
        "valid": not reasons,
        "reasons": reasons,
        "timeline_format": timeline.get("format", "mpstream-timeline/1" if timeline.get("phases") else None),
        "tolerance_s": timeline.get("tolerance_s"),
        "interrupted_at": timeline.get("interrupted_at"),
        "switch_lag_s": timeline.get("lag_s"),
        "players_overall": players_overall(summary["players"], clients),
    })
    counters = mptcp_mib(timeline)
    if counters:
        summary["mptcp_mib"] = counters
    node_clocks = clocks.node_clocks(run.meta)
    if node_clocks:
        summary["clocks"] = node_clocks
    return summary, timeline, built


def _stalls(player: dict | None, t0: float) -> list[tuple[float, float]]:
    """Player stalls on the run's clock (they are recorded relative to the player's start)."""
    if not player or player.get("started_at") is None:
        return []
    started = float(player["started_at"]) - t0
    return [(started + float(s.get("at_s", 0.0)), float(s.get("duration_s", 0.0))) for s in player.get("stalls") or []]


def draw_plots(run: Run, timeline: dict, summary: dict, out_dir: Path, bin_s: float = 0.5) -> list[Path]:
    from mpstream.measurement.report.overview import draw_overview, overview_grid
    from mpstream.measurement.report.plots import Panel, draw, provider_colours

    t0, phases = analysis.run_clock(timeline, run.nodes, run.meta)
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
    plots_dir = out_dir / "plots"
    title = f"mpstream run {run.run_id}" + ("" if summary.get("valid") else " (INVALID RUN)")
    jobs: list[Job] = [(draw_overview, (overview_grid(summary, all_providers), plots_dir / "overview"),
                        {"title": f"{title}: share of each provider per phase"})]
    stacked = [panel for panels in panels_by_node.values() for panel in panels if panel.series]
    if stacked and len(stacked) <= MAX_STACKED_PANELS:
        jobs.append((draw, (stacked, phases, colours, plots_dir / "rates"), {"title": title, "bin_s": bin_s}))
    for node, panels in panels_by_node.items():
        panels = [p for p in panels if p.series]
        if panels:
            jobs.append((draw, (panels, phases, colours, plots_dir / f"rates-{node}"), {"bin_s": bin_s}))
    return draw_all(jobs)


def build_report(run_dir: str | Path, baseline_dir: str | Path | None = None, plots: bool = True,
                 bin_s: float = 0.5) -> Written:
    run = load_run(run_dir)
    summary, timeline, built = summarize_run(run)
    out_dir = run.path
    timeline_path = None
    if built:
        timeline_path = out_dir / "timeline.json"
        timeline_path.write_text(json.dumps(timeline, indent=2) + "\n", encoding="utf-8")
    baseline_summary = baseline_name = None
    if baseline_dir is not None:
        baseline = load_run(baseline_dir)
        baseline_summary, _, _ = summarize_run(baseline)
        baseline_name = baseline.run_id
        summary["baseline"] = {"run_id": baseline_name, "path": str(baseline_dir),
                               "valid": baseline_summary["valid"], "reasons": baseline_summary["reasons"]}
        if not baseline_summary["valid"]:
            run.notes.append(f"the baseline run {baseline_name} is itself invalid "
                             f"({len(baseline_summary['reasons'])} reasons; first: {baseline_summary['reasons'][0]})")
    summary["notes"] = run.notes + list(timeline.get("notes") or [])
    plot_paths = draw_plots(run, timeline, summary, out_dir, bin_s) if plots else []
    summary["plots"] = [str(p.relative_to(out_dir)) for p in plot_paths]
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    report_path = out_dir / "report.md"
    text = markdown.render(summary, run.meta, summary["plots"], summary["notes"], baseline_summary, baseline_name)
    report_path.write_text(text, encoding="utf-8")
    title = f"mpstream run {run.run_id}" + ("" if summary["valid"] else " (INVALID RUN)")
    html_path = write_html(text, out_dir / "report.html", title)
    return Written(summary_path, report_path, plot_paths, timeline_path, summary["valid"], summary["reasons"],
                   html_path)
