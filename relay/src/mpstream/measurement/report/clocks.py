"""How far each node's clock was from the controller's at the start of a run (pure).

The controller fixes the schedule by its clock; each node's switcher keeps it, and each player
and recorder stamps what it saw, by the node's own clock. A node whose clock is off shifts its
switches and its figures by as much, and its own records cannot show it. The failover role
therefore reads every node's clock (`mpstream.measurement.clock`) between two readings of the
controller's, `controller_asked` and `controller_answered` (meta.json, nodes.NODE.clock): the
node read its clock after the first and before the second, so its offset lies within
[time - answered, time - asked]. An emulated node shares the controller's clock.

Runs measure it in echo exchanges (the `node_clock` action, `date` on the node, shortest of
a few round trips) and allow for it: where the offset exceeds its uncertainty the run hands
the node its switches on its own clock (`correction_s`), and the report places the node's
records on the controller's clock by the same correction (`runfolder`), and its players'
latencies by the difference to the publisher's. A node whose clock is, even at the bound
nearest zero, more than the switch tolerance off after that correction makes the run invalid.
"""

from __future__ import annotations

from mpstream.measurement.report.stats import natural_key


def offset_bounds(node_time: float, asked: float, answered: float) -> tuple[float, float]:
    """(offset, uncertainty): the middle and half width of [node_time - answered, node_time - asked]."""
    low, high = node_time - answered, node_time - asked
    return (low + high) / 2, (high - low) / 2


def node_clocks(meta: dict) -> dict[str, dict]:
    """node -> {"offset_s", "uncertainty_s", "shared", "synchronized", "esterror_s", "maxerror_s"},
    for the nodes whose clock was read (none in runs from before clocks were read)."""
    clocks = {}
    for node, description in sorted((meta.get("nodes") or {}).items(), key=lambda item: natural_key(item[0])):
        clock = (description or {}).get("clock") or {}
        try:
            offset, uncertainty = offset_bounds(float(clock["time"]), float(clock["controller_asked"]),
                                                float(clock["controller_answered"]))
        except (KeyError, TypeError, ValueError):
            continue
        shared = bool(clock.get("shared_with_controller"))
        clocks[node] = {"offset_s": round(offset, 6), "uncertainty_s": round(uncertainty, 6),
                        "correction_s": 0.0 if shared else _number(clock.get("correction_s")),
                        "shared": shared,
                        **{k: clock.get(k) for k in ("synchronized", "esterror_s", "maxerror_s")}}
    return clocks


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def corrections(meta: dict) -> dict[str, float]:
    """node -> how far the run took its clock to be ahead of the controller's (non-zero only)."""
    return {node: clock["correction_s"] for node, clock in node_clocks(meta).items() if clock["correction_s"]}


def publisher_correction(meta: dict) -> float | None:
    """The correction of the stream's publisher (the one push node); None where there are
    several push nodes whose corrections differ (their players' latencies cannot be placed)."""
    nodes = ((meta.get("inventory") or {}).get("nodes") or {})
    pushers = [node for node, info in nodes.items() if "push" in ((info or {}).get("roles") or [])]
    found = {corrections(meta).get(node, 0.0) for node in pushers}
    return found.pop() if len(found) == 1 else (0.0 if not found else None)


def reasons(meta: dict, tolerance_s: float) -> list[str]:
    """A reason per node whose clock was certainly more than `tolerance_s` off the controller's."""
    found = []
    for node, clock in node_clocks(meta).items():
        least = abs(clock["offset_s"] - clock["correction_s"]) - clock["uncertainty_s"]
        if not clock["shared"] and least > tolerance_s:
            corrected = f" ({clock['correction_s']:+.3f} s allowed for)" if clock["correction_s"] else ""
            found.append(f"{node}: its clock was {clock['offset_s']:+.3f} s (± {clock['uncertainty_s']:.3f} s) "
                         f"off the controller's{corrected}, more than the {tolerance_s * 1000:.0f} ms tolerance: "
                         f"its switches and figures cannot be placed on the schedule (synchronise it with NTP)")
    return found
