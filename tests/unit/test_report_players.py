"""Players worst first, and the one line across all clients."""

from __future__ import annotations

from mpstream.measurement.report.markdown import overall_line
from mpstream.measurement.report.players import players_overall, worst_first


def p(stall_total_s: float, stall_count: int, startup_s: float | None) -> dict:
    return {"stall_total_s": stall_total_s, "stall_count": stall_count, "startup_s": startup_s}


PLAYERS = {
    "client1": p(0.0, 0, 0.8),
    "client2": p(2.5, 1, 1.0),
    "client3": p(2.5, 3, 0.9),
    "client4": p(0.0, 0, 2.4),
    "client10": p(8.0, 1, 0.7),
    "client11": p(0.0, 0, None),  # never started playing
    "client12": p(0.0, 0, 0.8),
}


def test_worst_first_by_stall_seconds_then_count_then_startup():
    assert worst_first(PLAYERS) == ["client11", "client10", "client3", "client2", "client4", "client1", "client12"]


def test_overall_counts_every_client_and_summarises_startup_and_stalls():
    overall = players_overall(PLAYERS, clients=[*PLAYERS, "client20"])
    assert overall["clients"] == 8 and overall["with_player"] == 7
    assert overall["stall_free"] == 3  # client1, client4, client12 (client11 never started)
    assert overall["without_player"] == ["client20"] and overall["never_started"] == ["client11"]
    assert overall["startup_s"]["p50"] == 0.85  # of 0.7 0.8 0.8 0.9 1.0 2.4
    assert overall["startup_s"]["p95"] == 2.05  # 1.0 + 0.75 x (2.4 - 1.0)
    assert overall["stall_total_s"] == 13.0 and overall["stall_count"] == 5
    assert overall_line(overall) == (
        "All clients: 3/8 stall-free, startup p50 0.850 s / p95 2.050 s, 13.000 s stalled in all (5 stalls); "
        "never started: client11; no player summary: client20.")


def test_overall_without_players():
    overall = players_overall({}, clients=["client1"])
    assert overall["clients"] == 1 and overall["stall_free"] == 0
    assert overall["startup_s"] == {"p50": None, "p95": None} and overall["stall_total_s"] == 0
