"""The timeline from schedule.json and the switchers' records: actual phases and every validity rule."""

from __future__ import annotations

import json

import pytest
from mpstream.measurement.report.switchrecord import parse_record
from mpstream.measurement.report.timeline import (
    RecordSource,
    ScheduleError,
    build_timeline,
    legacy_timeline,
    schedule_span,
)

T0 = 1_764_584_100.0
NAMES = [("all up", []), ("isp2 down", ["isp2"]), ("isp1 down, isp2 up", ["isp1"]), ("all up again", [])]


def schedule(switchers=("push1", "client7"), interrupted_at=None, tolerance=0.1) -> dict:
    return {
        "format": "mpstream-schedule/1", "run_id": "run1", "t0": T0, "phase_seconds": 8, "tolerance_s": tolerance,
        "lead_s": 3, "tail_s": 2,
        "phases": [{"name": n, "down": d, "start": T0 + 8 * k, "end": T0 + 8 * (k + 1)}
                   for k, (n, d) in enumerate(NAMES)],
        "switchers": {s: f"nodes/{s}/switches.jsonl" for s in switchers},
        "interrupted_at": interrupted_at,
    }


def switch_line(k: int, lag: float = 0.01, netns=None, ok=True, error=None, planned=None) -> dict:
    name = NAMES[k][0] if k < len(NAMES) else "end"
    at = T0 + 8 * k
    return {"event": "switch", "phase": k, "name": name, "netns": netns, "nics": [], "forwarding": False,
            "planned": at if planned is None else planned, "actual": at + lag if ok else None,
            "lag_s": lag if ok else None, "ok": ok, "error": error}


def record(lines: list[dict], run_id="run1", end: dict | None = None) -> str:
    head = [{"event": "start", "run_id": run_id, "pid": 7, "host": "h", "clock": T0 - 4}]
    tail = [end if end is not None else {"event": "done"}]
    return "".join(json.dumps(line) + "\n" for line in head + lines + tail)


def healthy(lags=None) -> str:
    lags = lags or {}
    return record([switch_line(k, lags.get(k, 0.01)) for k in range(5)])


def sources(**texts) -> dict[str, RecordSource]:
    return {name: RecordSource(f"nodes/{name}/switches.jsonl", text) for name, text in texts.items()}


def test_healthy_run_is_valid_and_phases_start_at_the_latest_switch():
    timeline = build_timeline(schedule(), sources(push1=healthy({2: 0.03}), client7=healthy({2: 0.07})))
    assert timeline["valid"] is True and timeline["reasons"] == []
    third = timeline["phases"][2]
    assert third["planned_start"] == T0 + 16 and third["start"] == pytest.approx(T0 + 16.07)
    assert timeline["phases"][1]["end"] == pytest.approx(T0 + 16.07)  # a phase ends when the next begins
    assert timeline["phases"][3]["end"] == pytest.approx(T0 + 32.01)  # the final switch
    assert timeline["lag_s"]["count"] == 10 and timeline["lag_s"]["max"] == pytest.approx(0.07)
    assert timeline["lag_s"]["p50"] == pytest.approx(0.01)
    assert timeline["lag_s"]["worst"] == {"node": "client7", "phase": 2, "name": "isp1 down, isp2 up",
                                          "switch": "switch to phase 3 'isp1 down, isp2 up'",
                                          "lag_s": pytest.approx(0.07)}


def test_late_switch():
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=healthy({1: 0.35})))
    assert timeline["valid"] is False
    assert timeline["reasons"] == [
        "client7: switch to phase 2 'isp2 down' took effect 0.350 s late (tolerance 0.100 s)"]
    assert timeline["phases"][1]["start"] == pytest.approx(T0 + 8.35)


def test_late_final_switch_names_the_end():
    timeline = build_timeline(schedule(), sources(push1=healthy({4: 1.5}), client7=healthy()))
    assert timeline["reasons"] == [
        "push1: switch to the end (every provider back) took effect 1.500 s late (tolerance 0.100 s)"]


def test_early_switch():
    timeline = build_timeline(schedule(), sources(push1=healthy({3: -0.25}), client7=healthy()))
    assert timeline["reasons"] == [
        "push1: switch to phase 4 'all up again' took effect 0.250 s early (tolerance 0.100 s)"]


def test_lag_within_tolerance_either_way_is_fine():
    timeline = build_timeline(schedule(), sources(push1=healthy({1: 0.099}), client7=healthy({1: -0.099})))
    assert timeline["valid"] is True


