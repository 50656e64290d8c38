"""`mpstream report` on synthetic run folders whose numbers are known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mpstream.cli import main
from mpstream.measurement.recorder.csvformat import Delta, format_row

T0 = 1_800_000_000.0
STEP = 0.5
PHASES = [("all up", []), ("isp2 down", ["isp2"]), ("isp1 down, isp2 up", ["isp1"]), ("all up again", [])]
PHASE_S = 10.0


BOUNDS = (10.0, 20.0, 30.0)


def push_pattern(t: float, handover_s: float, bounds: tuple[float, float, float] = BOUNDS) -> tuple[int, int]:
    """Bytes per 0.5 s sample on (isp1, isp2) for the sample interval ending at `t` (seconds after t0).

    `bounds`: when phases 2, 3 and 4 really began (the traffic follows the real switches).
    """
    first, second, third = bounds
    if t <= first:
        return 60_000, 40_000
    if t <= second:
        return 100_000, 0
    if t <= third:
        if t == second + STEP:
            return 0, 500  # a probe on the surviving provider: too little to count as handover
        return (0, 100_000) if t > second + handover_s - STEP else (0, 0)
    return 50_000, 50_000


def write_rates(path: Path, nics: tuple[str, str], tx_handover: float | None, rx_handover: float | None,
                end_s: float = 40.0, bounds: tuple[float, float, float] = BOUNDS,
                start_s: float = 0.0) -> None:
    """A recorder CSV: interface rows for `nics` (isp1, isp2), `lo` with noise, and `total` rows."""
    lines = []
    k = 0
    while start_s + k * STEP <= end_s + 1e-9:
        t = start_s + k * STEP
        tx = push_pattern(t, tx_handover, bounds) if (k and tx_handover is not None) else (0, 0)
        rx = push_pattern(t, rx_handover, bounds) if (k and rx_handover is not None) else (0, 0)
        total = Delta()
        for name, delta in (
            ("lo", Delta(rx_bytes=7777 if k else 0, tx_bytes=7777 if k else 0)),
            (nics[0], Delta(tx_bytes=tx[0], rx_bytes=rx[0])),
            (nics[1], Delta(tx_bytes=tx[1], rx_bytes=rx[1])),
        ):
            lines.append(format_row(T0 + t, name, delta, STEP if k else 0.0))
            total = total.plus(delta)
        lines.append(format_row(T0 + t, "total", total, STEP if k else 0.0))
        k += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


NODES = ("push1", "server1", "client1")
# a healthy run: small lags, different per node (clocks differ); the latest node is exactly on time,
# so the actual phases equal the planned ones and the byte counts below stay round
HEALTHY_LAG = {"push1": -0.012, "server1": -0.004, "client1": 0.0}


def write_switches(run: Path, node: str, run_id: str, lags: dict[int, float], phases: int = 4,
                   stop_after: int | None = None, cancelled_at: float | None = None) -> None:
    """A switcher's record: start, one line per switch (`lags`: phase index -> seconds late; the final
    switch is index `phases`), then done (or cancelled at `cancelled_at`, or nothing after `stop_after`)."""
    lines = [{"event": "start", "run_id": run_id, "pid": 4242, "host": node, "clock": T0 - 5.0}]
    for k in range(phases + 1):
        if stop_after is not None and k > stop_after:
            break
        name, down = PHASES[k] if k < phases else ("end", [])
        planned = T0 + k * PHASE_S
        lag = lags.get(k, HEALTHY_LAG.get(node, 0.005))
        lines.append({"event": "switch", "phase": k, "name": name, "netns": None,
                      "nics": ["nic2" if "isp2" in down else "nic1"] if down else [], "forwarding": False,
                      "planned": planned, "actual": planned + lag, "lag_s": lag, "ok": True, "error": None})
    if cancelled_at is not None:
        lines.append({"event": "cancelled", "at": T0 + cancelled_at})
    elif stop_after is None:
        lines.append({"event": "done"})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path = run / "nodes" / node / "switches.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_run(root: Path, run_id: str = "20261123T221500Z", phases: int = 4, client_handover: float = 5.0,
             stall_total_s: float = 3.1, legacy: bool = False, legacy_last_end: float | None = None,
             lags: dict[str, dict[int, float]] | None = None, interrupted_at: float | None = None,
             bounds: tuple[float, float, float] = BOUNDS, player_span: tuple[float, float] = (-2.0, 42.0),
             rates_end: float | None = None) -> Path:
    """A run folder as the failover playbook writes it: schedule.json and every node's switch record
    (or, `legacy`, only an old planned timeline.json), rates, a player.

    `lags`: node -> phase index -> seconds its switch landed late; `bounds`: when phases 2-4 really
    began in the traffic; `interrupted_at`: seconds after t0 when the run was interrupted (switchers
    cancelled then, data ends then)."""
    run = root / run_id
    run.mkdir(parents=True)
    meta = {
        "run_id": run_id, "started_at": "2026-11-23T22:15:00Z", "baseline": False, "phase_seconds": PHASE_S,
        "inventory": {
            "providers": [{"name": "isp1", "index": 1, "nic": "nic1"}, {"name": "isp2", "index": 2, "nic": "nic2"}],
            "nodes": {
                "push1": {"roles": ["push"], "site_index": 1, "interfaces": {"nic1": "isp1", "nic2": "isp2"}},
                "server1": {"roles": ["server"], "site_index": 2, "interfaces": {"nic1": "isp1", "nic2": "isp2"}},
                "client1": {"roles": ["client"], "site_index": 3, "interfaces": {"eth1": "isp1", "eth2": "isp2"}},
            },
        },
        "nodes": {"server1": {"kernel": "6.18.0-test", "sysctls": {"net.mptcp.enabled": "1"},
                              "mptcp_endpoints": "198.18.18.2 id 1 signal dev nic1", "mptcp_limits": "subflows 4"}},
        "versions": {"mpstream": "0.1.0", "ansible": "2.19", "python": "3.11"},
        "outage_method": "nftables drop per provider",
    }
    (run / "meta.json").write_text(json.dumps(meta))
    planned = [{"name": name, "down": down, "start": T0 + i * PHASE_S, "end": T0 + (i + 1) * PHASE_S}
               for i, (name, down) in enumerate(PHASES[:phases])]
    if legacy:
        timeline = {"t0": T0, "phases": planned}
        if legacy_last_end is not None:
            timeline["phases"][-1]["end"] = T0 + legacy_last_end
        (run / "timeline.json").write_text(json.dumps(timeline))
    else:
        schedule = {"format": "mpstream-schedule/1", "run_id": run_id, "t0": T0, "phase_seconds": PHASE_S,
                    "tolerance_s": 0.1, "lead_s": 3, "tail_s": 2, "phases": planned,
                    "switchers": {node: f"nodes/{node}/switches.jsonl" for node in NODES},
                    "interrupted_at": None if interrupted_at is None else T0 + interrupted_at}
        (run / "schedule.json").write_text(json.dumps(schedule))
        for node in NODES:
            stop = None if interrupted_at is None else int(interrupted_at // PHASE_S)
            write_switches(run, node, run_id, (lags or {}).get(node, {}), phases=phases, stop_after=stop,
                           cancelled_at=interrupted_at)
    end = rates_end if rates_end is not None else (
        legacy_last_end or interrupted_at or phases * PHASE_S)
    write_rates(run / "nodes/push1/rates.csv", ("nic1", "nic2"), tx_handover=2.5, rx_handover=None, end_s=end,
                bounds=bounds)
    write_rates(run / "nodes/server1/rates.csv", ("nic1", "nic2"), tx_handover=client_handover, rx_handover=2.5,
                end_s=end, bounds=bounds)
    write_rates(run / "nodes/client1/rates.csv", ("eth1", "eth2"), tx_handover=None, rx_handover=client_handover,
                end_s=end, bounds=bounds)
    began, ended = player_span
    player = {"startup_s": 1.2, "stall_count": 1, "stall_total_s": stall_total_s, "stall_max_s": stall_total_s,
              "stalls": [{"at_s": 22.5, "duration_s": stall_total_s}], "video_frames": 1000, "audio_frames": 1800,
              "bitrate_bps": 2_000_000, "latency_ms": {"p50": 120.0, "p95": 300.0, "p99": 900.0},
              "started_at": T0 + began, "ended_at": T0 + ended}
    (run / "nodes/client1/player.json").write_text(json.dumps(player))
    (run / "nodes/client1/player.log").write_text("a log the report ignores\n")
    return run


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("runs"))
    assert main(["report", str(run)]) == 0
    return run, json.loads((run / "summary.json").read_text())


def test_phases_in_order_with_relative_times(full_run):
    _, summary = full_run
    phases = summary["phases"]
    assert [p["name"] for p in phases] == [name for name, _ in PHASES]
    assert [p["down"] for p in phases] == [down for _, down in PHASES]
    assert [(p["start_s"], p["end_s"]) for p in phases] == [(0, 10), (10, 20), (20, 30), (30, 40)]


def test_bytes_shares_and_rates_per_phase(full_run):
    _, summary = full_run
    push = [p["nodes"]["push1"] for p in summary["phases"]]
    assert push[0]["isp1"]["tx_bytes"] == 20 * 60_000 and push[0]["isp2"]["tx_bytes"] == 20 * 40_000
    assert push[0]["isp1"]["tx_share"] == 0.6 and push[0]["isp2"]["tx_share"] == 0.4
    assert push[0]["isp1"]["tx_mean_bps"] == 8 * 20 * 60_000 / 10
    assert push[0]["isp1"]["rx_bytes"] == 0 and push[0]["isp1"]["rx_share"] is None
    assert push[1]["isp1"]["tx_share"] == 1.0 and push[1]["isp2"]["tx_bytes"] == 0
    assert push[2]["isp2"]["tx_bytes"] == 500 + 16 * 100_000 and push[2]["isp1"]["tx_share"] == 0.0
    assert push[3]["isp1"]["tx_share"] == push[3]["isp2"]["tx_share"] == 0.5
    client = summary["phases"][2]["nodes"]["client1"]
    assert client["isp2"]["rx_bytes"] == 500 + 11 * 100_000  # handover after 5 s: 11 full samples
    assert list(client) == ["isp1", "isp2"]  # eth1/eth2 mapped by the node's own interface map, lo left out


def test_handover_times(full_run):
    _, summary = full_run
    found = {(e["to"], e["node"], e["direction"]): e for e in summary["handover_s"]}
    assert found[("isp2 down", "push1", "tx")]["handover_s"] == 0.5
    assert found[("isp1 down, isp2 up", "push1", "tx")]["handover_s"] == 2.5  # the 500-byte probe is ignored
    assert found[("isp1 down, isp2 up", "client1", "rx")]["handover_s"] == 5.0
    assert found[("isp1 down, isp2 up", "server1", "rx")]["handover_s"] == 2.5
    assert found[("isp1 down, isp2 up", "server1", "tx")]["handover_s"] == 5.0
    entry = found[("isp1 down, isp2 up", "client1", "rx")]
    assert entry["from"] == "isp2 down" and entry["at_s"] == 20.0 and entry["surviving"] == ["isp2"]
    assert ("isp2 down", "client1", "tx") not in found  # a client is judged on what it receives
    assert len(summary["handover_s"]) == 3 * 4  # 3 changes x (push tx, client rx, server tx + rx)


def test_player_summary_copied(full_run):
    _, summary = full_run
    player = summary["players"]["client1"]
    assert player["stall_total_s"] == 3.1 and player["latency_ms"]["p99"] == 900.0
    assert list(summary["players"]) == ["client1"]


def test_plots_and_report_written(full_run):
    run, summary = full_run
    for stem in ("overview", "rates", "rates-push1", "rates-server1", "rates-client1"):
        for fmt in ("png", "svg"):
            path = run / "plots" / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 5000, path
    assert (run / "plots/rates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/rates.png" in summary["plots"] and "plots/overview.png" in summary["plots"]
    report = (run / "report.md").read_text()
    assert report.startswith("# mpstream run ") and "INVALID" not in report
    assert "![plots/overview.png](plots/overview.png)" in report
    assert "![plots/rates.png](plots/rates.png)" in report
    assert "isp1 down, isp2 up" in report and "6.18.0-test" in report and "net.mptcp.enabled" in report
    assert "198.18.18.2 id 1 signal dev nic1" in report and "nftables drop per provider" in report
    assert "| client1 | 1.200 | 1 | 3.100 |" in report
    assert "Stalls at client1: 3.100 s at 20.5 s into the run" in report


def test_console_summary_names_slow_handovers_and_stalls(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["report", str(run), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "push1 out: isp1 60.0 %, isp2 40.0 %" in out
    assert "handover isp2 down -> isp1 down, isp2 up at client1 (in): 5.000 s" in out
    assert "player client1: startup 1.200 s, 1 stalls, 3.100 s stalled" in out
    assert out.rstrip().endswith("report.md")


def test_interrupted_run_has_a_shorter_last_phase_and_is_invalid(tmp_path):
    run = make_run(tmp_path, interrupted_at=25.0)
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["phases"]) == 3 and summary["phases"][-1]["end_s"] == 25.0
    assert summary["phases"][-1]["nodes"]["push1"]["isp2"]["tx_bytes"] == 500 + 6 * 100_000
    assert not (run / "plots").exists()
    assert summary["reasons"] == [
        "client1: its switcher was cancelled at +25 s, before the switch to phase 4 'all up again' (planned +30 s); "
        "2 switches not made",
        "push1: its switcher was cancelled at +25 s, before the switch to phase 4 'all up again' (planned +30 s); "
        "2 switches not made",
        "run: interrupted at +25 s, during phase 3 'isp1 down, isp2 up' (the schedule ends at +40 s)",
        "server1: its switcher was cancelled at +25 s, before the switch to phase 4 'all up again' (planned +30 s); "
        "2 switches not made",
    ]


def test_baseline_columns(tmp_path):
    run = make_run(tmp_path, "tuned", client_handover=0.5, stall_total_s=0.0)
    base = make_run(tmp_path, "baseline", client_handover=8.0, stall_total_s=8.4)
    assert main(["report", str(run), "--baseline", str(base), "--no-plots"]) == 0
    report = (run / "report.md").read_text()
    assert "stalled [s] *baseline*" in report and "8.400" in report
    assert "| client1 | 1.200 | 1 | 0.000 |" in report
    summary = json.loads((run / "summary.json").read_text())
    assert summary["baseline"]["run_id"] == "baseline"


def test_folder_without_metadata_still_reports(tmp_path):
    run = tmp_path / "copied"
    write_rates(run / "nodes/n1/rates.csv", ("nic1", "nic2"), tx_handover=2.5, rx_handover=None)
    assert main(["report", str(run), "--no-plots"]) == 3  # no phases known: not the scenario
    assert main(["report", str(run), "--no-plots", "--allow-invalid"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    (phase,) = summary["phases"]
    assert phase["name"] == "whole run" and phase["start_s"] == 0.0
    assert set(phase["nodes"]["n1"]) == {"nic1", "nic2"}
    assert phase["nodes"]["n1"]["nic1"]["tx_bytes"] == 20 * 60_000 + 20 * 100_000 + 20 * 50_000
    assert "schedule.json and timeline.json are missing" in (run / "report.md").read_text()
    assert summary["reasons"] == ["run: no schedule.json and no timeline.json, so the phases are unknown"]


def test_node_without_recording_keeps_its_player(tmp_path):
    run = make_run(tmp_path)
    (run / "nodes/client1/rates.csv").unlink()
    assert main(["report", str(run)]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reasons"] == ["client1: no usable rates.csv, so its traffic was not recorded"]
    assert "client1" not in summary["phases"][0]["nodes"] and "push1" in summary["phases"][0]["nodes"]
    assert summary["players"]["client1"]["stall_total_s"] == 3.1
    assert not any(e["node"] == "client1" for e in summary["handover_s"])
    assert "client1 has no rates.csv" in summary["notes"]
    assert not (run / "plots/rates-client1.png").exists() and (run / "plots/rates-push1.png").exists()


def test_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_valid_run_writes_the_timeline_from_the_records(full_run):
    run, summary = full_run
    timeline = json.loads((run / "timeline.json").read_text())
    assert timeline["format"] == "mpstream-timeline/2" and timeline["valid"] is True and timeline["reasons"] == []
    assert timeline["t0"] == T0 and timeline["tolerance_s"] == 0.1
    assert [(p["planned_start"], p["start"], p["end"]) for p in timeline["phases"]] == [
        (T0 + k * PHASE_S, T0 + k * PHASE_S, T0 + (k + 1) * PHASE_S) for k in range(4)]
    assert sorted(timeline["switches"]) == ["client1", "push1", "server1"]
    push = timeline["switches"]["push1"]
    assert [s["phase"] for s in push] == [0, 1, 2, 3, 4] and push[1]["nics"] == ["nic2"]
    assert push[1]["lag_s"] == pytest.approx(-0.012) and push[1]["ok"] is True
    assert timeline["lag_s"]["count"] == 15 and timeline["lag_s"]["max"] == 0.0
    assert timeline["lag_s"]["p50"] == pytest.approx(-0.004)
    assert summary["valid"] is True and summary["reasons"] == []
    assert summary["switch_lag_s"]["worst"]["node"] == "client1"
    assert summary["phases"][1]["planned_start_s"] == 10.0
    report = (run / "report.md").read_text()
    assert "## Switches" in report and "over 15 switches" in report and "max 0.000 s (worst: client1" in report


def test_late_switch_moves_the_phase_and_its_bytes_and_makes_the_run_invalid(tmp_path, capsys):
    # push1 switched isp2 off 5 s late: the traffic changed at +15 s, not at +10 s
    run = make_run(tmp_path, lags={"push1": {1: 5.0}}, bounds=(15.0, 20.0, 30.0))
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["valid"] is False
    assert summary["reasons"] == ["push1: switch to phase 2 'isp2 down' took effect 5.000 s late (tolerance 0.100 s)"]
    first, second = summary["phases"][:2]
    assert (first["start_s"], first["end_s"], second["start_s"], second["end_s"]) == (0.0, 15.0, 15.0, 20.0)
    assert (second["planned_start_s"], second["planned_end_s"]) == (10.0, 20.0)
    push = [p["nodes"]["push1"] for p in summary["phases"]]
    assert push[0]["isp1"]["tx_bytes"] == 30 * 60_000 and push[0]["isp2"]["tx_share"] == 0.4
    assert push[1]["isp2"]["tx_bytes"] == 0 and push[1]["isp1"]["tx_share"] == 1.0  # planned slicing: 0.2
    handovers = {(e["to"], e["node"], e["direction"]): e for e in summary["handover_s"]}
    assert handovers[("isp2 down", "push1", "tx")]["at_s"] == 15.0
    assert summary["switch_lag_s"]["max"] == 5.0 and summary["switch_lag_s"]["worst"]["node"] == "push1"
    err = capsys.readouterr().err
    assert "INVALID RUN" in err and "push1: switch to phase 2 'isp2 down' took effect 5.000 s late" in err
    report = (run / "report.md").read_text()
    assert report.startswith("**INVALID RUN** — these numbers do not describe the planned scenario:\n\n- push1: ")
    assert "### 2. isp2 down — down: isp2, 15.0 s to 20.0 s (planned 10.0 s to 20.0 s)" in report


def test_invalid_run_exits_3_but_writes_everything_and_allow_invalid_exits_0(tmp_path, capsys):
    run = make_run(tmp_path, lags={"client1": {2: 0.35}})
    assert main(["report", str(run)]) == 3
    captured = capsys.readouterr()
    reason = "client1: switch to phase 3 'isp1 down, isp2 up' took effect 0.350 s late (tolerance 0.100 s)"
    assert reason in captured.err and "report.md" in captured.out
    for name in ("summary.json", "report.md", "timeline.json", "plots/overview.png", "plots/rates-client1.svg"):
        assert (run / name).is_file(), name
    assert json.loads((run / "timeline.json").read_text())["reasons"] == [reason]
    assert main(["report", str(run), "--allow-invalid", "--no-plots"]) == 0
    assert reason in capsys.readouterr().err  # still said, just not failed


def test_old_planned_timeline_renders_but_is_invalid(tmp_path, capsys):
    run = make_run(tmp_path, legacy=True)
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reasons"] == ["run: no record of when the switches took effect (planned times only)"]
    assert [(p["start_s"], p["end_s"]) for p in summary["phases"]] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    assert summary["switch_lag_s"] is None and summary["timeline_format"] == "mpstream-timeline/1"
    assert json.loads((run / "timeline.json").read_text()).get("format") is None  # the old file is left alone
    report = (run / "report.md").read_text()
    assert report.startswith("**INVALID RUN**") and "Only the planned times are known" in report
    assert main(["report", str(run), "--no-plots", "--allow-invalid"]) == 0


def test_players_and_recorders_that_miss_the_schedule_make_the_run_invalid(tmp_path):
    run = make_run(tmp_path, player_span=(12.0, 40.3), rates_end=35.0)
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reasons"] == [
        "client1: rates.csv covers +0 s to +35 s, not the whole schedule 0-40 s",
        "client1: the player played from +12 s to +40.3 s, not the whole schedule 0-40 s",
        "push1: rates.csv covers +0 s to +35 s, not the whole schedule 0-40 s",
        "server1: rates.csv covers +0 s to +35 s, not the whole schedule 0-40 s",
    ]


def test_players_overall_in_summary_and_report(full_run):
    run, summary = full_run
    overall = summary["players_overall"]
    assert overall["clients"] == 1 and overall["stall_free"] == 0 and overall["stall_total_s"] == 3.1
    assert overall["startup_s"] == {"p50": 1.2, "p95": 1.2} and overall["without_player"] == []
    assert "All clients: 0/1 stall-free, startup p50 1.200 s / p95 1.200 s, 3.100 s stalled in all (1 stalls)." in (
        run / "report.md").read_text()


def make_big_run(root: Path, clients: int = 18) -> Path:
    """A NorNet-sized run: a push node, a server and `clients` viewers at 20 sites, all switching on time."""
    run_id = "big"
    run = root / run_id
    viewers = [f"client{k}" for k in range(1, clients + 1)]
    roles = {"push1": ["push"], "server1": ["server"]} | {c: ["client"] for c in viewers}
    meta = {"run_id": run_id, "inventory": {
        "providers": [{"name": "isp1", "index": 1, "nic": "nic1"}, {"name": "isp2", "index": 2, "nic": "nic2"}],
        "nodes": {n: {"roles": r, "site_index": i, "interfaces": {"nic1": "isp1", "nic2": "isp2"}}
                  for i, (n, r) in enumerate(roles.items(), start=1)}}}
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps(meta))
    planned = [{"name": name, "down": down, "start": T0 + i * PHASE_S, "end": T0 + (i + 1) * PHASE_S}
               for i, (name, down) in enumerate(PHASES)]
    (run / "schedule.json").write_text(json.dumps({
        "format": "mpstream-schedule/1", "run_id": run_id, "t0": T0, "phase_seconds": PHASE_S, "tolerance_s": 0.1,
        "phases": planned, "switchers": {n: f"nodes/{n}/switches.jsonl" for n in roles}, "interrupted_at": None}))
    for k, node in enumerate(roles):
        write_switches(run, node, run_id, {1: 0.002 * k})
        write_rates(run / "nodes" / node / "rates.csv", ("nic1", "nic2"),
                    tx_handover=2.5 if node in ("push1", "server1") else None,
                    rx_handover=None if node == "push1" else 0.5 + 0.5 * (k % 8), start_s=-1.0, end_s=41.0)
    for k, node in enumerate(viewers, start=1):
        stalls = k % 4
        (run / "nodes" / node / "player.json").write_text(json.dumps({
            "startup_s": round(1.0 + k / 100, 2), "stall_count": stalls, "stall_total_s": 1.5 * stalls,
            "stall_max_s": 1.5 if stalls else 0.0, "stalls": [{"at_s": 22.0 + s, "duration_s": 1.5}
                                                               for s in range(stalls)],
            "started_at": T0 - 2.0, "ended_at": T0 + 42.0}))
    return run


def test_a_twenty_node_run_reads_at_a_glance(tmp_path):
    run = make_big_run(tmp_path)
    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["valid"] is True and len(summary["nodes"]) == 20
    assert summary["switch_lag_s"]["count"] == 20 * 5 and summary["switch_lag_s"]["max"] == pytest.approx(0.038)
    assert summary["switch_lag_s"]["worst"]["node"] == "client18"
    plots = set(summary["plots"])
    assert {"plots/overview.png", "plots/overview.svg", "plots/rates-client18.png"} <= plots
    assert "plots/rates.png" not in plots  # 21 stacked panels would not read; the overview does
    assert (run / "plots/overview.png").stat().st_size > 20_000
    overall = summary["players_overall"]
    assert (overall["clients"], overall["stall_free"], overall["stall_count"]) == (18, 4, 27)
    report = (run / "report.md").read_text()
    players_section = report.split("## Players")[1].split("##")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in players_section.splitlines()
            if line.startswith("| client") and not line.startswith("| client |")]  # not the header
    # worst first: 3 stalls (clients 3, 7, 11, 15), by startup within; then 2 stalls, 1, none
    assert rows[:5] == ["client15", "client11", "client7", "client3", "client18"]
    assert rows[-1] == "client4"
    assert "All clients: 4/18 stall-free, startup p50 1.095 s / p95 1.171 s, 40.500 s stalled in all (27 stalls)." \
        in report


def test_missing_record_or_broken_schedule_in_the_folder(tmp_path):
    run = make_run(tmp_path)
    (run / "nodes/client1/switches.jsonl").unlink()
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reasons"] == ["client1: no record of its switches (nodes/client1/switches.jsonl is missing)"]
    schedule = json.loads((run / "schedule.json").read_text())
    schedule["phases"][1]["start"] = None
    (run / "schedule.json").write_text(json.dumps(schedule))
    assert main(["report", str(run), "--no-plots"]) == 3
    summary = json.loads((run / "summary.json").read_text())
    # the timeline the report wrote before is used, with its verdict, and the schedule's fault added
    assert "run: schedule.json: phases[1].start must be a number (unix seconds), not None" in summary["reasons"]
    assert len(summary["phases"]) == 4
