"""Did the players and recorders see the whole scenario, and did the outages hold? (pure;
reasons one line each)

A run's numbers describe the planned scenario only if every client's player played through
the whole schedule and every node's recorder sampled it. The span to cover is the timeline's
(`timeline.schedule_span`): from t0 to the later of the planned and the actual end.

- player: `started_at` <= start + tolerance and `ended_at` >= end - tolerance (the switch
  tolerance: the phase edges themselves are known no better);
- recorder: the first sample at most one sample interval after the start, the last at most one
  before the end, and no hole inside longer than `MIN_GAP_S`, `GAP_INTERVALS` intervals or
  twice the switch tolerance, whichever is longest (a missed 100 ms tick is harmless, seconds
  without samples are not; the sample after a hole still counts its bytes, spread over the
  hole, so a hole blurs the phase edges as a switch that late does, on either side);
- outage: no provider a node's switcher held down delivered to it (`delivered`);
- clock: no node's clock certainly further off the controller's than the tolerance (`clocks`).
"""

from __future__ import annotations

import statistics

from mpstream.measurement.report import clocks, delivered
from mpstream.measurement.report.analysis import NodeData
from mpstream.measurement.report.stats import natural_key, seconds, sorted_unique
from mpstream.measurement.report.timeline import DEFAULT_TOLERANCE_S, schedule_span

MIN_GAP_S = 1.0
GAP_INTERVALS = 5
MEASURED_ROLES = ("push", "server", "client")


def _rel(t: float, t0: float) -> str:
    return f"{'+' if t >= t0 else '-'}{seconds(abs(t - t0))} s"


def _span_text(start: float, end: float, t0: float) -> str:
    return f"the whole schedule {seconds(start - t0)}-{seconds(end - t0)} s"


def _roles(meta: dict) -> dict[str, list[str]]:
    nodes = (meta.get("inventory") or {}).get("nodes") or {}
    return {node: list((info or {}).get("roles") or []) for node, info in nodes.items()}


def player_reasons(meta: dict, nodes: dict[str, NodeData], span: tuple[float, float], t0: float,
                   tolerance: float) -> list[str]:
    start, end = span
    reasons = []
    expected = [n for n, roles in _roles(meta).items() if "client" in roles]
    with_player = [n for n, d in nodes.items() if d.player is not None]
    for node in sorted(set(expected) | set(with_player), key=natural_key):
        player = nodes[node].player if node in nodes else None
        if player is None:
            reasons.append(f"{node}: no player.json, so nothing says what its viewer saw")
            continue
        began, ended = player.get("started_at"), player.get("ended_at")
        if not isinstance(began, int | float) or not isinstance(ended, int | float):
            reasons.append(f"{node}: player.json lacks started_at/ended_at, so it cannot be placed on the schedule")
            continue
        if began > start + tolerance or ended < end - tolerance:
            reasons.append(f"{node}: the player played from {_rel(began, t0)} to {_rel(ended, t0)}, "
                           f"not {_span_text(start, end, t0)}")
    return reasons


def sample_interval(timestamps: list[float]) -> float:
    """The recorder's usual step: the median distance between its sample times."""
    steps = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    return statistics.median(steps) if steps else 0.0


def rates_reasons(meta: dict, nodes: dict[str, NodeData], span: tuple[float, float], t0: float,
                  tolerance: float = DEFAULT_TOLERANCE_S) -> list[str]:
    start, end = span
    reasons = []
    expected = [n for n, roles in _roles(meta).items() if set(roles) & set(MEASURED_ROLES)]
    for node in sorted(set(expected) | set(nodes), key=natural_key):
        rows = nodes[node].rows if node in nodes else []
        if not rows:
            reasons.append(f"{node}: no usable rates.csv, so its traffic was not recorded")
            continue
        times = sorted({r.timestamp for r in rows})
        step = sample_interval(times)
        slack = step + 1e-6
        if times[0] > start + slack or times[-1] < end - slack:
            reasons.append(f"{node}: rates.csv covers {_rel(times[0], t0)} to {_rel(times[-1], t0)}, "
                           f"not {_span_text(start, end, t0)}")
        limit = max(MIN_GAP_S, GAP_INTERVALS * step, 2 * tolerance)
        for a, b in zip(times, times[1:], strict=False):
            if b - a > limit and b > start and a < end:
                reasons.append(f"{node}: rates.csv has no sample from {_rel(a, t0)} to {_rel(b, t0)} "
                               f"({b - a:.1f} s) inside the schedule")
    return reasons


def verdict(meta: dict, nodes: dict[str, NodeData], timeline: dict) -> list[str]:
    """Every reason the run is invalid: the timeline's own and the coverage ones, sorted, unique."""
    reasons = list(timeline.get("reasons") or [])
    span = schedule_span(timeline)
    tolerance = float(timeline.get("tolerance_s") or DEFAULT_TOLERANCE_S)
    if span is not None:
        t0 = float(timeline["t0"])
        reasons += player_reasons(meta, nodes, span, t0, tolerance)
        reasons += rates_reasons(meta, nodes, span, t0, tolerance)
    reasons += clocks.reasons(meta, tolerance)
    reasons += delivered.reasons(timeline, meta)
    return sorted_unique(reasons)
