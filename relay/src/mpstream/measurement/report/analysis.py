"""Pure computations over a run: per-provider traffic, phase slicing, shares, handover times.

No file I/O and no plotting here. Times are seconds relative to the run's t0.

Sample intervals: a recorder row at time `t` carries what the interface moved since that
interface's previous row, i.e. during `(t_prev, t]`. Bytes of an interval that straddles a
phase boundary are split between the phases in proportion to the overlap.

Handover time (per phase change, per node and direction): the end of the first sample
interval that lies entirely after the change in which the providers still up carry at
least `HANDOVER_SHARE` (90 %) of the node's traffic in that direction, measured from the
change. Samples with less traffic than `MIN_TRAFFIC_FRACTION` (10 %) of the node's median
non-empty sample in that direction do not count, so a lone ACK or probe on a surviving
provider does not end a stall. `None` when that never happens before the phase ends.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from mpstream.measurement.recorder.csvformat import TOTAL, Row
from mpstream.measurement.report.edges import edges_summary
from mpstream.measurement.report.stats import natural_key

HANDOVER_SHARE = 0.9
MIN_TRAFFIC_FRACTION = 0.1
DIRECTIONS = ("tx", "rx")
ROLE_DIRECTIONS = {"push": ("tx",), "client": ("rx",), "server": ("tx", "rx")}


@dataclass(frozen=True)
class Phase:
    name: str
    down: tuple[str, ...]
    start_s: float
    end_s: float
    # when the schedule meant it to run (None: only one set of times is known)
    planned_start_s: float | None = None
    planned_end_s: float | None = None
    # hosts of the inventory named in the phase's `down`: cut off from every provider (their
    # traffic in the phase is not a provider's down share; `down` keeps the providers only)
    down_nodes: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Interval:
    """Traffic of one provider of one node during `(start_s, end_s]`."""

    start_s: float
    end_s: float
    tx_bytes: int
    rx_bytes: int

    def bytes(self, direction: str) -> int:
        return self.tx_bytes if direction == "tx" else self.rx_bytes


@dataclass
class ProviderSeries:
    """The sample intervals of one provider at one node, in time order."""

    provider: str
    intervals: list[Interval] = field(default_factory=list)


def phases_from_timeline(timeline: dict, data_end: float | None = None) -> list[Phase]:
    """Phases relative to `timeline['t0']`, in order.

    `start`/`end` are when the phase really ran (format 2: from the switchers' records;
    format 1: as planned); `planned_start`/`planned_end` (format 2) are kept alongside.
    A phase without `end` (the run died before it could close the timeline) ends with the
    data at `data_end` (unix seconds); without data after its start it is dropped.
    """
    t0 = float(timeline.get("t0", 0.0))
    phases = []
    for raw in timeline.get("phases", []):
        if raw.get("start") is None:
            continue
        if raw.get("end") is None:
            if data_end is None or data_end <= float(raw["start"]):
                continue
            raw = {**raw, "end": data_end}
        planned = [None if raw.get(k) is None else float(raw[k]) - t0 for k in ("planned_start", "planned_end")]
        phases.append(Phase(
            name=str(raw.get("name", f"phase {len(phases) + 1}")),
            down=tuple(raw.get("down") or ()),
            start_s=float(raw["start"]) - t0,
            end_s=float(raw["end"]) - t0,
            planned_start_s=planned[0], planned_end_s=planned[1],
        ))
    return phases


def interface_providers(meta: dict, node: str, interfaces: Iterable[str]) -> dict[str, str]:
    """Which provider each recorded interface of `node` belongs to.

    From the inventory's per-node `interfaces` map, else from the providers' `nic` names;
    without either, every interface except `lo` is its own provider.
    """
    inventory = meta.get("inventory") or {}
    node_map = ((inventory.get("nodes") or {}).get(node) or {}).get("interfaces") or {}
    if node_map:
        return {nic: provider for nic, provider in node_map.items()}
    by_nic = {p["nic"]: p["name"] for p in inventory.get("providers") or [] if "nic" in p and "name" in p}
    if by_nic:
        return {nic: by_nic[nic] for nic in interfaces if nic in by_nic}
    return {nic: nic for nic in interfaces if nic not in ("lo", TOTAL)}


def provider_order(meta: dict, providers: Iterable[str]) -> list[str]:
    """Providers in inventory order (by index), unknown ones after, by name."""
    listed = sorted((meta.get("inventory") or {}).get("providers") or [], key=lambda p: p.get("index", 0))
    order = [p["name"] for p in listed if "name" in p]
    found = set(providers)
    return [p for p in order if p in found] + sorted(found - set(order))


ROLE_ORDER = ("push", "server", "client")


def node_order(meta: dict, nodes: Iterable[str]) -> list[str]:
    """Nodes in the stream's direction: push, server, client, then any others; by name within a role
    (client2 before client10)."""
    inv_nodes = (meta.get("inventory") or {}).get("nodes") or {}

    def key(node: str) -> tuple:
        roles = (inv_nodes.get(node) or {}).get("roles") or []
        ranks = [ROLE_ORDER.index(r) for r in roles if r in ROLE_ORDER]
        return (min(ranks) if ranks else len(ROLE_ORDER), natural_key(node))

    return sorted(nodes, key=key)


def node_directions(meta: dict, node: str) -> tuple[str, ...]:
    """The directions that matter for the node's roles (push: out, client: in, server: both)."""
    roles = (((meta.get("inventory") or {}).get("nodes") or {}).get(node) or {}).get("roles") or []
    wanted = {d for role in roles for d in ROLE_DIRECTIONS.get(role, ())}
    return tuple(d for d in DIRECTIONS if d in wanted) or DIRECTIONS


