"""MPTCP counters recorded with each switch: per node and phase, what changed."""

from __future__ import annotations

import json

from mpstream.cli import main
from mpstream.measurement.report.mib import deltas, mptcp_mib, short_name
from mpstream.measurement.report.switchrecord import parse_record
from mpstream.measurement.report.timeline import RecordSource, build_timeline

from tests.unit.test_report_command import PHASE_S, PHASES, T0, make_run

# cumulative counters of client1 right after switches 0..4 (phase k lies between snapshot k and k+1)
CLIENT_SNAPSHOTS = [
    {"MPTcpExtMPJoinSynRx": 2, "MPTcpExtAddAddr": 1, "MPTcpExtRmAddr": 0, "MPTcpExtMPFailTx": 0},
    {"MPTcpExtMPJoinSynRx": 2, "MPTcpExtAddAddr": 1, "MPTcpExtRmAddr": 0, "MPTcpExtMPFailTx": 0},
    {"MPTcpExtMPJoinSynRx": 2, "MPTcpExtAddAddr": 1, "MPTcpExtRmAddr": 1, "MPTcpExtMPFailTx": 0},
    {"MPTcpExtMPJoinSynRx": 5, "MPTcpExtAddAddr": 2, "MPTcpExtRmAddr": 1, "MPTcpExtMPFailTx": 1},
    {"MPTcpExtMPJoinSynRx": 6, "MPTcpExtAddAddr": 2, "MPTcpExtRmAddr": 1, "MPTcpExtMPFailTx": 1,
     "MPTcpExtMPTCPRetrans": 40},  # a counter the earlier snapshots did not list counts from 0
]


def record_lines(snapshots: list[dict | None]) -> str:
    lines = [{"event": "start", "run_id": "r1", "host": "client1"}]
    for k, mib in enumerate(snapshots):
        line = {"event": "switch", "phase": k, "name": PHASES[k][0] if k < 4 else "end", "netns": None,
                "nics": [], "forwarding": False, "planned": T0 + k * PHASE_S, "actual": T0 + k * PHASE_S + 0.01,
                "ok": True, "error": None}
        if mib is not None:
            line["mib"] = mib
        lines.append(line)
    lines.append({"event": "done"})
    return "".join(json.dumps(line) + "\n" for line in lines)


def schedule() -> dict:
    return {"format": "mpstream-schedule/1", "run_id": "r1", "t0": T0, "tolerance_s": 0.1,
            "phases": [{"name": n, "down": d, "start": T0 + k * PHASE_S, "end": T0 + (k + 1) * PHASE_S}
                       for k, (n, d) in enumerate(PHASES)]}


def test_parse_keeps_whole_numbers_only():
    text = record_lines([{"MPTcpExtMPJoinSynRx": 3, "MPTcpExtAddAddr": 1.0, "bogus": "x", "flag": True}])
    (event,) = parse_record(text).switches
    assert dict(event.mib) == {"MPTcpExtAddAddr": 1, "MPTcpExtMPJoinSynRx": 3}
    assert parse_record(record_lines([None])).switches[0].mib is None


def test_deltas_per_phase_only_counters_that_changed():
    timeline = build_timeline(schedule(), {"client1": RecordSource("c.jsonl", record_lines(CLIENT_SNAPSHOTS))})
    assert timeline["switches"]["client1"][3]["mib"]["MPTcpExtMPJoinSynRx"] == 5
    found = mptcp_mib(timeline)
    assert list(found) == ["client1"]
    assert [(e["phase"], e["name"], e["changed"]) for e in found["client1"]] == [
        (0, "all up", {}),
        (1, "isp2 down", {"MPTcpExtRmAddr": 1}),
        (2, "isp1 down, isp2 up", {"MPTcpExtAddAddr": 1, "MPTcpExtMPFailTx": 1, "MPTcpExtMPJoinSynRx": 3}),
        (3, "all up again", {"MPTcpExtMPJoinSynRx": 1, "MPTcpExtMPTCPRetrans": 40}),
    ]


