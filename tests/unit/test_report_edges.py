"""The report with origins and edges: a host named in a phase's `down` (its node cut off) is kept
apart from the providers down, and the edges' saved /streams become summary.json's `edges` and a
table in report.md (one report of a synthetic run without plots, under 1 s)."""

from __future__ import annotations

import json

from mpstream.cli import main
from mpstream.measurement.report.analysis import split_down
from mpstream.measurement.report.edges import edges_summary, edges_table
from test_report_command import T0, make_run

META = {"inventory": {
    "providers": [{"name": "isp1", "index": 1}, {"name": "isp2", "index": 2}],
    "nodes": {"origin1": {"roles": ["server", "origin"], "relay_url": "rtmp://[2001:2:0:102::a]:1935/live/s"},
              "origin2": {"roles": ["server", "origin"], "relay_url": "rtmp://[2001:2:0:103::a]:1935/live/s",
                          "relay_addresses": ["2001:2:0:103::a/64", "198.18.3.10/26"]},
              "edge4": {"roles": ["server", "edge"]}},
}}
A, B = "rtmp://[2001:2:0:102::a]:1935/live", "rtmp://198.18.3.10:1935/live"
STREAMS = [
    {"name": "live/s", "publishing": True, "pull": {
        "origin": B, "delivering_origin": B, "origins": [A, B], "switches": 2, "connections_failed": 3,
        "switch_log": [
            {"mode": "aligned", "at": T0 + 20.9, "gap_ms": 812.4, "origin": B, "previous_origin": A,
             "reason": "no media for 0.8 s"},
            {"mode": "aligned", "at": T0 + 31.0, "gap_ms": None, "origin": "rtmp://elsewhere/live",
             "previous_origin": B, "reason": "closed"}]}},
    {"name": "live/local", "publishing": True},  # published to the edge itself: not a pull
]


def test_down_names_hosts_apart_from_providers():
    assert split_down(META, [], ["isp2", "origin1"]) == (("isp2",), ("origin1",))
    # a host known only from the run's folders, and a name nobody knows (kept as before)
    assert split_down({}, ["push1"], ["push1", "isp9"]) == (("isp9",), ("push1",))


def test_edges_name_origins_by_host_and_time_switches_from_t0():
    edges = edges_summary({"edge4": STREAMS, "edge5": {"oops": 1}, "edge6": [STREAMS[1]]}, T0, META)
    (entry,) = edges["edge4"]["streams"]
    assert entry["origins_used"] == ["origin1", "origin2", "rtmp://elsewhere/live"]
    assert entry["origin_at_end"] == "origin2" and entry["switches"] == 2
    assert [(s["at_s"], s["from"], s["to"], s["gap_ms"]) for s in entry["switch_log"]] == [
        (20.9, "origin1", "origin2", 812.4), (31.0, "origin2", "rtmp://elsewhere/live", None)]
    assert edges["edge5"]["streams"] == [] and "not a list" in edges["edge5"]["note"]
    assert edges["edge6"] == {"streams": [], "note": "no pulled stream at the players' end"}
    rows = edges_table(edges)
    assert rows[0][:3] == ["edge4", "live/s", "origin1 -> origin2 -> rtmp://elsewhere/live"]
    assert "20.9 s origin1 -> origin2 (aligned, gap 812 ms)" in rows[0][3]


def test_a_run_with_a_node_cut_off_and_an_edge_reports_both(tmp_path, capsys):
    run = make_run(tmp_path)
    schedule = json.loads((run / "schedule.json").read_text())
    schedule["phases"][2]["down"] = ["isp1", "server1"]  # phase 3: isp1 everywhere and server1 cut off
    (run / "schedule.json").write_text(json.dumps(schedule))
    (run / "nodes/server1/edge-streams.json").write_text(json.dumps(STREAMS))
    assert main(["report", str(run), "--no-plots"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    phase = summary["phases"][2]
    assert phase["down"] == ["isp1"] and phase["down_nodes"] == ["server1"]
    assert "down_nodes" not in summary["phases"][1]
    # the handover into phase 3 is onto the providers left, isp2: the host is no provider
    assert {tuple(e["surviving"]) for e in summary["handover_s"] if e["to"] == phase["name"]} == {("isp2",)}
    assert summary["edges"]["server1"]["streams"][0]["switches"] == 2
    report = (run / "report.md").read_text()
    assert "down: isp1, server1 (all its providers)" in report
    assert "## Edges" in report and "| server1 | live/s |" in report
    assert "edge server1 live/s: origins" in capsys.readouterr().out