def provider_series(rows: Sequence[Row], t0: float, providers: dict[str, str]) -> dict[str, ProviderSeries]:
    """Sum the rows of each provider's interfaces into intervals relative to `t0`.

    Interfaces of one provider (rare: two NICs on one provider) are merged per sample time.
    """
    last_seen: dict[str, float] = {}
    merged: dict[str, dict[tuple[float, float], list[int]]] = {}
    for row in sorted(rows, key=lambda r: r.timestamp):
        provider = providers.get(row.name)
        if provider is None:
            continue
        t = row.timestamp - t0
        previous = last_seen.get(row.name)
        last_seen[row.name] = t
        if previous is None:
            continue  # an interface's first row only sets its baseline
        slot = merged.setdefault(provider, {}).setdefault((previous, t), [0, 0])
        slot[0] += row.delta.tx_bytes
        slot[1] += row.delta.rx_bytes
    result = {}
    for provider, slots in merged.items():
        intervals = [Interval(a, b, tx, rx) for (a, b), (tx, rx) in sorted(slots.items(), key=lambda kv: kv[0][1])]
        result[provider] = ProviderSeries(provider, intervals)
    for provider in set(providers.values()) - set(result):
        result[provider] = ProviderSeries(provider)
    return result


def bytes_between(intervals: Iterable[Interval], start_s: float, end_s: float, direction: str) -> float:
    """Bytes in `(start_s, end_s]`, splitting straddling intervals by overlap."""
    total = 0.0
    for iv in intervals:
        overlap = min(iv.end_s, end_s) - max(iv.start_s, start_s)
        if overlap <= 0:
            continue
        length = iv.end_s - iv.start_s
        total += iv.bytes(direction) * (overlap / length if length > 0 else 1.0)
    return total


