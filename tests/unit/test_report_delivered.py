"""What the providers delivered per phase, from the switchers' counters, and whether the outages held."""

from __future__ import annotations

import json

from mpstream.measurement.report import delivered
from mpstream.measurement.report.timeline import RecordSource, build_timeline

from tests.unit.test_report_mib import record_lines, schedule

META = {"inventory": {"providers": [{"name": "isp1", "nic": "nic1"}, {"name": "isp2", "nic": "nic2"}]}}
PHASES = [{"name": "all up", "start": 10.0}, {"name": "isp2 down", "start": 20.0},
          {"name": "all up again", "start": 30.0}]


def entry(phase: int, nics: list[str], nic1: int, nic2: int, ok: bool = True, netns: str | None = None) -> dict:
    return {"phase": phase, "netns": netns, "nics": nics, "ok": ok, "delivered": {"nic1": nic1, "nic2": nic2}}


def timeline(*entries: dict, node: str = "client1") -> dict:
    return {"phases": PHASES, "switches": {node: list(entries)}}


HELD = timeline(entry(0, [], 0, 0), entry(1, ["nic2"], 500_000, 500_000), entry(2, [], 1_500_000, 500_000),
                entry(3, [], 2_000_000, 1_000_000))


def test_a_phase_is_the_difference_between_the_readings_around_it():
    phases = delivered.node_phases(HELD, META)["client1"]
    half = {"bytes": 500_000, "share": 0.5}
    assert phases[0]["providers"] == {"isp1": half, "isp2": half}
    assert phases[1]["providers"]["isp2"] == {"bytes": 0, "share": 0.0} and phases[1]["down"] == ["isp2"]
    assert phases[2]["total"] == 1_000_000


def test_an_outage_that_held_gives_no_reason():
    assert delivered.reasons(HELD, META) == []


def test_a_down_provider_that_delivered_makes_the_run_invalid_and_says_where():
    leaked = timeline(entry(0, [], 0, 0), entry(1, ["nic2"], 500_000, 500_000), entry(2, [], 1_000_000, 900_000),
                      entry(3, [], 1_500_000, 1_400_000))
    (reason,) = delivered.reasons(leaked, META)
    assert reason.startswith("client1: isp2 delivered 400000 bytes (44.4 % of the node's) in phase 2 'isp2 down'")


def test_a_few_retransmissions_to_a_node_cut_off_from_everything_are_no_leak():
    cut_off = timeline(entry(0, [], 0, 0), entry(1, ["nic1", "nic2"], 500_000, 500_000),
                       entry(2, [], 500_000, 502_000), entry(3, [], 900_000, 900_000))
    assert delivered.reasons(cut_off, META) == []
    assert delivered.node_phases(cut_off, META)["client1"][1]["providers"]["isp2"]["share"] == 1.0


def test_a_returning_providers_first_burst_is_not_counted_against_the_phase_that_held_it_down():
    # A CI run: isp2 held down with the stream stalled on the other provider (the node got
    # 1.5 kB in the phase), then 16 kB came in on isp2 between its restoring switch and that
    # switch's reading. The reading shortly before the switch ends the down phase.
    def with_before(item: dict, nic1: int, nic2: int) -> dict:
        return {**item, "delivered_before": {"nic1": nic1, "nic2": nic2}}

    burst = timeline(entry(0, [], 0, 0), entry(1, ["nic2"], 500_000, 500_000),
                     with_before(entry(2, [], 501_500, 516_100), 501_500, 500_000),
                     with_before(entry(3, [], 900_000, 900_000), 900_000, 900_000))
    assert delivered.reasons(burst, META) == []
    assert delivered.node_phases(burst, META)["client1"][1]["providers"]["isp2"]["bytes"] == 0
    without = {"phases": PHASES, "switches": {"client1": [
        {k: v for k, v in item.items() if k != "delivered_before"} for item in burst["switches"]["client1"]]}}
    assert len(delivered.reasons(without, META)) == 1  # as the run was judged before


def test_without_both_readings_a_phase_is_not_judged():
    failed = timeline(entry(0, [], 0, 0), entry(1, ["nic2"], 500_000, 500_000, ok=False),
                      entry(2, [], 1_000_000, 900_000), entry(3, [], 1_500_000, 1_400_000))
    phases = delivered.node_phases(failed, META)["client1"]
    assert sorted(phases) == [2]  # phases 0 and 1 lack the reading of switch 1
    assert delivered.reasons(failed, META) == []


def test_router_targets_and_records_without_counters_are_ignored():
    routers = timeline(*[{**entry(i, [], 0, 0, netns="tb-isp1")} for i in range(4)], node="routers")
    legacy = {"phases": PHASES, "switches": {"client1": [{"phase": i, "netns": None, "nics": [], "ok": True}
                                                         for i in range(4)]}}
    assert delivered.node_phases(routers, META) == {} and delivered.node_phases(legacy, META) == {}


def test_the_summary_gains_the_delivered_figures_beside_the_nic_counters():
    summary = {"phases": [{"name": p["name"], "nodes": {"client1": {"isp1": {"rx_share": 0.5},
                                                                      "isp2": {"rx_share": 0.5}}}} for p in PHASES]}
    delivered.annotate(summary, HELD, META)
    figures = summary["phases"][1]["nodes"]["client1"]
    assert figures["isp2"] == {"rx_share": 0.5, "delivered_rx_bytes": 0, "delivered_rx_share": 0.0}
    assert figures["isp1"]["delivered_rx_bytes"] == 1_000_000


def test_the_reading_before_a_switch_goes_from_the_record_into_the_timeline():
    lines = [json.loads(line) for line in record_lines([None] * 5).splitlines()]
    for line in lines:
        if line["event"] == "switch":
            line["delivered"] = {"nic1": 100 * line["phase"] + 50}
            line["delivered_before"] = {"nic1": 100 * line["phase"]}
    record = "".join(json.dumps(line) + "\n" for line in lines)
    built = build_timeline(schedule(), {"client1": RecordSource("c.jsonl", record)})
    assert built["switches"]["client1"][2]["delivered"] == {"nic1": 250}
    assert built["switches"]["client1"][2]["delivered_before"] == {"nic1": 200}
