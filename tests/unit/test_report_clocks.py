"""Nodes' clocks against the controller's: the offset's bounds, the verdict, the report's section,
and the node's own reading of its kernel clock."""

from __future__ import annotations

import time

import pytest
from mpstream.measurement import clock
from mpstream.measurement.recorder.csvformat import Delta, format_row, parse_line
from mpstream.measurement.report import clocks, markdown
from mpstream.measurement.report.analysis import NodeData
from mpstream.measurement.report.runfolder import Run, place_on_controller_clock
from mpstream.measurement.report.validity import verdict

ASKED = 1_800_000_000.0


def node(offset_s: float, took_s: float = 0.4, shared: bool = False, **kernel) -> dict:
    """A node description whose clock was read `offset_s` off, in the middle of a `took_s` reading."""
    return {"clock": {"time": ASKED + took_s / 2 + offset_s, "controller_asked": ASKED,
                      "controller_answered": ASKED + took_s, "shared_with_controller": shared,
                      "synchronized": True, "esterror_s": 0.0004, "maxerror_s": 0.02, **kernel}}


def test_the_offset_lies_between_the_controllers_two_readings():
    # A node 2.0 s ahead read its clock 0.1 s after the controller asked and 0.3 s before the answer
    # was in: the controller can tell 1.9 s give or take 0.2 s, which holds the truth.
    offset, uncertainty = clocks.offset_bounds(ASKED + 0.1 + 2.0, ASKED, ASKED + 0.4)
    assert offset == pytest.approx(1.9) and uncertainty == pytest.approx(0.2)
    assert offset - uncertainty <= 2.0 <= offset + uncertainty


def test_a_node_certainly_off_by_more_than_the_tolerance_makes_the_run_invalid():
    meta = {"nodes": {"client2": node(0.5), "client10": node(-0.35, took_s=0.4), "push1": node(0.05),
                      "server1": node(3.0, shared=True), "old": {"kernel": "6.1"}}}
    found = clocks.node_clocks(meta)
    assert list(found) == ["client2", "client10", "push1", "server1"]  # natural order; "old" read none
    assert found["client2"]["offset_s"] == pytest.approx(0.5)
    assert found["client2"]["uncertainty_s"] == pytest.approx(0.2)
    reasons = clocks.reasons(meta, tolerance_s=0.1)
    # client2: at least 0.3 s off. client10: 0.35 - 0.2 = 0.15 s at least, still over 0.1 s.
    # push1 may be on time; server1 shares the controller's clock whatever the reading says.
    assert [r.split(":")[0] for r in reasons] == ["client2", "client10"]
    assert "+0.500 s (± 0.200 s)" in reasons[0] and "NTP" in reasons[0]
    assert clocks.reasons(meta, tolerance_s=0.4) == []
    assert set(verdict(meta, {}, {"tolerance_s": 0.1})) == set(reasons)


def test_the_report_says_how_far_each_clock_was_off():
    meta = {"nodes": {"client2": node(0.5, synchronized=False, esterror_s=16.0), "server1": node(0.0, shared=True)}}
    text = "\n".join(markdown.clock_section({"clocks": clocks.node_clocks(meta)}))
    assert "| client2 | +0.500 s ± 0.200 s | none | no | 16000.0 ms |" in text
    assert "| server1 | shared (emulated node) | none | yes | 0.4 ms |" in text
    assert markdown.clock_section({}) == []


def test_the_node_reads_its_own_clock_and_what_its_kernel_says_of_it():
    before = time.time()
    reading = clock.read()
    assert before <= reading["time"] <= time.time()
    assert isinstance(reading["synchronized"], bool)
    assert reading["maxerror_s"] >= reading["esterror_s"] >= 0
    # The kernel's answers in the report's words.
    assert clock.kernel_state(0, 0x2001, 20_000, 400) == {"synchronized": True, "state": "ok",
                                                         "maxerror_s": 0.02, "esterror_s": 0.0004}
    assert clock.kernel_state(0, clock.STA_UNSYNC, 16_000_000, 16_000_000)["synchronized"] is False
    assert clock.kernel_state(clock.TIME_ERROR, 0, 0, 0)["state"] == "not synchronised"


def test_an_allowed_for_offset_leaves_the_run_valid_and_the_report_says_by_how_much():
    corrected = node(2.0, took_s=0.1)
    corrected["clock"]["correction_s"] = 2.0
    meta = {"nodes": {"client1": corrected, "push1": node(0.0)}}
    assert clocks.corrections(meta) == {"client1": 2.0}
    assert clocks.reasons(meta, tolerance_s=0.1) == []
    text = "\n".join(markdown.clock_section({"clocks": clocks.node_clocks(meta)}))
    assert "| client1 | +2.000 s ± 0.050 s | +2.000 s | yes | 0.4 ms |" in text
    # A correction the run did not make (here a wrong one) still shows as an offset.
    corrected["clock"]["correction_s"] = 1.0
    assert [r.split(":")[0] for r in clocks.reasons(meta, tolerance_s=0.1)] == ["client1"]


def test_the_report_places_a_nodes_records_and_latencies_on_the_controllers_clock():
    """client1's clock runs 2 s ahead and push1's 0.5 s ahead: client1's rates and player times
    move back 2 s, its latencies (player's clock minus publisher's) shrink by 1.5 s."""
    meta = {"nodes": {"client1": node(2.0, took_s=0.1), "push1": node(0.5, took_s=0.1)},
            "inventory": {"nodes": {"client1": {"roles": ["client"]}, "push1": {"roles": ["push"]}}}}
    meta["nodes"]["client1"]["clock"]["correction_s"] = 2.0
    meta["nodes"]["push1"]["clock"]["correction_s"] = 0.5
    rows = [parse_line(format_row(1800000010.0, "nic1", Delta(rx_bytes=100), 0.1))]
    player = {"started_at": 1800000012.0, "ended_at": 1800000020.0,
              "latency_ms": {"p50": 1600.0, "p95": 1700.0, "p99": 1750.0, "max": 1800.0, "count": 9},
              "display_latency_ms": {"p50": 2600.0, "p95": None}}
    run = Run(path=None, meta=meta, nodes={"client1": NodeData(rows=rows, player=player), "push1": NodeData()})
    place_on_controller_clock(run)
    client = run.nodes["client1"]
    assert [r.timestamp for r in client.rows] == [1800000008.0]
    assert (client.player["started_at"], client.player["ended_at"]) == (1800000010.0, 1800000018.0)
    assert client.player["latency_ms"] == {"p50": 100.0, "p95": 200.0, "p99": 250.0, "max": 300.0, "count": 9}
    assert client.player["display_latency_ms"] == {"p50": 1100.0, "p95": None}