def binned_rates(intervals: Sequence[Interval], direction: str, bin_s: float) -> tuple[list[float], list[float]]:
    """Rate (bit/s) in consecutive bins of `bin_s` seconds from the first to the last sample.

    Bins smooth the 100 ms samples of a bursty stream the way bwm-ng's 500 ms default
    would, and put every node on the same time grid (multiples of `bin_s` from t0); a bin
    only partly covered by samples averages over the covered part. `bin_s <= 0` returns
    the raw samples.
    Returns the bin edges (one more than rates) and the rates.
    """
    ivs = [iv for iv in intervals if iv.end_s > iv.start_s]
    if not ivs:
        return [], []
    if bin_s <= 0:
        return [ivs[0].start_s] + [iv.end_s for iv in ivs], [8 * iv.bytes(direction) / (iv.end_s - iv.start_s)
                                                            for iv in ivs]
    start, end = ivs[0].start_s, ivs[-1].end_s
    origin = math.floor(start / bin_s) * bin_s  # bins on a grid from t0, so phase starts fall on edges
    count = max(1, math.ceil((end - origin) / bin_s - 1e-9))
    edges = [origin + k * bin_s for k in range(count + 1)]
    rates = []
    first = 0  # intervals are in time order: each bin looks only at those that can overlap it
    for a, b in zip(edges, edges[1:], strict=False):
        while first < len(ivs) and ivs[first].end_s <= a:
            first += 1
        last = first
        while last < len(ivs) and ivs[last].start_s < b:
            last += 1
        covered = min(b, end) - max(a, start)
        rates.append(8 * bytes_between(ivs[first:last], a, b, direction) / covered if covered > 0 else 0.0)
    return edges, rates


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def phase_traffic(series: dict[str, ProviderSeries], phase: Phase) -> dict[str, dict]:
    """Per provider: bytes, mean rate (bit/s) and share of the node's traffic, each direction."""
    moved = {p: {d: bytes_between(s.intervals, phase.start_s, phase.end_s, d) for d in DIRECTIONS}
             for p, s in series.items()}
    totals = {d: sum(m[d] for m in moved.values()) for d in DIRECTIONS}
    result = {}
    for provider, m in moved.items():
        entry: dict = {}
        for d in DIRECTIONS:
            entry[f"{d}_bytes"] = int(round(m[d]))
        for d in DIRECTIONS:
            entry[f"{d}_share"] = _share(m[d], totals[d])
        for d in DIRECTIONS:
            entry[f"{d}_mean_bps"] = round(8 * m[d] / phase.duration_s, 1) if phase.duration_s > 0 else None
        result[provider] = entry
    return result


def _sample_totals(series: dict[str, ProviderSeries], direction: str) -> dict[tuple[float, float], dict[str, int]]:
    """Per sample interval: bytes of each provider."""
    samples: dict[tuple[float, float], dict[str, int]] = {}
    for provider, s in series.items():
        for iv in s.intervals:
            samples.setdefault((iv.start_s, iv.end_s), {})[provider] = iv.bytes(direction)
    return samples


def handover_time(series: dict[str, ProviderSeries], phase: Phase, direction: str,
                  share: float = HANDOVER_SHARE, min_fraction: float = MIN_TRAFFIC_FRACTION) -> float | None:
    """Seconds from the start of `phase` until its surviving providers carry the traffic (see module doc)."""
    samples = _sample_totals(series, direction)
    non_empty = [sum(b.values()) for b in samples.values() if sum(b.values()) > 0]
    if not non_empty:
        return None
    floor = min_fraction * statistics.median(non_empty)
    surviving = set(series) - set(phase.down)
    eps = 1e-9
    for (start, end), by_provider in sorted(samples.items(), key=lambda kv: kv[0][1]):
        if start < phase.start_s - eps:
            continue
        if end > phase.end_s + eps:
            break
        total = sum(by_provider.values())
        if total <= 0 or total < floor:
            continue
        if sum(b for p, b in by_provider.items() if p in surviving) >= share * total:
            return round(end - phase.start_s, 6)
    return None


@dataclass
class NodeData:
    """What the report knows about one node."""

    rows: list[Row] = field(default_factory=list)
    player: dict | None = None
    edge_streams: object = None  # an edge relay's /streams at the players' end (edge-streams.json)


