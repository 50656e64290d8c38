"""What each node's provider NICs delivered in each phase, from its switcher's counters (pure).

A NIC's own counters (rates.csv) also count what arrives only to be dropped by the outage: a
peer's subflow from a working provider keeps retransmitting to the node's address on the
failed one. The node's switcher therefore counts, behind the outage's drop, what each NIC
really let in, and reads the counters right after every switch took effect and shortly
before it (mpstream.paths.outage.delivered). What a NIC delivered in phase k is the difference
between the reading after switch k and the one before switch k + 1: the drop of a down phase
is in force all that time, and what comes in around a switch (a returning provider's first
burst, before the reading after it) belongs to no phase. Records without the reading before
a switch (older runs) end a phase at the reading after the next switch.

A NIC the switcher held down in a phase must have delivered (almost) nothing in it: a down
provider that delivered more than DOWN_SHARE_LIMIT of the node's bytes in that phase (and at
least MIN_LEAK_BYTES) means the outage did not hold, and the run is invalid.
"""

from __future__ import annotations

from mpstream.measurement.report.analysis import interface_providers
from mpstream.measurement.report.stats import natural_key

DOWN_SHARE_LIMIT = 0.03
# A node cut off from every provider has no traffic to compare with: a few retransmissions
# that come in between the restoring switch and its reading are not a leak.
MIN_LEAK_BYTES = 10_000


def _readings(entries: list[dict]) -> dict[int, tuple[dict[str, int], dict[str, int], tuple[str, ...]]]:
    """Switch index -> (bytes per NIC after it, bytes per NIC before it, the NICs it took down)
    from a switcher's own namespace."""
    found = {}
    for entry in entries:
        if entry.get("netns") is None and entry.get("ok") and isinstance(entry.get("delivered"), dict):
            after, before = entry["delivered"], entry.get("delivered_before")
            found[int(entry["phase"])] = (after, before if isinstance(before, dict) else after,
                                          tuple(entry.get("nics") or ()))
    return found


def node_phases(timeline: dict, meta: dict) -> dict[str, dict[int, dict]]:
    """node -> phase index -> {"providers": {provider: {"bytes", "share"}}, "down": [provider, ...],
    "total": bytes}, for the phases whose both readings exist."""
    result: dict[str, dict[int, dict]] = {}
    phase_count = len(timeline.get("phases") or [])
    for node, entries in (timeline.get("switches") or {}).items():
        readings = _readings(entries or [])
        for index in range(phase_count):
            if index not in readings or index + 1 not in readings:
                continue
            (start, _, down_nics), (_, end, _) = readings[index], readings[index + 1]
            nics = sorted(set(start) & set(end), key=natural_key)
            providers = interface_providers(meta, node, nics)
            moved: dict[str, int] = {}
            for nic in nics:
                provider = providers.get(nic, nic)
                moved[provider] = moved.get(provider, 0) + max(0, end[nic] - start[nic])
            total = sum(moved.values())
            result.setdefault(node, {})[index] = {
                "providers": {p: {"bytes": b, "share": round(b / total, 6) if total else None}
                              for p, b in moved.items()},
                "down": sorted({providers.get(nic, nic) for nic in down_nics}),
                "total": total,
            }
    return result


def reasons(timeline: dict, meta: dict) -> list[str]:
    """One line per node and phase where a provider it held down still delivered."""
    lines = []
    names = [str(p.get("name") or f"phase {i + 1}") for i, p in enumerate(timeline.get("phases") or [])]
    for node, phases in sorted(node_phases(timeline, meta).items(), key=lambda kv: natural_key(kv[0])):
        for index, phase in sorted(phases.items()):
            for provider in phase["down"]:
                got = phase["providers"].get(provider, {})
                moved, share = got.get("bytes", 0), got.get("share")
                if moved >= MIN_LEAK_BYTES and (share is None or share > DOWN_SHARE_LIMIT):
                    lines.append(f"{node}: {provider} delivered {moved} bytes ({(share or 1.0) * 100:.1f} % of the "
                                 f"node's) in phase {index + 1} '{names[index]}' while its switcher held it down: "
                                 f"the outage did not hold")
    return lines


def annotate(summary: dict, timeline: dict, meta: dict) -> None:
    """Add `delivered_rx_bytes` and `delivered_rx_share` to the summary's per-phase figures of
    every node and provider whose switcher counted them."""
    per_node = node_phases(timeline, meta)
    if not per_node:
        return
    # the summary's phases are the timeline's that were due (a run cut short drops the rest)
    due = [i for i, p in enumerate(timeline.get("phases") or []) if p.get("start") is not None]
    for entry, index in zip(summary.get("phases") or [], due, strict=False):
        for node, providers in (entry.get("nodes") or {}).items():
            phase = per_node.get(node, {}).get(index)
            for provider, figures in providers.items() if phase else ():
                if (got := phase["providers"].get(provider)) is not None:
                    figures["delivered_rx_bytes"] = got["bytes"]
                    figures["delivered_rx_share"] = got["share"]
