"""Which origin each edge relay pulled the stream from, and when it switched.

The failover scenario saves each edge's stats (`GET /streams` of its relay) at the players'
end into `nodes/<edge>/edge-streams.json`: a list of streams, a pulled one with `"pull"`
(`origin`, `delivering_origin`, `origins`, `switches`, `switch_log` with per switch its Unix
time `at`, `mode`, `gap_ms`, `origin` and `previous_origin`; docs/edge-relays.md). Here that
becomes `summary.json`'s `edges`: per edge and pulled stream the origins in the order used
and each switch relative to t0, with the name of the inventory host behind an origin's URL
where the inventory says it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

EDGE_STREAMS_FILE = "edge-streams.json"


def _host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def origin_names(meta: dict) -> dict[str, str]:
    """Relay address (lower case, no brackets) -> inventory host, from meta.json's per-node
    `relay_url` and `relay_addresses` (every address of the node, with or without a prefix length)."""
    names = {}
    for node, info in ((meta.get("inventory") or {}).get("nodes") or {}).items():
        hosts = [_host_of((info or {}).get("relay_url"))]
        hosts += [str(a).split("/")[0].lower() for a in (info or {}).get("relay_addresses") or [] if a]
        names.update({host: node for host in hosts if host})
    return names


def _name(url: str | None, names: dict[str, str]) -> str | None:
    if url is None:
        return None
    return names.get(_host_of(url), url)


def edge_stream(stream: dict, t0: float, names: dict[str, str]) -> dict | None:
    """One pulled stream's origins and switches (None for a stream that is not pulled)."""
    pull = stream.get("pull")
    if not isinstance(pull, dict):
        return None
    log = [s for s in pull.get("switch_log") or [] if isinstance(s, dict)]
    first = log[0].get("previous_origin") if log else (pull.get("delivering_origin") or pull.get("origin"))
    used = [first] if first else []
    switches = []
    for splice in log:
        at = splice.get("at")
        switches.append({
            "at_s": None if not isinstance(at, int | float) else round(float(at) - t0, 3),
            "from": _name(splice.get("previous_origin"), names), "to": _name(splice.get("origin"), names),
            "mode": splice.get("mode"), "gap_ms": splice.get("gap_ms"), "reason": splice.get("reason"),
        })
        if splice.get("origin") and (not used or used[-1] != splice["origin"]):
            used.append(splice["origin"])
    return {
        "stream": stream.get("name"),
        "origins_used": [_name(u, names) for u in used],
        "origin_at_end": _name(pull.get("delivering_origin") or pull.get("origin"), names),
        "switches": len(log) if pull.get("switches") is None else int(pull["switches"]),
        "switch_log": switches,
        "connections_failed": pull.get("connections_failed"),
    }


def edges_summary(streams_by_edge: dict[str, object], t0: float, meta: dict) -> dict[str, dict]:
    """summary.json's `edges`: per edge node that saved its streams, its pulled streams (or why none)."""
    names = origin_names(meta)
    out = {}
    for edge, streams in sorted(streams_by_edge.items()):
        if not isinstance(streams, list):
            out[edge] = {"streams": [], "note": f"{EDGE_STREAMS_FILE} is not a list of streams"}
            continue
        pulled = [e for e in (edge_stream(s, t0, names) for s in streams if isinstance(s, dict)) if e is not None]
        out[edge] = {"streams": pulled} if pulled else {"streams": [], "note": "no pulled stream at the players' end"}
    return out


def edges_table(edges: dict[str, dict]) -> list[list[str]]:
    """report.md rows: edge, stream, origins used, switches (time relative to t0, mode, gap)."""
    rows = []
    for edge, info in edges.items():
        if not info.get("streams"):
            rows.append([edge, "", "", info.get("note", "")])
        for entry in info.get("streams", []):
            switches = "; ".join(
                f"{'?' if s['at_s'] is None else format(s['at_s'], '.1f')} s {s['from']} -> {s['to']} ({s['mode']}"
                + ("" if s.get("gap_ms") is None else f", gap {s['gap_ms']:.0f} ms") + ")"
                for s in entry["switch_log"]) or "none"
            rows.append([edge, str(entry.get("stream") or ""), " -> ".join(str(o) for o in entry["origins_used"]),
                         switches])
    return rows