def test_missing_record_falls_back_to_the_planned_time_and_is_invalid():
    timeline = build_timeline(schedule(), sources(push1=healthy({1: 0.05}), client7=None))
    assert timeline["reasons"] == ["client7: no record of its switches (nodes/client7/switches.jsonl is missing)"]
    assert timeline["switches"]["client7"] == []
    assert timeline["phases"][1]["start"] == pytest.approx(T0 + 8.05)  # what push1 recorded
    nobody = build_timeline(schedule(switchers=("push1",)), sources(push1=None))
    assert [p["start"] for p in nobody["phases"]] == [T0 + 8 * k for k in range(4)]  # planned only
    assert build_timeline(schedule(switchers=()), {})["reasons"] == [
        "run: the schedule names no switchers, so nothing recorded when the switches took effect"]


def test_record_without_a_switch():
    lines = [switch_line(k) for k in (0, 1, 3, 4)]
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=record(lines)))
    assert timeline["reasons"] == ["client7: no record of the switch to phase 3 'isp1 down, isp2 up'"]


def test_truncated_record():
    text = record([switch_line(k) for k in range(3)], end={"event": "switch", "phase": 3})
    cut = text[:-10]  # the last line (switch 3) cut in the middle, no newline
    assert parse_record(cut).cut and len(parse_record(cut).switches) == 3
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=cut))
    assert timeline["reasons"] == [
        "client7: no record of the switches to phase 4 'all up again', the end (every provider back) "
        "(nodes/client7/switches.jsonl is truncated: its last line is cut)"]
    assert timeline["phases"][3]["start"] == pytest.approx(T0 + 24.01)  # push1 recorded it


def test_record_that_stops_without_done():
    text = "".join(line for line in record([switch_line(k) for k in range(2)]).splitlines(True)[:-1])
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=text))
    assert timeline["reasons"] == [
        "client7: no record of the switches to phase 3 'isp1 down, isp2 up', phase 4 'all up again', the end "
        "(every provider back) (nodes/client7/switches.jsonl ends without 'done': the switcher stopped early)"]


def test_failed_switch_names_the_nft_error_and_does_not_count_as_taken():
    lines = [switch_line(k) for k in range(5)]
    lines[1] = switch_line(1, ok=False, error="Error: Could not process rule: No such file or directory\n")
    timeline = build_timeline(schedule(), sources(push1=healthy({1: 0.02}), client7=record(lines)))
    assert timeline["reasons"] == ["client7: the switch to phase 2 'isp2 down' failed: "
                                   "Error: Could not process rule: No such file or directory"]
    assert timeline["phases"][1]["start"] == pytest.approx(T0 + 8.02)  # only where it took effect
    assert timeline["lag_s"]["count"] == 9
    assert [s["ok"] for s in timeline["switches"]["client7"]] == [True, False, True, True, True]


def test_cancelled_switcher():
    text = record([switch_line(k) for k in range(2)], end={"event": "cancelled", "at": T0 + 12.5})
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=text))
    assert timeline["reasons"] == [
        "client7: its switcher was cancelled at +12.5 s, before the switch to phase 3 'isp1 down, isp2 up' "
        "(planned +16 s); 3 switches not made"]


def test_cancelled_after_every_switch_is_fine():
    text = record([switch_line(k) for k in range(5)], end={"event": "cancelled", "at": T0 + 33})
    assert build_timeline(schedule(), sources(push1=healthy(), client7=text))["valid"] is True


def test_interrupted_run_ends_its_phase_at_the_interruption():
    cancelled = {"event": "cancelled", "at": T0 + 13.0}
    text = record([switch_line(k) for k in range(2)], end=cancelled)
    timeline = build_timeline(schedule(interrupted_at=T0 + 13.0), sources(push1=text, client7=text))
    assert "run: interrupted at +13 s, during phase 2 'isp2 down' (the schedule ends at +32 s)" in timeline["reasons"]
    assert len(timeline["reasons"]) == 3  # and each switcher's cancellation; no "missing" lines for what was never due
    assert timeline["phases"][1]["end"] == T0 + 13.0
    assert timeline["phases"][2]["start"] is None and timeline["phases"][3]["end"] is None
    assert schedule_span(timeline) == (T0, T0 + 13.0)


def test_record_of_another_run_or_another_plan():
    other = record([switch_line(k) for k in range(5)], run_id="run0")
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=other))
    assert timeline["reasons"] == ["client7: its record nodes/client7/switches.jsonl is of run run0, not run1"]
    moved = [switch_line(k) for k in range(5)]
    moved[2] = switch_line(2, planned=T0 + 20)
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=record(moved)))
    assert timeline["reasons"] == [
        "client7: its plan put the switch to phase 3 'isp1 down, isp2 up' at +20 s, the schedule at +16 s"]


