"""The schedule's pure parts: the plan checked field by field, its order, the record's lines,
and how a wait for an instant is cut into sleeps."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import threading
import time

import pytest
from mpstream.paths.outage.plan import (
    FORMAT,
    PlanError,
    Target,
    cancelled_line,
    done_line,
    dumps,
    parse_plan,
    start_line,
    switch_line,
)
from mpstream.paths.outage.waiting import FINAL_S, MIN_SLEEP_S, SPIN_S, Interrupter, sleep_step

EXAMPLE = {
    "format": "mpstream-schedule/1",
    "run_id": "20261201T101500Z",
    "expiry_s": 18.0,
    "lag_s": 0.0,
    "switches": [
        {"phase": 0, "name": "all up", "at": 1764584100.0,
         "apply": [{"netns": None, "nics": [], "forwarding": False}]},
        {"phase": 1, "name": "isp2 down", "at": 1764584108.0,
         "apply": [{"netns": None, "nics": ["nic2"], "forwarding": False}]},
        {"phase": 4, "name": "end", "at": 1764584132.0,
         "apply": [{"netns": None, "nics": [], "forwarding": False}]},
    ],
}


def plan_text(**changes) -> str:
    plan = copy.deepcopy(EXAMPLE)
    plan.update(changes)
    return json.dumps(plan)


def with_switch(index: int, **changes) -> str:
    plan = copy.deepcopy(EXAMPLE)
    plan["switches"][index].update(changes)
    return json.dumps(plan)


def with_target(index: int, **changes) -> str:
    plan = copy.deepcopy(EXAMPLE)
    plan["switches"][index]["apply"][0].update(changes)
    return json.dumps(plan)


def test_the_documented_example_is_read_as_written():
    plan = parse_plan(json.dumps(EXAMPLE))
    assert plan.run_id == "20261201T101500Z" and plan.expiry_s == 18.0 and plan.lag_s == 0.0
    assert [(s.phase, s.name, s.at) for s in plan.switches] == [
        (0, "all up", 1764584100.0), (1, "isp2 down", 1764584108.0), (4, "end", 1764584132.0)]
    assert plan.switches[1].targets == (Target(None, ("nic2",), False),)
    assert plan.switches[0].targets[0].clears and not plan.switches[1].targets[0].clears


def test_lag_defaults_to_zero_and_unknown_fields_are_allowed():
    plan = json.loads(plan_text(comment="written by the controller"))
    del plan["lag_s"]
    assert parse_plan(json.dumps(plan)).lag_s == 0.0


def test_the_clock_offset_defaults_to_zero_and_converts_between_the_two_clocks():
    assert parse_plan(plan_text()).clock_offset_s == 0.0
    ahead = parse_plan(plan_text(clock_offset_s=-2.5))
    assert ahead.local(1000.0) == 997.5 and ahead.controller(997.5) == 1000.0


def test_switches_are_kept_in_the_order_of_their_instants_ties_in_plan_order():
    plan = copy.deepcopy(EXAMPLE)
    plan["switches"] = [
        {**plan["switches"][2]},
        {**plan["switches"][1], "name": "first at 108"},
        {**plan["switches"][0]},
        {**plan["switches"][1], "name": "second at 108"},
    ]
    order = [s.name for s in parse_plan(json.dumps(plan)).switches]
    assert order == ["all up", "first at 108", "second at 108", "end"]


def test_a_router_plan_lists_each_namespace_and_interface_once():
    plan = copy.deepcopy(EXAMPLE)
    for switch in plan["switches"]:
        switch["apply"] = [{"netns": "tb-isp1", "nics": [], "forwarding": switch["phase"] == 1},
                           {"netns": "tb-isp2", "nics": ["up0"], "forwarding": False}]
    parsed = parse_plan(json.dumps(plan))
    assert parsed.namespaces() == ["tb-isp1", "tb-isp2"]
    assert parsed.interfaces() == [("up0", "tb-isp2")]
    assert parsed.switches[1].targets[0] == Target("tb-isp1", (), True)


def test_the_nics_to_count_are_optional_and_checked_like_the_others():
    assert parse_plan(json.dumps(EXAMPLE)).count == ()
    parsed = parse_plan(plan_text(count=["nic1", "nic2", "nic3"]))
    assert parsed.count == ("nic1", "nic2", "nic3")
    # the scheduler checks that they exist before the first switch, as it does for the dropped ones
    assert parsed.interfaces() == [("nic2", None), ("nic1", None), ("nic3", None)]


@pytest.mark.parametrize(("text", "field"), [
    (plan_text(format="mpstream-schedule/2"), "format"),
    (plan_text(run_id=""), "run_id"),
    (plan_text(expiry_s=0), "expiry_s"),
    (plan_text(expiry_s=True), "expiry_s"),
    (plan_text(expiry_s="18"), "expiry_s"),
    (plan_text(lag_s=-0.5), "lag_s"),
    (plan_text(switches=[]), "switches"),
    (plan_text(switches={"phase": 0}), "switches"),
    (with_switch(1, at="soon"), "switches[1].at"),
    (with_switch(1, at=-1), "switches[1].at"),
    (with_switch(1, at=float("inf")), "switches[1].at"),
    (with_switch(2, phase=-1), "switches[2].phase"),
    (with_switch(2, phase=1.5), "switches[2].phase"),
    (with_switch(0, name=None), "switches[0].name"),
    (with_switch(0, apply=[]), "switches[0].apply"),
    (with_switch(0, apply=["nic2"]), "switches[0].apply[0]"),
    (with_target(1, nics="nic2"), "switches[1].apply[0].nics"),
    (with_target(1, nics=["nic2", 'x"; flush ruleset']), "switches[1].apply[0].nics[1]"),
    (with_target(1, nics=["a-name-longer-than-15"]), "switches[1].apply[0].nics[0]"),
    (with_target(1, nics=["nic2", "nic2"]), "switches[1].apply[0].nics"),
    (with_target(1, forwarding="no"), "switches[1].apply[0].forwarding"),
    (with_target(1, netns="../etc"), "switches[1].apply[0].netns"),
    (with_target(1, netns=""), "switches[1].apply[0].netns"),
    (plan_text(count="nic1"), "count"),
    (plan_text(count=["nic1", "nic 2"]), "count[1]"),
    (plan_text(count=["nic1", "nic1"]), "count"),
    (plan_text(clock_offset_s="0.2"), "clock_offset_s"),
    (plan_text(clock_offset_s=float("nan")), "clock_offset_s"),
])
def test_a_bad_field_is_named_in_a_one_line_error(text, field):
    with pytest.raises(PlanError) as raised:
        parse_plan(text)
    message = str(raised.value)
    assert message.startswith(f"{field}:") and "\n" not in message


@pytest.mark.parametrize(("drop", "field"), [
    ("run_id", "run_id"), ("expiry_s", "expiry_s"), ("switches", "switches"), ("format", "format")])
def test_a_missing_field_is_named(drop, field):
    plan = copy.deepcopy(EXAMPLE)
    del plan[drop]
    with pytest.raises(PlanError, match=rf"^{re.escape(field)}: missing$"):
        parse_plan(json.dumps(plan))


@pytest.mark.parametrize("key", ["netns", "nics", "forwarding"])
def test_a_target_names_every_key_explicitly(key):
    plan = copy.deepcopy(EXAMPLE)
    del plan["switches"][1]["apply"][0][key]
    with pytest.raises(PlanError, match=rf"^switches\[1\]\.apply\[0\]\.{key}: missing$"):
        parse_plan(json.dumps(plan))


def test_the_same_namespace_twice_in_one_switch_is_refused():
    plan = copy.deepcopy(EXAMPLE)
    plan["switches"][1]["apply"].append({"netns": None, "nics": [], "forwarding": True})
    with pytest.raises(PlanError, match=r"^switches\[1\]\.apply\[1\]\.netns: "):
        parse_plan(json.dumps(plan))


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null"])
def test_what_is_not_a_json_object_is_refused(text):
    with pytest.raises(PlanError):
        parse_plan(text)


def test_a_switch_line_says_when_it_took_effect_and_how_late():
    plan = parse_plan(json.dumps(EXAMPLE))
    switch = plan.switches[1]
    line = switch_line(switch, switch.targets[0], 1764584108.0123, None)
    assert line == {"event": "switch", "phase": 1, "name": "isp2 down", "netns": None, "nics": ["nic2"],
                    "forwarding": False, "planned": 1764584108.0, "actual": 1764584108.0123,
                    "lag_s": pytest.approx(0.0123, abs=1e-6), "ok": True, "error": None}
    timed = switch_line(switch, switch.targets[0], 1764584108.0123, None, timed_by="commit",
                        nft_returned=1764584108.04)
    assert timed["timed_by"] == "commit" and timed["nft_returned"] == 1764584108.04
    refused = switch_line(switch, switch.targets[0], 1764584108.5, "Error: Could not process rule")
    assert refused["ok"] is False and refused["error"] == "Error: Could not process rule"
    assert refused["lag_s"] == pytest.approx(0.5)


def test_the_record_frames_the_switches_with_start_and_done_or_cancelled():
    plan = parse_plan(plan_text(lag_s=2.5))
    start = start_line(plan, 4242, "node-a", 1764584090.5, realtime=True)
    assert {k: start[k] for k in ("event", "run_id", "pid", "host", "clock")} == {
        "event": "start", "run_id": "20261201T101500Z", "pid": 4242, "host": "node-a", "clock": 1764584090.5}
    assert start["injected_lag_s"] == 2.5 and start["format"] == FORMAT and start["switches"] == 3
    assert done_line() == {"event": "done"}
    assert cancelled_line(1764584101.0, "SIGTERM") == {"event": "cancelled", "at": 1764584101.0, "signal": "SIGTERM"}
    text = dumps(start)
    assert text.endswith("\n") and text.count("\n") == 1 and json.loads(text) == start


def run_wait(left: float, oversleep: float) -> tuple[float, float, int]:
    """Follow sleep_step on a simulated clock whose sleeps last `oversleep` longer than asked
    and whose each look at the clock costs 50 us (a sleep at least 1 us): (time past the instant when the wait ends,
    time spent watching the clock, sleeps)."""
    now, spun, sleeps = 0.0, 0.0, 0
    while (step := sleep_step(left - now)) is not None:
        if step > 0:
            assert step <= 1.0
            now += max(step, 1e-6) + oversleep  # even a sleep of nothing takes a system call
            sleeps += 1
        else:
            now += 50e-6
            spun += 50e-6
    return now - left, spun, sleeps


@pytest.mark.parametrize("oversleep", [0.0, 60e-6, 0.001, 0.003])
@pytest.mark.parametrize("left", [0.001, 0.015, 0.3, 7.25])
def test_a_wait_ends_at_the_instant_with_little_clock_watching(left, oversleep):
    late, spun, sleeps = run_wait(left, oversleep)
    assert 0 <= late <= max(oversleep, 50e-6) + 1e-9
    assert spun <= SPIN_S + MIN_SLEEP_S + 50e-6 + 1e-9  # the last look may start just before the end
    assert sleeps <= int(left) + 3  # one per second at most, then the short final sleep


def test_the_coarse_sleep_leaves_the_final_stretch_to_a_short_sleep():
    assert sleep_step(5.0) == 1.0
    assert sleep_step(0.5) == pytest.approx(0.5 - FINAL_S)
    assert sleep_step(FINAL_S) == pytest.approx(FINAL_S - SPIN_S)
    assert sleep_step(SPIN_S / 2) == 0.0
    assert sleep_step(0.0) is None and sleep_step(-3.0) is None


def test_a_signal_ends_a_wait_at_once_and_is_remembered():
    before = signal.getsignal(signal.SIGTERM)
    interrupter = Interrupter()
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        began = time.monotonic()
        assert interrupter.sleep_until(time.time() + 30) is False
        assert time.monotonic() - began < 5
        assert interrupter.interrupted and interrupter.signal == signal.SIGTERM
        assert interrupter.sleep_until(time.time() - 1) is False  # once stopped, never switches again
    finally:
        interrupter.close()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_wait_without_a_signal_reaches_its_instant():
    interrupter = Interrupter()
    try:
        at = time.time() + 0.15
        assert interrupter.sleep_until(at) is True
        assert time.time() >= at
    finally:
        interrupter.close()


NETSTAT = """TcpExt: SyncookiesSent SyncookiesRecv
TcpExt: 0 0
MPTcpExt: MPCapableSYNRX MPJoinSynRx AddAddr RmAddr MPFailRx
MPTcpExt: 4 7 2 1 0
"""


def test_the_mptcp_counters_are_read_from_netstat(tmp_path):
    from mpstream.paths.outage import mib

    assert mib.parse(NETSTAT) == {"MPTcpExtMPCapableSYNRX": 4, "MPTcpExtMPJoinSynRx": 7, "MPTcpExtAddAddr": 2,
                                  "MPTcpExtRmAddr": 1, "MPTcpExtMPFailRx": 0}
    assert mib.parse("TcpExt: A\nTcpExt: 1\n") == {}
    netstat = tmp_path / "netstat"
    netstat.write_text(NETSTAT)
    assert mib.read(str(netstat))["MPTcpExtMPJoinSynRx"] == 7
    assert mib.read(str(tmp_path / "missing")) is None
    assert mib.read()  # this kernel speaks MPTCP: its own counters are there
