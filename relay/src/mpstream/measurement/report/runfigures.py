"""The figures of one run per client, the unit that repeated runs are counted in (pure).

From a run's summary (see `build.summarize_run`): for each client node, what its viewer saw
(stalls, startup), how long the handover took after each phase change (incoming traffic),
and which share of what it received still came over the providers that were down in each
phase. A client whose player never started has startup `inf`; a handover that did not happen
within its phase is `inf` too (the worst case, not a missing value); a figure that cannot
be known (no player summary, no recording) is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mpstream.measurement.report.stats import natural_key

NEVER = math.inf


@dataclass(frozen=True)
class Change:
    """A phase change: `index` is the phase it leads to (0-based, as in timeline.json)."""

    index: int
    before: str
    after: str

    @property
    def label(self) -> str:
        return f"{self.before} → {self.after}"


@dataclass
class ClientFigures:
    run: str
    client: str
    valid: bool
    started: bool | None = None  # None: no player summary
    stall_count: int | None = None
    stall_s: float | None = None
    startup_s: float | None = None
    handover_s: dict[int, float | None] = field(default_factory=dict)  # change index -> seconds
    down_share: dict[int, float | None] = field(default_factory=dict)  # phase index (providers down) -> share

    @property
    def stall_free(self) -> bool:
        return bool(self.started) and self.stall_count == 0


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def clients(summary: dict) -> list[str]:
    """Client nodes of the run: by role, and any node with a player summary."""
    by_role = [n for n, info in (summary.get("nodes") or {}).items() if "client" in (info.get("roles") or [])]
    return sorted(set(by_role) | set(summary.get("players") or {}), key=natural_key)


def changes(summary: dict) -> list[Change]:
    phases = summary.get("phases") or []
    return [Change(k, phases[k - 1].get("name", ""), phases[k].get("name", "")) for k in range(1, len(phases))]


def down_phases(summary: dict) -> list[tuple[int, str, list[str]]]:
    """(index, name, providers down) of every phase in which a provider was down."""
    return [(k, p.get("name", ""), list(p.get("down") or [])) for k, p in enumerate(summary.get("phases") or [])
            if p.get("down")]


def _handover(summary: dict, client: str, change: Change) -> float | None:
    at = _number((summary["phases"][change.index] or {}).get("start_s"))
    for entry in summary.get("handover_s") or []:
        if entry.get("node") != client or entry.get("direction") != "rx" or entry.get("to") != change.after:
            continue
        if at is not None and _number(entry.get("at_s")) is not None and abs(entry["at_s"] - at) > 1e-6:
            continue  # another change to a phase of the same name
        value = _number(entry.get("handover_s"))
        return NEVER if value is None else value
    return None


def _down_share(phase: dict, client: str) -> float | None:
    traffic = (phase.get("nodes") or {}).get(client) or {}
    total = sum(_number(t.get("rx_bytes")) or 0.0 for t in traffic.values())
    if total <= 0:
        return None
    down = sum(_number(t.get("rx_bytes")) or 0.0 for p, t in traffic.items() if p in (phase.get("down") or []))
    return round(down / total, 6)


def run_figures(run: str, summary: dict) -> list[ClientFigures]:
    """One entry per client of the run, in natural order."""
    valid = bool(summary.get("valid"))
    result = []
    for client in clients(summary):
        figures = ClientFigures(run, client, valid)
        player = (summary.get("players") or {}).get(client)
        if player is not None:
            startup = _number(player.get("startup_s"))
            figures.started = startup is not None
            figures.startup_s = NEVER if startup is None else startup
            count = _number(player.get("stall_count"))
            figures.stall_count = None if count is None else int(count)
            figures.stall_s = _number(player.get("stall_total_s"))
        for change in changes(summary):
            figures.handover_s[change.index] = _handover(summary, client, change)
        for index, _, _ in down_phases(summary):
            figures.down_share[index] = _down_share(summary["phases"][index], client)
        result.append(figures)
    return result
