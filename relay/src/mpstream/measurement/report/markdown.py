"""`report.md`: whether the run is valid, the switches, the plots, a table per phase,
handovers, players and what the run was.

Pure: takes the summary (and the run's metadata) and returns text.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable

from mpstream.measurement.report.edges import edges_table
from mpstream.measurement.report.mib import short_name
from mpstream.measurement.report.players import worst_first

INVALID_BANNER = "**INVALID RUN** — these numbers do not describe the planned scenario:"

PLAYER_COLUMNS = (
    ("startup_s", "startup [s]"), ("stall_count", "stalls"), ("stall_total_s", "stalled [s]"),
    ("stall_max_s", "longest stall [s]"), ("bitrate_bps", "bitrate [bit/s]"),
)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def _pct(share) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _rate(bps) -> str:
    return "–" if bps is None else f"{bps / 1e6:.3f}"


def table(header: Iterable[str], rows: Iterable[Iterable]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def down_text(phase: dict) -> str:
    """What a phase took down: its providers, and hosts cut off from all of theirs."""
    names = list(phase.get("down") or []) + [f"{n} (all its providers)" for n in phase.get("down_nodes") or []]
    return ", ".join(names) or "none"


def edge_section(summary: dict) -> list[str]:
    """Which origin each edge pulled from and when it switched (edge relays only)."""
    edges = summary.get("edges")
    if not edges:
        return []
    return ["## Edges", "", "The origins each edge pulled the stream from, in order, and its switches "
            "(seconds from t0; the gap from the old origin's last message to the new one's first), as its "
            "relay's stats said at the players' end.", ""] + table(
        ["edge", "stream", "origins used", "switches"], edges_table(edges))


def _phase_lookup(summary: dict | None) -> dict[int, dict]:
    return {i: p for i, p in enumerate((summary or {}).get("phases", []))}


def render(summary: dict, meta: dict, plots: list[str], notes: list[str],
           baseline: dict | None = None, baseline_name: str | None = None) -> str:
    run_id = summary.get("run_id") or meta.get("run_id") or "run"
    out = []
    if not summary.get("valid", True):
        out += [INVALID_BANNER, ""] + [f"- {reason}" for reason in summary.get("reasons") or []] + [""]
    out += [f"# mpstream run {run_id}", ""]
    facts = [
        ("started", meta.get("started_at")), ("baseline run", meta.get("baseline")),
        ("phase length [s]", meta.get("phase_seconds")), ("outage method", meta.get("outage_method")),
    ]
    listed = [f"- **{k}**: {_fmt(v)}" for k, v in facts if v is not None]
    if baseline is not None:
        listed.append(f"- **compared with**: `{baseline_name}` (columns marked *baseline*)")
    out += listed + ([""] if listed else [])
    for note in notes:
        out.append(f"> note: {note}")
    if notes:
        out.append("")

    out += switch_section(summary)
    pngs = [p for p in plots if p.endswith(".png")]
    overview = [p for p in pngs if p.endswith("overview.png")]
    if overview:
        out += ["## Overview", ""] + [f"![{p}]({p})" for p in overview] + [""]
        out += ["Each row a node and direction, each column a provider in a phase; the number is the provider's "
                "share of that traffic in %. Hatched red: the provider is down in that phase. Grey: nothing moved, "
                "or the node has no such provider.", ""]
    rates = [p for p in pngs if p not in overview]
    if rates:
        out += ["## Data rate per interface", ""] + [f"![{p}]({p})" for p in rates] + [""]
        out += ["Shaded: phases as they really ran (red: a provider is down); dotted red: a planned switch instant "
                "that the real switch missed. Red marks at the bottom of a client's panel: player stalls.", ""]

    out += _phase_section(summary, baseline)
    out += _handover_section(summary, baseline)
    out += _player_section(summary, baseline)
    out += edge_section(summary)
    out += mib_section(summary)
    out += clock_section(summary)
    out += _setup_section(meta)
    return "\n".join(out).rstrip() + "\n"


def _timed_by_sentence(lag: dict) -> str:
    """What the switch times are: the kernel's commit notices, nft's exits (upper bounds), or both."""
    by_commit, count = lag.get("by_commit") or 0, lag["count"]
    if by_commit == count:
        return "Each switch is timed by the kernel's notice that its nftables transaction was committed."
    exits = "nft's exit, which comes after the commit (an upper bound)"
    if not by_commit:
        return f"The switches are timed by {exits}: no notice of a commit was seen."
    return f"{by_commit} switches are timed by the kernel's notice of their commit, {count - by_commit} by {exits}."


def switch_section(summary: dict) -> list[str]:
    lag = summary.get("switch_lag_s")
    phases = summary.get("phases", [])
    out = ["## Switches", ""]
    if not lag:
        return out + ["Only the planned times are known: nothing recorded when the switches took effect.", ""]
    tolerance = summary.get("tolerance_s")
    if lag.get("count"):
        worst = lag.get("worst") or {}
        out += [f"Lag of each switch behind its planned instant, over {lag['count']} switches at every node "
                f"(tolerance {_fmt(tolerance)} s): p50 {_fmt(lag.get('p50'))} s, p99 {_fmt(lag.get('p99'))} s, "
                f"max {_fmt(lag.get('max'))} s (worst: {worst.get('node', '?')}, "
                f"{worst.get('switch') or worst.get('name', '?')}).", ""]
        out += [_timed_by_sentence(lag), ""]
    elif not lag.get("unchanged"):
        out += ["No switch was recorded as taking effect.", ""]
    if lag.get("unchanged"):
        out += [f"{lag['unchanged']} more switches found their state in force already (every provider up, "
                f"no outage to remove): they needed no transaction and count from their planned instant.", ""]
    out += ["A phase starts when its switch had taken effect everywhere (the latest node); the tables below "
            "slice the traffic by these actual phases.", ""]
    rows = []
    for index, phase in enumerate(phases, start=1):
        planned = phase.get("planned_start_s")
        rows.append([f"{index}. {phase['name']}", _fmt(planned, 3), _fmt(phase["start_s"], 3),
                     _fmt(None if planned is None else phase["start_s"] - planned, 3)])
    return out + table(["phase", "planned start [s]", "actual start [s]", "later by [s]"], rows)


def _phase_section(summary: dict, baseline: dict | None) -> list[str]:
    out = ["## Phases", ""]
    base_phases = _phase_lookup(baseline)
    for index, phase in enumerate(summary.get("phases", [])):
        down = down_text(phase)
        planned = ""
        if phase.get("planned_start_s") is not None and (
                abs(phase["planned_start_s"] - phase["start_s"]) >= 0.05
                or abs((phase.get("planned_end_s") or phase["end_s"]) - phase["end_s"]) >= 0.05):
            planned = f" (planned {phase['planned_start_s']:.1f} s to {_fmt(phase.get('planned_end_s'), 1)} s)"
        out += [f"### {index + 1}. {phase['name']} — down: {down}, "
                f"{phase['start_s']:.1f} s to {phase['end_s']:.1f} s{planned}", ""]
        base = base_phases.get(index, {}).get("nodes", {})
        header = ["node", "provider", "out [bytes]", "out share", "out [Mbit/s]", "in [bytes]", "in share",
                  "in [Mbit/s]"]
        counted = any("delivered_rx_share" in t for providers in phase.get("nodes", {}).values()
                      for t in providers.values())
        if counted:  # what got past the outage's drop (the NIC's own counters count what it dropped too)
            header += ["in share delivered"]
        if baseline is not None:
            header += ["out share *baseline*", "in share *baseline*"]
        rows = []
        for node, providers in phase.get("nodes", {}).items():
            for provider, t in providers.items():
                row = [node, provider, _fmt(t["tx_bytes"]), _pct(t["tx_share"]), _rate(t["tx_mean_bps"]),
                       _fmt(t["rx_bytes"]), _pct(t["rx_share"]), _rate(t["rx_mean_bps"])]
                if counted:
                    row.append(_pct(t.get("delivered_rx_share")))
                if baseline is not None:
                    b = base.get(node, {}).get(provider, {})
                    row += [_pct(b.get("tx_share")), _pct(b.get("rx_share"))]
                rows.append(row)
        out += table(header, rows)
    return out


def _handover_section(summary: dict, baseline: dict | None) -> list[str]:
    entries = summary.get("handover_s", [])
    if not entries:
        return []
    thresholds = summary.get("thresholds", {})
    out = ["## Handover after each phase change", "",
           f"Seconds from the change until the providers still up carry at least "
           f"{100 * thresholds.get('handover_share', 0.9):.0f} % of the node's traffic in that direction "
           f"(samples below {100 * thresholds.get('min_traffic_fraction', 0.1):.0f} % of the node's median "
           f"sample are ignored); – : not within the phase.", ""]
    base = {(e["to"], e["node"], e["direction"]): e.get("handover_s") for e in (baseline or {}).get("handover_s", [])}
    header = ["change", "at [s]", "node", "direction", "surviving", "handover [s]"]
    if baseline is not None:
        header.append("handover [s] *baseline*")
    rows = []
    for e in entries:
        row = [f"{e['from']} → {e['to']}", _fmt(e["at_s"], 1), e["node"],
               "out" if e["direction"] == "tx" else "in", ", ".join(e.get("surviving", [])), _fmt(e["handover_s"])]
        if baseline is not None:
            row.append(_fmt(base.get((e["to"], e["node"], e["direction"]))))
        rows.append(row)
    return out + table(header, rows)


def _player_section(summary: dict, baseline: dict | None) -> list[str]:
    players = summary.get("players", {})
    if not players:
        return []
    out = ["## Players", "", "Worst first: stall seconds, then stalls, then startup (a player that never "
           "started leads).", ""]
    header = ["client"] + [label for _, label in PLAYER_COLUMNS] + ["latency p50/p95/p99 [ms]"]
    if baseline is not None:
        header += ["stalled [s] *baseline*", "stalls *baseline*"]
    rows = []
    base_players = (baseline or {}).get("players", {})
    for node in worst_first(players):
        p = players[node]
        latency = p.get("latency_ms") or {}
        row = [node] + [_fmt(p.get(key)) for key, _ in PLAYER_COLUMNS]
        row.append("/".join(_fmt(latency.get(q), 1) for q in ("p50", "p95", "p99")))
        if baseline is not None:
            b = base_players.get(node, {})
            row += [_fmt(b.get("stall_total_s")), _fmt(b.get("stall_count"))]
        rows.append(row)
    out += table(header, rows)
    overall = summary.get("players_overall")
    if overall:
        out += [overall_line(overall), ""]
    t0 = summary.get("t0")
    for node, p in players.items():
        stalls = p.get("stalls") or []
        if not stalls:
            continue
        offset = float(p["started_at"]) - float(t0) if p.get("started_at") is not None and t0 is not None else None
        where = "s into the run" if offset is not None else "s after the player started"
        out.append(f"Stalls at {node}: " + ", ".join(
            f"{_fmt(s.get('duration_s'))} s at {_fmt(s.get('at_s', 0.0) + (offset or 0.0), 1)} {where}"
            for s in stalls))
        out.append("")
    return out


def overall_line(overall: dict) -> str:
    """One line across all clients."""
    startup = overall.get("startup_s") or {}
    line = (f"All clients: {overall.get('stall_free', 0)}/{overall.get('clients', 0)} stall-free, startup p50 "
            f"{_fmt(startup.get('p50'))} s / p95 {_fmt(startup.get('p95'))} s, {_fmt(overall.get('stall_total_s'))} s "
            f"stalled in all ({_fmt(overall.get('stall_count'))} stalls)")
    if overall.get("never_started"):
        line += f"; never started: {', '.join(overall['never_started'])}"
    if overall.get("without_player"):
        line += f"; no player summary: {', '.join(overall['without_player'])}"
    return line + "."


def mib_section(summary: dict) -> list[str]:
    """Per node and phase the MPTCP counters that changed (only where the switchers recorded them)."""
    counters = summary.get("mptcp_mib") or {}
    if not counters:
        return []
    out = ["## MPTCP counters per phase", "",
           "What the kernel's MPTcpExt counters of each node did between the switch that began a phase and the "
           "one that ended it (only counters that changed; prefix MPTcpExt left out).", ""]
    rows = []
    for node, phases in counters.items():
        for entry in phases:
            changed = entry.get("changed") or {}
            text = ", ".join(f"{short_name(k)} {v:+d}" for k, v in changed.items()) or "no change"
            rows.append([node, f"{entry['phase'] + 1}. {entry.get('name', '')}", text])
    return out + table(["node", "phase", "counters that changed"], rows)


def clock_section(summary: dict) -> list[str]:
    """Each node's clock against the controller's at the start (only where the run read them)."""
    node_clocks = summary.get("clocks") or {}
    if not node_clocks:
        return []
    out = ["## Clocks", "",
           "Each node's clock against the controller's when the run started (the offset lies within ± the "
           "uncertainty: half the round trip of the reading); the correction the run allowed for (its "
           "switches kept on the node's clock, its records and latencies placed on the controller's), where "
           "the offset exceeded its uncertainty; what the node's kernel said of its synchronisation (NTP) and "
           "of its estimated error.", ""]
    rows = []
    for node, clock in node_clocks.items():
        offset = ("shared (emulated node)" if clock.get("shared")
                  else f"{clock['offset_s']:+.3f} s ± {clock['uncertainty_s']:.3f} s")
        correction = f"{clock['correction_s']:+.3f} s" if clock.get("correction_s") else "none"
        synchronized = {True: "yes", False: "no"}.get(clock.get("synchronized"), "?")
        error = clock.get("esterror_s")
        rows.append([node, offset, correction, synchronized,
                     f"{error * 1000:.1f} ms" if isinstance(error, int | float) else "?"])
    return out + table(["node", "offset to the controller", "corrected by", "kernel synchronised",
                        "estimated error"], rows)


PROVENANCE_KEYS = ("mpstream", "format", "command", "extra_vars", "inventory_hash")


def provenance_lines(meta: dict) -> list[str]:
    """Where the results came from: mpstream version and commit, format, command, extra vars, inventory hash."""
    lines = []
    mpstream = meta.get("mpstream")
    if isinstance(mpstream, dict) and mpstream:
        parts = [f"version {mpstream['version']}" if mpstream.get("version") else None,
                 f"commit `{mpstream['commit']}`" if mpstream.get("commit") else None]
        lines.append("- **mpstream**: " + ", ".join(p for p in parts if p) if any(parts) else
                     f"- **mpstream**: `{json.dumps(mpstream, sort_keys=True)}`")
    elif mpstream:
        lines.append(f"- **mpstream**: {_fmt(mpstream)}")
    if meta.get("format"):
        lines.append(f"- **results format**: `{meta['format']}`")
    command = meta.get("command")
    if command:
        text = shlex.join(str(c) for c in command) if isinstance(command, list) else str(command)
        lines.append(f"- **command**: `{text}`")
    if meta.get("extra_vars"):
        lines.append(f"- **extra vars**: `{json.dumps(meta['extra_vars'], sort_keys=True)}`")
    if meta.get("inventory_hash"):
        lines.append(f"- **inventory hash**: `{meta['inventory_hash']}`")
    return lines


def _setup_section(meta: dict) -> list[str]:
    out = ["## What ran", ""]
    provenance = provenance_lines(meta)
    if provenance:
        out += provenance + [""]
    inventory = meta.get("inventory") or {}
    providers = inventory.get("providers") or []
    if providers:
        out += ["Providers:", ""] + table(["name", "index", "NIC"], [
            [p.get("name"), p.get("index"), p.get("nic")] for p in providers])
    inv_nodes = inventory.get("nodes") or {}
    if inv_nodes:
        out += ["Nodes:", ""] + table(["node", "roles", "site", "interfaces"], [
            [n, ", ".join(v.get("roles") or []), _fmt(v.get("site_index")),
             ", ".join(f"{nic} → {prov}" for nic, prov in (v.get("interfaces") or {}).items())]
            for n, v in inv_nodes.items()])
    for node, facts in (meta.get("nodes") or {}).items():
        out += [f"### {node}", ""]
        if facts.get("kernel"):
            out += [f"- kernel: `{facts['kernel']}`", ""]
        sysctls = facts.get("sysctls") or {}
        if sysctls:
            out += table(["sysctl", "value"], [[k, f"`{v}`"] for k, v in sorted(sysctls.items())])
        for key, label in (("mptcp_endpoints", "MPTCP endpoints"), ("mptcp_limits", "MPTCP limits")):
            if facts.get(key):
                out += [f"{label}:", "", "```", str(facts[key]).rstrip(), "```", ""]
    versions = meta.get("versions") or {}
    if versions:
        out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    known = {"run_id", "started_at", "baseline", "phase_seconds", "inventory", "nodes", "versions", "outage_method",
             *PROVENANCE_KEYS}
    extra = {k: v for k, v in meta.items() if k not in known}
    if extra:
        out += ["Other metadata:", "", "```json", json.dumps(extra, indent=2, sort_keys=True), "```", ""]
    return out


def console_summary(summary: dict) -> str:
    """A few lines for the terminal: per phase the share of each provider, handovers, stalls."""
    valid = summary.get("valid", True)
    lines = [f"run {summary.get('run_id') or '?'}" + ("" if valid else
             f": INVALID RUN ({len(summary.get('reasons') or [])} reasons)")]
    lag = summary.get("switch_lag_s")
    if lag and lag.get("count"):
        lines.append(f"  switch lag p50 {_fmt(lag.get('p50'))} s, p99 {_fmt(lag.get('p99'))} s, max "
                     f"{_fmt(lag.get('max'))} s ({(lag.get('worst') or {}).get('node', '?')})")
    for index, phase in enumerate(summary.get("phases", []), start=1):
        down = down_text(phase)
        lines.append(f"  phase {index} {phase['name']} (down: {down}, {phase['start_s']:.1f}-{phase['end_s']:.1f} s)")
        directions = {n: info.get("directions", ["tx", "rx"]) for n, info in summary.get("nodes", {}).items()}
        for node, providers in phase.get("nodes", {}).items():
            for direction in directions.get(node, ["tx", "rx"]):
                shares = ", ".join(f"{p} {_pct(t[f'{direction}_share'])}" for p, t in providers.items())
                lines.append(f"    {node} {'out' if direction == 'tx' else 'in'}: {shares}")
    for e in summary.get("handover_s", []):
        if e.get("handover_s") is None or e["handover_s"] > 1.0:
            lines.append(f"  handover {e['from']} -> {e['to']} at {e['node']} "
                         f"({'out' if e['direction'] == 'tx' else 'in'}): {_fmt(e.get('handover_s'))} s")
    players = summary.get("players", {})
    for node in worst_first(players):
        p = players[node]
        lines.append(f"  player {node}: startup {_fmt(p.get('startup_s'))} s, {_fmt(p.get('stall_count'))} stalls, "
                     f"{_fmt(p.get('stall_total_s'))} s stalled")
    if summary.get("players_overall") and len(players) > 1:
        lines.append("  " + overall_line(summary["players_overall"]))
    for edge, stream, used, switches in edges_table(summary.get("edges") or {}):
        lines.append(f"  edge {edge}{' ' + stream if stream else ''}: origins {used or '-'}; switches: {switches}")
    return "\n".join(lines)
