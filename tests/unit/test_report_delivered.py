"""What the providers delivered per phase, from the switchers' counters, and whether the outages held."""

from __future__ import annotations

from mpstream.measurement.report import delivered

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
