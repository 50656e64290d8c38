"""Players and recorders that must cover the whole schedule."""

from __future__ import annotations

from mpstream.measurement.recorder.csvformat import Delta, Row
from mpstream.measurement.report.analysis import NodeData
from mpstream.measurement.report.validity import player_reasons, rates_reasons, verdict

T0 = 1_800_000_000.0
SPAN = (T0, T0 + 32.0)
META = {"inventory": {"nodes": {"push1": {"roles": ["push"]}, "server1": {"roles": ["server"]},
                                "client3": {"roles": ["client"]}, "client4": {"roles": ["client"]}}}}


def rows(start_s: float, end_s: float, step: float = 0.1, skip: tuple[float, float] | None = None) -> list[Row]:
    out = []
    k = 0
    while start_s + k * step <= end_s + 1e-9:
        t = start_s + k * step
        k += 1
        if skip and skip[0] < t < skip[1]:
            continue
        out.append(Row(T0 + t, "nic1", Delta(), 0.0, 0.0))
    return out


def player(began: float, ended: float) -> dict:
    return {"started_at": T0 + began, "ended_at": T0 + ended, "stall_count": 0}


def test_player_covering_the_schedule_is_fine():
    nodes = {"client3": NodeData(player=player(-3.0, 34.0)), "client4": NodeData(player=player(-0.05, 31.95))}
    assert player_reasons(META, nodes, SPAN, T0, tolerance=0.1) == []


def test_player_not_covering_the_schedule():
    nodes = {"client3": NodeData(player=player(12.0, 40.3)), "client4": NodeData(player=player(-3.0, 20.0))}
    assert player_reasons(META, nodes, SPAN, T0, tolerance=0.1) == [
        "client3: the player played from +12 s to +40.3 s, not the whole schedule 0-32 s",
        "client4: the player played from -3 s to +20 s, not the whole schedule 0-32 s",
    ]


NO_PLAYER = "client4: no player.json, so nothing says what its viewer saw"


def test_client_without_player_summary():
    nodes = {"client3": NodeData(player=player(-3.0, 34.0)), "client4": NodeData(),
             "push1": NodeData()}
    assert player_reasons(META, nodes, SPAN, T0, 0.1) == [NO_PLAYER]
    del nodes["client4"]  # not even a folder: the inventory still names it a client
    assert player_reasons(META, nodes, SPAN, T0, 0.1) == [NO_PLAYER]
    nodes["client3"] = NodeData(player={"stall_count": 0})
    assert "client3: player.json lacks started_at/ended_at" in player_reasons(META, nodes, SPAN, T0, 0.1)[0]


def test_rates_covering_the_schedule_with_one_interval_of_slack():
    nodes = {n: NodeData(rows=rows(0.1, 31.9)) for n in ("push1", "server1", "client3", "client4")}
    assert rates_reasons(META, nodes, SPAN, T0) == []


def test_rates_not_covering_the_schedule():
    nodes = {"push1": NodeData(rows=rows(0.3, 32.0)), "server1": NodeData(rows=rows(-2.0, 30.0)),
             "client3": NodeData(rows=rows(-2.0, 35.0, skip=(10.0, 14.0))), "client4": NodeData()}
    assert rates_reasons(META, nodes, SPAN, T0) == [
        "client3: rates.csv has no sample from +10 s to +14 s (4.0 s) inside the schedule",
        "client4: no usable rates.csv, so its traffic was not recorded",
        "push1: rates.csv covers +0.3 s to +32 s, not the whole schedule 0-32 s",
        "server1: rates.csv covers -2 s to +30 s, not the whole schedule 0-32 s",
    ]


def test_a_missed_tick_is_not_a_hole():
    nodes = {"push1": NodeData(rows=rows(0.0, 32.0, skip=(5.05, 5.35)))}  # 0.4 s without a sample
    assert rates_reasons({}, nodes, SPAN, T0) == []


def test_a_run_that_accepts_late_switches_accepts_a_hole_as_long_as_both_edges_of_one():
    nodes = {"push1": NodeData(rows=rows(0.0, 32.0, skip=(11.15, 12.35)))}  # 1.3 s, as in a busy VM run
    hole = "push1: rates.csv has no sample from +11.1 s to +12.4 s (1.3 s) inside the schedule"
    assert rates_reasons({}, nodes, SPAN, T0) == [hole]
    assert rates_reasons({}, nodes, SPAN, T0, tolerance=0.5) == [hole]
    assert rates_reasons({}, nodes, SPAN, T0, tolerance=1.0) == []
    # the verdict takes the tolerance from the run's timeline
    timeline = {"t0": T0, "tolerance_s": 0.1, "reasons": [],
                "phases": [{"start": T0, "end": T0 + 32.0, "planned_start": T0, "planned_end": T0 + 32.0}]}
    assert verdict({}, nodes, timeline) == [hole]
    assert verdict({}, nodes, {**timeline, "tolerance_s": 1.0}) == []


def test_verdict_merges_the_timelines_reasons_with_coverage():
    timeline = {"t0": T0, "tolerance_s": 0.1, "reasons": ["run: interrupted at +20 s"],
                "phases": [{"start": T0, "end": T0 + 32.0, "planned_start": T0, "planned_end": T0 + 32.0}],
                "interrupted_at": T0 + 20.0}
    nodes = {"client3": NodeData(rows=rows(0.0, 20.0), player=player(-1.0, 20.0)),
             "client4": NodeData(rows=rows(0.0, 20.0), player=player(-1.0, 15.0)),
             "push1": NodeData(rows=rows(0.0, 20.0)), "server1": NodeData(rows=rows(0.0, 20.0))}
    # covered up to the interruption is enough: later was never due
    assert verdict(META, nodes, timeline) == [
        "client4: the player played from -1 s to +15 s, not the whole schedule 0-20 s",
        "run: interrupted at +20 s",
    ]
    assert verdict(META, nodes, {"reasons": ["run: x"]}) == ["run: x"]  # no phases: nothing to cover
