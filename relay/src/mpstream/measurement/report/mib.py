"""What the kernel's MPTCP counters say happened in each phase (pure).

A switcher may record with each switch line the node's MPTcpExt counters right after the
switch took effect (`"mib": {"MPTcpExtMPJoinSynRx": 3, ...}`). The counters only grow, so
the difference between the snapshot of the switch that began a phase and the one of the
switch that ended it is what the phase did: subflows joined, addresses announced and
removed, fallbacks, retransmissions. Only counters that changed are kept.

`mptcp_mib(timeline)`: target (switcher, or `switcher (netns)`) -> one entry per phase whose
both snapshots are there: `{"phase": index, "name": ..., "changed": {counter: delta}}`.
Empty when no record carries counters: a report without them says nothing about them.
A counter that went down (the namespace was re-created) is kept with its negative delta,
so the reader sees that the phase's figures are not a count.
"""

from __future__ import annotations

import statistics

from mpstream.measurement.report.stats import natural_key

PREFIX = "MPTcpExt"


def _snapshots(entries: list[dict]) -> dict[str | None, dict[int, dict[str, int]]]:
    """netns -> switch index -> counters (the last line wins where a switch was recorded twice)."""
    found: dict[str | None, dict[int, dict[str, int]]] = {}
    for entry in entries:
        counters = entry.get("mib")
        if isinstance(counters, dict) and isinstance(entry.get("phase"), int):
            found.setdefault(entry.get("netns"), {})[entry["phase"]] = counters
    return found


def deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that changed from `before` to `after` (a counter new in `after` counts from 0)."""
    changed = {}
    for name in sorted(set(before) | set(after)):
        delta = int(after.get(name, 0)) - int(before.get(name, 0))
        if delta:
            changed[name] = delta
    return changed


def mptcp_mib(timeline: dict) -> dict[str, list[dict]]:
    phases = timeline.get("phases") or []
    result: dict[str, list[dict]] = {}
    for switcher in sorted(timeline.get("switches") or {}, key=natural_key):
        by_netns = _snapshots(timeline["switches"][switcher] or [])
        for netns in sorted(by_netns, key=lambda n: natural_key(n or "")):
            snapshots = by_netns[netns]
            rows = []
            for index, phase in enumerate(phases):
                if index in snapshots and index + 1 in snapshots:
                    rows.append({"phase": index, "name": phase.get("name", f"phase {index + 1}"),
                                 "changed": deltas(snapshots[index], snapshots[index + 1])})
            if rows:
                result[switcher if netns is None else f"{switcher} ({netns})"] = rows
    return result


def short_name(counter: str) -> str:
    """`MPTcpExtMPJoinSynRx` -> `MPJoinSynRx` (every counter here has the prefix)."""
    return counter[len(PREFIX):] if counter.startswith(PREFIX) and len(counter) > len(PREFIX) else counter


def over_runs(per_run: list[dict[str, list[dict]]]) -> dict[str, list[dict]]:
    """Per node and phase over several runs' `mptcp_mib`: each counter that changed in any of them,
    with the median and max of its change (a run that recorded the phase without that counter
    changing counts 0). `runs`: how many runs recorded that node's phase."""
    collected: dict[str, dict[int, dict]] = {}
    for counters in per_run:
        for node, phases in counters.items():
            for entry in phases:
                slot = collected.setdefault(node, {}).setdefault(entry["phase"], {"name": entry.get("name"),
                                                                                  "runs": []})
                slot["runs"].append(entry.get("changed") or {})
    result = {}
    for node in sorted(collected, key=natural_key):
        rows = []
        for index in sorted(collected[node]):
            slot = collected[node][index]
            names = sorted({name for changed in slot["runs"] for name in changed})
            figures = {}
            for name in names:
                values = sorted(changed.get(name, 0) for changed in slot["runs"])
                figures[name] = {"median": statistics.median(values), "max": values[-1]}
            rows.append({"phase": index, "name": slot["name"], "runs": len(slot["runs"]), "changed": figures})
        result[node] = rows
    return result
