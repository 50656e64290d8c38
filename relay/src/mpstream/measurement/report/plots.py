"""Figures in the style of the paper's Fig. 3: per-interface data rate over time, phases shaded.

Phases are shaded where they really ran; a dotted red line marks a planned switch instant
that the real one missed.

matplotlib is imported here only (Agg backend: no display needed), so that nodes which
only record never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mpstream.measurement.report.analysis import Phase, ProviderSeries, binned_rates

DIRECTION_LABEL = {"tx": "outgoing", "rx": "incoming"}
FORMATS = ("png", "svg")


def save(fig, stem: Path, dpi: int = 110) -> list[Path]:
    """Write the figure as STEM.png and STEM.svg, close it, and return the paths."""
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=dpi)
        written.append(path)
    pyplot().close(fig)
    return written
LATE_MARK_S = 0.05  # a phase edge this far from its planned instant gets a mark at the planned one


@dataclass
class Panel:
    """One axes: a node's per-provider rate in one direction."""

    node: str
    direction: str
    series: dict[str, ProviderSeries]  # provider -> intervals, in legend order
    labels: dict[str, str]  # provider -> legend text
    stalls: list[tuple[float, float]]  # (start_s, duration_s) of player stalls, relative to t0


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _shade_phases(ax, phases: list[Phase], label: bool) -> None:
    first_late = next((n for n, p in enumerate(phases, start=1) if p.planned_start_s is not None
                       and abs(p.planned_start_s - p.start_s) > LATE_MARK_S), None)
    for number, phase in enumerate(phases, start=1):
        colour = "#f4cccc" if phase.down or phase.down_nodes else "#e8f0e8"
        ax.axvspan(phase.start_s, phase.end_s, color=colour, alpha=0.6, lw=0, zorder=0)
        ax.axvline(phase.start_s, color="grey", lw=0.6, ls="--", zorder=1)
        if phase.planned_start_s is not None and abs(phase.planned_start_s - phase.start_s) > LATE_MARK_S:
            # the switch landed away from its planned instant: show where it was meant to be
            ax.axvline(phase.planned_start_s, color="#d62728", lw=0.9, ls=":", zorder=2,
                       label="planned switch" if number == first_late else None)
        if label:
            text = f"{number}: {phase.name}"
            ax.text((phase.start_s + phase.end_s) / 2, 1.01, text, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)


def _draw_panel(ax, panel: Panel, phases: list[Phase], label_phases: bool, colours: dict[str, str],
                bin_s: float) -> None:
    _shade_phases(ax, phases, label_phases)
    for provider, series in panel.series.items():
        edges, rates = binned_rates(series.intervals, panel.direction, bin_s)
        if not rates:
            continue
        ax.stairs([r / 1e6 for r in rates], edges, lw=1.0, color=colours.get(provider),
                  label=panel.labels.get(provider, provider), zorder=3, baseline=None)
    for number, (start, duration) in enumerate(panel.stalls):
        ax.axvspan(start, start + duration, ymin=0, ymax=0.04, color="red", lw=0, zorder=4,
                   label="player stall" if number == 0 else None)
    ax.set_ylabel("Mbit/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{panel.node}: {DIRECTION_LABEL[panel.direction]} data rate per interface", fontsize=10,
                 pad=14 if label_phases else 6)
    ax.grid(True, lw=0.3, alpha=0.6)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)


def provider_colours(providers: list[str]) -> dict[str, str]:
    return {p: f"C{i}" for i, p in enumerate(providers)}


def draw(panels: list[Panel], phases: list[Phase], colours: dict[str, str], stem: Path,
         title: str | None = None, bin_s: float = 0.5) -> list[Path]:
    """One figure with `panels` stacked on a shared time axis; written as `stem`.png and .svg."""
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels) + 0.6), sharex=True, squeeze=False)
    for index, (ax, panel) in enumerate(zip(axes[:, 0], panels, strict=True)):
        _draw_panel(ax, panel, phases, label_phases=index == 0, colours=colours, bin_s=bin_s)
    axes[-1, 0].set_xlabel("time since start of the run [s]"
                           + (f" (rates over {bin_s:g} s bins)" if bin_s > 0 else ""))
    if phases:
        axes[-1, 0].set_xlim(min(p.start_s for p in phases), max(p.end_s for p in phases))
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, stem, dpi=120)
