"""`mpstream report` on synthetic run folders whose numbers are known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mpstream.cli import main
from mpstream.recorder.csvformat import Delta, format_row

T0 = 1_800_000_000.0
STEP = 0.5
PHASES = [("all up", []), ("isp2 down", ["isp2"]), ("isp1 down, isp2 up", ["isp1"]), ("all up again", [])]
PHASE_S = 10.0


def push_pattern(t: float, handover_s: float) -> tuple[int, int]:
    """Bytes per 0.5 s sample on (isp1, isp2) for the sample interval ending at `t` (seconds after t0)."""
    if t <= 10:
        return 60_000, 40_000
    if t <= 20:
        return 100_000, 0
    if t <= 30:
        if t == 20.5:
            return 0, 500  # a probe on the surviving provider: too little to count as handover
        return (0, 100_000) if t > 20 + handover_s - STEP else (0, 0)
    return 50_000, 50_000


def write_rates(path: Path, nics: tuple[str, str], tx_handover: float | None, rx_handover: float | None,
                end_s: float = 40.0) -> None:
    """A recorder CSV: interface rows for `nics` (isp1, isp2), `lo` with noise, and `total` rows."""
    lines = []
    k = 0
    while k * STEP <= end_s + 1e-9:
        t = k * STEP
        tx = push_pattern(t, tx_handover) if (k and tx_handover is not None) else (0, 0)
        rx = push_pattern(t, rx_handover) if (k and rx_handover is not None) else (0, 0)
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


def make_run(root: Path, run_id: str = "20261123T221500Z", phases: int = 4, last_end: float | None = None,
             client_handover: float = 5.0, stall_total_s: float = 3.1) -> Path:
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
    timeline = {"t0": T0, "phases": [
        {"name": name, "down": down, "start": T0 + i * PHASE_S, "end": T0 + (i + 1) * PHASE_S}
        for i, (name, down) in enumerate(PHASES[:phases])]}
    if last_end is not None:
        timeline["phases"][-1]["end"] = T0 + last_end
    (run / "timeline.json").write_text(json.dumps(timeline))
    end = last_end if last_end is not None else phases * PHASE_S
    write_rates(run / "nodes/push1/rates.csv", ("nic1", "nic2"), tx_handover=2.5, rx_handover=None, end_s=end)
    write_rates(run / "nodes/server1/rates.csv", ("nic1", "nic2"), tx_handover=client_handover, rx_handover=2.5,
                end_s=end)
    write_rates(run / "nodes/client1/rates.csv", ("eth1", "eth2"), tx_handover=None, rx_handover=client_handover,
                end_s=end)
    player = {"startup_s": 1.2, "stall_count": 1, "stall_total_s": stall_total_s, "stall_max_s": stall_total_s,
              "stalls": [{"at_s": 19.0, "duration_s": stall_total_s}], "video_frames": 1000, "audio_frames": 1800,
              "bitrate_bps": 2_000_000, "latency_ms": {"p50": 120.0, "p95": 300.0, "p99": 900.0},
              "started_at": T0 + 1.5}
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
    for stem in ("rates", "rates-push1", "rates-server1", "rates-client1"):
        for fmt in ("png", "svg"):
            path = run / "plots" / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 5000, path
    assert (run / "plots/rates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/rates.png" in summary["plots"]
    report = (run / "report.md").read_text()
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


def test_interrupted_run_has_a_shorter_last_phase(tmp_path):
    run = make_run(tmp_path, phases=3, last_end=25.0)
    assert main(["report", str(run), "--no-plots"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["phases"]) == 3 and summary["phases"][-1]["end_s"] == 25.0
    assert summary["phases"][-1]["nodes"]["push1"]["isp2"]["tx_bytes"] == 500 + 6 * 100_000
    assert not (run / "plots").exists()


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
    assert main(["report", str(run), "--no-plots"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    (phase,) = summary["phases"]
    assert phase["name"] == "whole run" and phase["start_s"] == 0.0
    assert set(phase["nodes"]["n1"]) == {"nic1", "nic2"}
    assert phase["nodes"]["n1"]["nic1"]["tx_bytes"] == 20 * 60_000 + 20 * 100_000 + 20 * 50_000
    assert "timeline.json is missing" in (run / "report.md").read_text()


def test_node_without_recording_keeps_its_player(tmp_path):
    run = make_run(tmp_path)
    (run / "nodes/client1/rates.csv").unlink()
    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert "client1" not in summary["phases"][0]["nodes"] and "push1" in summary["phases"][0]["nodes"]
    assert summary["players"]["client1"]["stall_total_s"] == 3.1
    assert not any(e["node"] == "client1" for e in summary["handover_s"])
    assert "client1 has no rates.csv" in summary["notes"]
    assert not (run / "plots/rates-client1.png").exists() and (run / "plots/rates-push1.png").exists()


def test_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err
