"""One figure for the whole run, legible at 20+ nodes: a heatmap of traffic shares.

Rows are node and direction (push: out, server: out and in, client: in), columns are phase x
provider, a cell is the provider's share of that node's traffic in that direction during the
phase. The columns of a provider that is down in a phase are hatched and outlined in red: a
cell there that is not dark is traffic the outage did not stop. Grey: nothing moved, or the
node has no such provider.

`overview_grid` is pure (from the summary); `draw_overview` imports matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIRECTION_WORD = {"tx": "out", "rx": "in"}


@dataclass
class OverviewGrid:
    rows: list[str]  # "server1 · out"
    phases: list[str]  # phase labels, in order
    providers: list[str]  # provider order within every phase
    values: list[list[float | None]]  # rows x (phases x providers): share 0..1, None: nothing to show
    present: list[list[bool]]  # the node has that provider (None there means: nothing moved)
    down: list[bool]  # per column: the provider is down in that phase

    @property
    def columns(self) -> list[tuple[int, str]]:
        return [(phase, provider) for phase in range(len(self.phases)) for provider in self.providers]


def overview_grid(summary: dict, providers: list[str]) -> OverviewGrid:
    phases = summary.get("phases") or []
    rows, values, present = [], [], []
    for node, info in (summary.get("nodes") or {}).items():
        own = set((info.get("interfaces") or {}).values())
        for direction in info.get("directions") or ("tx", "rx"):
            rows.append(f"{node} · {DIRECTION_WORD.get(direction, direction)}")
            row_values, row_present = [], []
            for phase in phases:
                traffic = (phase.get("nodes") or {}).get(node) or {}
                for provider in providers:
                    row_values.append((traffic.get(provider) or {}).get(f"{direction}_share"))
                    row_present.append(provider in own or provider in traffic)
            values.append(row_values)
            present.append(row_present)
    labels = [f"{number}. {phase.get('name', '')}" for number, phase in enumerate(phases, start=1)]
    down = [provider in (phase.get("down") or []) for phase in phases for provider in providers]
    return OverviewGrid(rows, labels, list(providers), values, present, down)


def draw_overview(grid: OverviewGrid, stem: Path, title: str | None = None) -> list[Path]:
    """The heatmap as `stem`.png and .svg; nothing when there is no row or column."""
    if not grid.rows or not grid.columns:
        return []
    import numpy as np
    from matplotlib.patches import Rectangle

    from mpstream.measurement.report.plots import pyplot, save

    plt = pyplot()
    n_rows, n_cols = len(grid.rows), len(grid.columns)
    fig, ax = plt.subplots(figsize=(min(60.0, max(7.0, 3.0 + 0.45 * n_cols)), max(3.0, 2.0 + 0.3 * n_rows)))
    data = np.array([[np.nan if v is None else v for v in row] for row in grid.values], dtype=float)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    for column, is_down in enumerate(grid.down):
        if is_down:
            ax.add_patch(Rectangle((column - 0.5, -0.5), 1, n_rows, fill=False, hatch="//", edgecolor="#d62728",
                                   lw=1.2, alpha=0.8, zorder=3))
    for row in range(n_rows):
        for column in range(n_cols):
            value = grid.values[row][column]
            if value is None:
                text = "–" if grid.present[row][column] else ""
                colour = "black"
            else:
                text = f"{100 * value:.0f}"
                colour = "white" if value < 0.6 else "black"
            if text:
                ax.text(column, row, text, ha="center", va="center", fontsize=7, color=colour, zorder=4)
    per_phase = len(grid.providers)
    for boundary in range(per_phase, n_cols, per_phase):
        ax.axvline(boundary - 0.5, color="white", lw=3, zorder=5)
    ax.set_xticks(range(n_cols), [provider for _, provider in grid.columns], rotation=90 if per_phase > 3 else 0,
                  fontsize=8)
    ax.set_yticks(range(n_rows), grid.rows, fontsize=8)
    ax.set_xticks([c - 0.5 for c in range(1, n_cols)], minor=True)
    ax.set_yticks([r - 0.5 for r in range(1, n_rows)], minor=True)
    ax.grid(which="minor", color="white", lw=0.5)
    ax.tick_params(which="minor", length=0)
    for number, label in enumerate(grid.phases):
        ax.text(number * per_phase + (per_phase - 1) / 2, -0.6, label, ha="center", va="bottom", fontsize=8,
                wrap=True)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    colourbar.set_label("share of the node's traffic in that direction")
    ax.set_xlabel("provider, per phase (hatched red: down in that phase; numbers: share in %)")
    if title:
        ax.set_title(title, fontsize=11, pad=22)
    return save(fig, stem)
