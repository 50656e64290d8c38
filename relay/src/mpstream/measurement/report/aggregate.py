"""Figures over repeated runs: per client and across all clients (pure).

Only valid runs count: an invalid run is named with its reasons and left out of every
figure (its numbers do not describe the scenario, so averaging them in would lie).

Per client: valid runs it took part in, runs in which it was stall-free (started and no
stall), stall seconds, startup and the handover after each phase change (median, p95, max,
see `stats.spread`: a handover that never happened within its phase counts as the worst),
and per phase with a provider down that provider's share of what the client received
(median, max). Overall: the same over every run x client, and a run counts as stall-free
when all its clients were. Where the switchers recorded MPTCP counters: per node and phase
the median and max change of each counter (`mptcp_mib`, see `mib.over_runs`).
"""

from __future__ import annotations

from mpstream.measurement.report.mib import over_runs
from mpstream.measurement.report.runfigures import ClientFigures, changes, down_phases, run_figures
from mpstream.measurement.report.stats import natural_key, spread


def _shape(summary: dict) -> list[tuple[str, tuple[str, ...]]]:
    return [(p.get("name", ""), tuple(p.get("down") or ())) for p in summary.get("phases") or []]


def _block(figures: list[ClientFigures], runs: int, stall_free_runs: int, reference: dict) -> dict:
    block = {
        "runs": runs,
        "samples": len(figures),
        "stall_free_runs": stall_free_runs,
        "stall_free_fraction": None if runs == 0 else round(stall_free_runs / runs, 4),
        "stall_s": spread(f.stall_s for f in figures),
        "stall_count": sum(f.stall_count or 0 for f in figures),
        "startup_s": spread(f.startup_s for f in figures),
        "handover_s": [],
        "down_share": [],
    }
    for change in changes(reference):
        block["handover_s"].append({"index": change.index, "from": change.before, "to": change.after,
                                    **spread(f.handover_s.get(change.index) for f in figures)})
    for index, name, down in down_phases(reference):
        shares = spread(f.down_share.get(index) for f in figures)
        block["down_share"].append({"index": index, "name": name, "down": down, "count": shares["count"],
                                    "median": shares["median"], "max": shares["max"]})
    return block


def aggregate(runs: list[tuple[str, dict]]) -> dict:
    """`runs`: (run id, its summary) in order; a summary has at least `valid` and `reasons`."""
    invalid = [{"run": run, "reasons": list(s.get("reasons") or ["invalid (no reason given)"])}
               for run, s in runs if not s.get("valid")]
    valid = [(run, s) for run, s in runs if s.get("valid")]
    reference = valid[0][1] if valid else (runs[0][1] if runs else {})
    notes = []
    for run, summary in valid[1:]:
        if _shape(summary) != _shape(reference):
            notes.append(f"run {run} had other phases than run {valid[0][0]}: its figures are matched by "
                         f"phase number")
    per_run = {run: run_figures(run, summary) for run, summary in valid}
    everyone = [f for figures in per_run.values() for f in figures]
    names = sorted({f.client for f in everyone}, key=natural_key)
    clients = {}
    for client in names:
        mine = [f for f in everyone if f.client == client]
        clients[client] = _block(mine, len(mine), sum(1 for f in mine if f.stall_free), reference)
    with_clients = [figures for figures in per_run.values() if figures]
    overall = _block(everyone, len(with_clients),
                     sum(1 for figures in with_clients if all(f.stall_free for f in figures)), reference)
    result = {
        "runs": len(runs),
        "run_ids": [run for run, _ in runs],
        "valid_runs": len(valid),
        "invalid_runs": invalid,
        "phases": [{"index": k, "name": name, "down": list(down)} for k, (name, down) in enumerate(_shape(reference))],
        "clients": clients,
        "overall": overall,
        "notes": notes,
    }
    counters = over_runs([s["mptcp_mib"] for _, s in valid if s.get("mptcp_mib")])
    if counters:
        result["mptcp_mib"] = counters
    return result


def all_figures(runs: list[tuple[str, dict]]) -> list[ClientFigures]:
    """Every run x client, invalid runs included (the CSV export marks them)."""
    return [f for run, summary in runs for f in run_figures(run, summary)]