def test_a_phase_without_both_snapshots_is_left_out_and_no_counters_say_nothing():
    partial = [CLIENT_SNAPSHOTS[0], None, CLIENT_SNAPSHOTS[2], CLIENT_SNAPSHOTS[3], None]
    timeline = build_timeline(schedule(), {"client1": RecordSource("c.jsonl", record_lines(partial))})
    assert [e["phase"] for e in mptcp_mib(timeline)["client1"]] == [2]
    bare = build_timeline(schedule(), {"client1": RecordSource("c.jsonl", record_lines([None] * 5))})
    assert mptcp_mib(bare) == {}
    assert "mib" not in bare["switches"]["client1"][0]


def test_a_counter_that_went_down_keeps_its_negative_delta():
    assert deltas({"MPTcpExtMPJoinSynRx": 7, "MPTcpExtAddAddr": 1}, {"MPTcpExtMPJoinSynRx": 2,
                                                                      "MPTcpExtAddAddr": 1}) == {
        "MPTcpExtMPJoinSynRx": -5}
    assert short_name("MPTcpExtMPJoinSynRx") == "MPJoinSynRx" and short_name("Other") == "Other"


def add_counters(run, node: str, snapshots: list[dict]) -> None:
    path = run / "nodes" / node / "switches.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    switches = [line for line in lines if line["event"] == "switch"]
    for line, mib in zip(switches, snapshots, strict=True):
        line["mib"] = mib
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_summary_and_report_show_the_counters_per_node_and_phase(tmp_path):
    run = make_run(tmp_path)
    add_counters(run, "client1", CLIENT_SNAPSHOTS)
    assert main(["report", str(run), "--no-plots"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["mptcp_mib"]) == ["client1"]  # the other switchers recorded no counters
    assert summary["mptcp_mib"]["client1"][2]["changed"]["MPTcpExtMPJoinSynRx"] == 3
    report = (run / "report.md").read_text()
    assert "## MPTCP counters per phase" in report
    assert "| client1 | 3. isp1 down, isp2 up | AddAddr +1, MPFailTx +1, MPJoinSynRx +3 |" in report
    assert "| client1 | 1. all up | no change |" in report


def test_without_counters_the_report_says_nothing_about_them(tmp_path):
    run = make_run(tmp_path)
    assert main(["report", str(run), "--no-plots"]) == 0
    assert "mptcp_mib" not in json.loads((run / "summary.json").read_text())
    assert "MPTCP counters" not in (run / "report.md").read_text()


def test_a_batch_shows_median_and_max_change_over_its_valid_runs(tmp_path):
    from tests.unit.test_report_batch import make_batch

    batch = make_batch(tmp_path, runs={"001": (1.0, 0.0), "002": (2.0, 2.0), "003": (3.0, 0.0)}, missing=False)
    more_joins = [dict(s) for s in CLIENT_SNAPSHOTS]
    for snapshot in more_joins[3:]:
        snapshot["MPTcpExtMPJoinSynRx"] += 2  # 5 joins when isp1 went down, not 3
    absurd = [{k: v * 1000 for k, v in s.items()} for s in CLIENT_SNAPSHOTS]
    for run, snapshots in (("001", CLIENT_SNAPSHOTS), ("002", CLIENT_SNAPSHOTS), ("003", more_joins),
                           ("004", absurd)):
        add_counters(batch / run, "client1", snapshots)
    assert main(["report", str(batch), "--no-plots"]) == 3  # 004 is invalid, and left out
    counters = json.loads((batch / "batch-summary.json").read_text())["mptcp_mib"]
    after_isp1 = counters["client1"][2]
    assert (after_isp1["name"], after_isp1["runs"]) == ("isp1 down, isp2 up", 3)
    assert after_isp1["changed"]["MPTcpExtMPJoinSynRx"] == {"median": 3, "max": 5}
    assert counters["client1"][0]["changed"] == {}
    report = (batch / "report.md").read_text()
    assert ("| client1 | 3. isp1 down, isp2 up | 3 | AddAddr +1 (max +1), MPFailTx +1 (max +1), "
            "MPJoinSynRx +3 (max +5) |") in report
    assert "| client1 | 1. all up | 3 | no change |" in report
