"""The players at a glance (pure): worst first, and one line across all clients.

Order: stall seconds, then stall count, then startup, each worst first; a player that never
started playback (no startup time) leads, since its viewer saw nothing at all.
"""

from __future__ import annotations

from mpstream.measurement.report.stats import natural_key, percentile


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def worst_first(players: dict[str, dict]) -> list[str]:
    def key(node: str) -> tuple:
        p = players[node]
        startup = p.get("startup_s")
        never_started = startup is None
        return (not never_started, -_number(p.get("stall_total_s")), -_number(p.get("stall_count")),
                -_number(startup), natural_key(node))

    return sorted(players, key=key)


def players_overall(players: dict[str, dict], clients: list[str]) -> dict:
    """Across all clients: stall-free ones (n of N), startup p50/p95, stalls in all.

    `clients` are the client nodes of the run (also those without a player summary: they
    count in N, never as stall-free).
    """
    everyone = sorted(set(clients) | set(players), key=natural_key)
    startups = [float(p["startup_s"]) for p in players.values() if p.get("startup_s") is not None]
    stall_free = [n for n, p in players.items() if p.get("startup_s") is not None and not p.get("stall_count")]
    p50, p95 = percentile(startups, 50), percentile(startups, 95)
    return {
        "clients": len(everyone),
        "with_player": len(players),
        "without_player": [n for n in everyone if n not in players],
        "never_started": sorted((n for n, p in players.items() if p.get("startup_s") is None), key=natural_key),
        "stall_free": len(stall_free),
        "startup_s": {"p50": None if p50 is None else round(p50, 4), "p95": None if p95 is None else round(p95, 4)},
        "stall_total_s": round(sum(_number(p.get("stall_total_s")) for p in players.values()), 4),
        "stall_count": int(sum(_number(p.get("stall_count")) for p in players.values())),
    }