def summarize(meta: dict, timeline: dict, nodes: dict[str, NodeData]) -> dict:
    """The content of `summary.json` (see the report command's documentation)."""
    t0, phases = run_clock(timeline, nodes, meta)
    per_node_series = {}
    node_info = {}
    for node in node_order(meta, nodes):
        data = nodes[node]
        names = sorted({r.name for r in data.rows})
        providers = interface_providers(meta, node, names)
        series = provider_series(data.rows, t0, providers) if data.rows else {}  # no recording: no rows
        per_node_series[node] = series
        node_info[node] = {
            "roles": list((((meta.get("inventory") or {}).get("nodes") or {}).get(node) or {}).get("roles") or []),
            "directions": list(node_directions(meta, node)),
            "interfaces": providers,
            "samples": max((len(s.intervals) for s in series.values()), default=0),
        }
    phase_entries = []
    for phase in phases:
        phase_entries.append({
            "name": phase.name, "down": list(phase.down), **({"down_nodes": list(phase.down_nodes)}
                                                             if phase.down_nodes else {}),
            "start_s": round(phase.start_s, 6), "end_s": round(phase.end_s, 6),
            "duration_s": round(phase.duration_s, 6),
            "planned_start_s": None if phase.planned_start_s is None else round(phase.planned_start_s, 6),
            "planned_end_s": None if phase.planned_end_s is None else round(phase.planned_end_s, 6),
            "nodes": {node: {p: traffic[p] for p in provider_order(meta, traffic)}
                      for node, series in per_node_series.items()
                      for traffic in [phase_traffic(series, phase)] if series},
        })
    handovers = []
    for before, phase in zip(phases, phases[1:], strict=False):
        for node, series in per_node_series.items():
            if not series:
                continue
            for direction in node_directions(meta, node):
                handovers.append({
                    "from": before.name, "to": phase.name, "at_s": round(phase.start_s, 6),
                    "node": node, "direction": direction,
                    "surviving": [p for p in provider_order(meta, series) if p not in phase.down],
                    "handover_s": handover_time(series, phase, direction),
                })
    players = {node: nodes[node].player for node in node_order(meta, nodes) if nodes[node].player is not None}
    edge_streams = {node: data.edge_streams for node, data in nodes.items() if data.edge_streams is not None}
    return {
        "run_id": meta.get("run_id"),
        "t0": t0,
        "thresholds": {"handover_share": HANDOVER_SHARE, "min_traffic_fraction": MIN_TRAFFIC_FRACTION},
        "phases": phase_entries,
        "handover_s": handovers,
        "players": players,
        "nodes": node_info,
        **({"edges": edges_summary(edge_streams, t0, meta)} if edge_streams else {}),
    }


def split_down(meta: dict, nodes: Iterable[str], down: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A phase's `down` as (providers, hosts): a name that is a node of the run (its inventory or
    its folders) and not a provider of the inventory is a host cut off from all its providers."""
    providers = {p.get("name") for p in (meta.get("inventory") or {}).get("providers") or []}
    hosts = set((meta.get("inventory") or {}).get("nodes") or {}) | set(nodes)
    names = tuple(down)
    cut_off = tuple(n for n in names if n in hosts and n not in providers)
    return tuple(n for n in names if n not in cut_off), cut_off


def run_clock(timeline: dict, nodes: dict[str, NodeData], meta: dict | None = None) -> tuple[float, list[Phase]]:
    """t0 and the phases; without a timeline, t0 is the first sample and one phase spans the data.
    Hosts named in a phase's `down` go to its `down_nodes`."""
    timestamps = [r.timestamp for data in nodes.values() for r in data.rows]
    if timeline.get("t0") is not None:
        t0 = float(timeline["t0"])
    else:
        t0 = min(timestamps, default=0.0)
    phases = phases_from_timeline({**timeline, "t0": t0}, max(timestamps, default=None))
    if not phases and timestamps:
        phases = [Phase("whole run", (), min(timestamps) - t0, max(timestamps) - t0)]
    split = [(phase, split_down(meta or {}, nodes, phase.down)) for phase in phases]
    return t0, [replace(phase, down=down, down_nodes=cut_off) if cut_off else phase for phase, (down, cut_off) in split]