def test_router_switcher_checks_every_namespace():
    lines = [switch_line(k, lag=0.02, netns=ns) for k in range(5) for ns in ("tb-isp1", "tb-isp2")]
    lines = [line for line in lines if not (line["phase"] == 2 and line["netns"] == "tb-isp2")]
    lines.append(switch_line(3, lag=0.5, netns="tb-isp1") | {"phase": 3})
    timeline = build_timeline(schedule(switchers=("routers",)), sources(routers=record(lines)))
    assert timeline["reasons"] == [
        "routers (tb-isp1): switch to phase 4 'all up again' took effect 0.500 s late (tolerance 0.100 s)",
        "routers (tb-isp2): no record of the switch to phase 3 'isp1 down, isp2 up'",
    ]
    assert timeline["phases"][3]["start"] == pytest.approx(T0 + 24.5)


def test_reasons_sorted_naturally_and_deduplicated():
    late = healthy({1: 0.5})
    timeline = build_timeline(schedule(switchers=("client10", "client2")), sources(client10=late, client2=late))
    assert [r.split(":")[0] for r in timeline["reasons"]] == ["client2", "client10"]


def test_unusable_schedule_is_an_error_naming_the_field():
    bad = schedule()
    bad["phases"][1]["start"] = "soon"
    with pytest.raises(ScheduleError, match=r"phases\[1\]\.start"):
        build_timeline(bad, {})
    with pytest.raises(ScheduleError, match="phases must be a non-empty list"):
        build_timeline({**schedule(), "phases": []}, {})


def test_planned_only_timeline_is_never_valid():
    old = {"t0": T0, "phases": [{"name": "all up", "down": [], "start": T0, "end": T0 + 8}]}
    legacy = legacy_timeline(old)
    assert legacy["valid"] is False
    assert legacy["reasons"] == ["run: no record of when the switches took effect (planned times only)"]
    assert schedule_span(legacy) == (T0, T0 + 8)


def test_unreadable_lines_are_skipped_and_noted():
    text = healthy().replace('{"event": "done"}', 'garbage\n{"event": "done"}')
    parsed = parse_record(text)
    assert parsed.bad_lines == [7] and parsed.done and not parsed.cut
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=text))
    assert timeline["valid"] is True
    assert timeline["notes"] == ["client7: nodes/client7/switches.jsonl has 1 unreadable line(s) (line 7 first)"]


def test_every_switch_recorded_but_no_done_is_a_note_not_a_reason():
    text = record([switch_line(k) for k in range(5)], end={"event": "done"})[:-8]  # "done" line cut
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=text))
    assert timeline["valid"] is True
    assert timeline["notes"] == [
        "client7: nodes/client7/switches.jsonl records every switch but ends without 'done' (its last line is cut)"]


def test_injected_lag_is_caught_and_said():
    text = healthy({1: 0.5}).replace('"clock":', '"injected_lag_s": 0.5, "clock":', 1)
    timeline = build_timeline(schedule(), sources(push1=healthy(), client7=text))
    assert timeline["reasons"] == [
        "client7: switch to phase 2 'isp2 down' took effect 0.500 s late (tolerance 0.100 s)"]
    assert timeline["notes"] == ["client7: its switches were delayed on purpose by 0.5 s (injected lag)"]


def test_reads_the_record_lines_the_switcher_writes():
    """The contract with `mpstream outage schedule`: its own line builders, read back here."""
    from mpstream.paths.outage import plan as outage_plan

    targets = (outage_plan.Target("tb-isp1", (), False), outage_plan.Target("tb-isp2", (), True))
    switches = [outage_plan.Switch(k, NAMES[k][0] if k < 4 else "end", T0 + 8 * k, targets) for k in range(5)]
    the_plan = outage_plan.Plan("run1", 18.0, 0.0, tuple(switches))
    lines = [outage_plan.start_line(the_plan, 99, "controller", T0 - 3, False)]
    for switch in switches:
        for target in targets:
            failed = "Error: No such file or directory" if (switch.phase, target.netns) == (2, "tb-isp2") else None
            lines.append(outage_plan.switch_line(switch, target, switch.at + 0.004, failed))
    lines.append(outage_plan.cancelled_line(T0 + 40, "SIGTERM"))
    text = "".join(outage_plan.dumps(line) for line in lines)
    timeline = build_timeline(schedule(switchers=("routers",)), sources(routers=text))
    assert timeline["reasons"] == [
        "routers (tb-isp2): the switch to phase 3 'isp1 down, isp2 up' failed: Error: No such file or directory"]
    assert timeline["lag_s"]["count"] == 9 and timeline["lag_s"]["p50"] == pytest.approx(0.004)
    assert [(s["netns"], s["forwarding"]) for s in timeline["switches"]["routers"][:2]] == [
        ("tb-isp1", False), ("tb-isp2", True)]


