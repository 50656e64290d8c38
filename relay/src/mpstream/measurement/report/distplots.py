"""Box and strip plots of figures over repeated runs: one panel per figure, one box per group.

A group is a client of a batch, or a compared run or batch. Every value is drawn as a dot
over its box (few runs make a box alone misleading); a value that is `inf` (never: a
handover that did not happen within its phase, a player that never started) cannot be
placed on the axis, so it is counted in the group's label instead.
"""

from __future__ import annotations

import math
import random
import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Distribution:
    title: str
    unit: str
    groups: dict[str, list[float]]  # label -> values, in the order to draw


def _label(name: str, values: list[float]) -> str:
    never = sum(1 for v in values if math.isinf(v))
    return textwrap.fill(name, 24) + f"\n(n={len(values)}" + (f", {never} never)" if never else ")")


def draw_distributions(panels: list[Distribution], stem: Path, title: str | None = None) -> list[Path]:
    """The panels stacked as `stem`.png and .svg; nothing when no panel has a value."""
    panels = [p for p in panels if any(p.groups.values())]
    if not panels:
        return []
    from mpstream.measurement.report.plots import pyplot, save

    plt = pyplot()
    width = min(40.0, max(7.0, 2.0 + 1.1 * max(len(p.groups) for p in panels)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 2.9 * len(panels) + 0.6), squeeze=False)
    jitter = random.Random(19)  # the same picture from the same data
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        names = list(panel.groups)
        finite = [[v for v in panel.groups[n] if not math.isinf(v)] for n in names]
        positions = list(range(1, len(names) + 1))
        drawn = [(pos, vals) for pos, vals in zip(positions, finite, strict=True) if vals]
        if drawn:
            ax.boxplot([vals for _, vals in drawn], positions=[pos for pos, _ in drawn], widths=0.5,
                       showfliers=False, medianprops={"color": "#d62728", "lw": 1.5})
        for pos, vals in zip(positions, finite, strict=True):
            xs = [pos + jitter.uniform(-0.15, 0.15) for _ in vals]
            ax.scatter(xs, vals, s=14, color="C0", alpha=0.7, zorder=3, lw=0)
        ax.set_xticks(positions, [_label(n, panel.groups[n]) for n in names], fontsize=8)
        ax.set_xlim(0.4, len(names) + 0.6)
        ax.set_ylabel(panel.unit)
        ax.set_ylim(bottom=0)
        ax.set_title(panel.title, fontsize=10)
        ax.grid(True, axis="y", lw=0.3, alpha=0.6)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, stem)