def unchanged_first(lag: float = 0.0) -> str:
    """A record whose first switch ("all up" with no outage in force) needed no transaction."""
    first = {**switch_line(0, lag), "unchanged": True}
    return record([first] + [switch_line(k, 0.02) for k in range(1, 5)])


def test_a_switch_that_needed_no_transaction_starts_its_phase_but_is_no_lag_figure():
    timeline = build_timeline(schedule(), sources(push1=unchanged_first(), client7=healthy({0: 0.05})))
    assert timeline["valid"] is True
    assert timeline["phases"][0]["start"] == pytest.approx(T0 + 0.05)  # client7's transaction is the latest
    assert timeline["lag_s"]["count"] == 9 and timeline["lag_s"]["unchanged"] == 1
    assert timeline["lag_s"]["p50"] == pytest.approx(0.02)
    assert timeline["switches"]["push1"][0]["unchanged"] is True
    assert "unchanged" not in timeline["switches"]["push1"][1]


def test_a_late_switch_is_late_even_when_it_needed_no_transaction():
    """An injected lag delays the instant itself: the record's time is that instant, late."""
    timeline = build_timeline(schedule(), sources(push1=unchanged_first(0.5), client7=healthy()))
    assert timeline["reasons"] == ["push1: switch to phase 1 'all up' took effect 0.500 s late (tolerance 0.100 s)"]


def test_reads_the_unchanged_mark_the_switcher_writes():
    from mpstream.paths.outage import plan as outage_plan

    target = outage_plan.Target(None, (), False)
    switch = outage_plan.Switch(0, "all up", T0, (target,))
    assert outage_plan.switch_line(switch, target, T0, None, unchanged=True)["unchanged"] is True
    assert "unchanged" not in outage_plan.switch_line(switch, target, T0 + 0.01, None)
    text = record([outage_plan.switch_line(switch, target, T0, None, unchanged=True)])
    assert parse_record(text).switches[0].unchanged is True
    assert parse_record(record([switch_line(0)])).switches[0].unchanged is False


def test_the_report_counts_the_switches_that_needed_no_transaction_apart():
    from mpstream.measurement.report import markdown

    timeline = build_timeline(schedule(), sources(push1=unchanged_first(), client7=unchanged_first()))
    text = "\n".join(markdown.switch_section({"switch_lag_s": timeline["lag_s"], "tolerance_s": 0.1, "phases": []}))
    assert "over 8 switches at every node" in text
    assert "2 more switches found their state in force already" in text


def timed(by: dict[int, str]) -> str:
    """A healthy record whose switches say what timed them (`by`: switch index -> how)."""
    return record([{**switch_line(k, 0.02), **({"timed_by": by[k]} if k in by else {})} for k in range(5)])


def test_the_report_says_what_timed_the_switches():
    from mpstream.measurement.report import markdown

    def sentence(**texts) -> str:
        lag = build_timeline(schedule(), sources(**texts))["lag_s"]
        return "\n".join(markdown.switch_section({"switch_lag_s": lag, "tolerance_s": 0.1, "phases": []}))

    every = {k: "commit" for k in range(5)}
    timeline = build_timeline(schedule(), sources(push1=timed(every), client7=timed({**every, 3: "exit"})))
    assert timeline["lag_s"]["by_commit"] == 9
    assert timeline["switches"]["client7"][3]["timed_by"] == "exit"
    assert "Each switch is timed by the kernel's notice" in sentence(push1=timed(every), client7=timed(every))
    assert "9 switches are timed by the kernel's notice of their commit, 1 by nft's exit" in sentence(
        push1=timed(every), client7=timed({**every, 3: "exit"}))
    # A record from before commit notices were read says nothing of them: its times are nft's exits.
    assert "timed by nft's exit" in sentence(push1=healthy(), client7=healthy())
    assert "timed_by" not in build_timeline(schedule(), sources(push1=healthy()))["switches"]["push1"][0]


def test_only_the_two_known_ways_of_timing_are_read():
    assert parse_record(record([{**switch_line(0), "timed_by": "commit"}])).switches[0].timed_by == "commit"
    assert parse_record(record([{**switch_line(0), "timed_by": "guess"}])).switches[0].timed_by is None
