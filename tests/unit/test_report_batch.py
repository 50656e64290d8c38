"""`mpstream report BATCH_DIR` and `--compare` on made-up batches whose figures are known in advance."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from mpstream.cli import main
from mpstream.measurement.report.aggregate import aggregate
from mpstream.measurement.report.compare import parse_item
from mpstream.measurement.report.runfigures import run_figures

from tests.unit.test_report_command import make_run

# run -> (client handover after isp1 went down [s], stall seconds; 0: stall-free)
RUNS = {"001": (1.0, 0.0), "002": (2.0, 2.0), "003": (3.0, 4.0), "005": (5.0, 0.0)}


def make_batch(root: Path, batch_id: str = "b1", runs: dict | None = None, invalid: bool = True,
               missing: bool = True) -> Path:
    """A batch as `failover.yml -e failover_repeat=N` writes it: batch.json and one run folder per run.

    `invalid`: run 004 switched 0.35 s late (its figures are absurd, so averaging them in would show;
    its phase 3 began 0.35 s late, so its handover reads 8.65 s);
    `missing`: batch.json lists 006, whose folder is not there."""
    batch = root / batch_id
    batch.mkdir(parents=True)
    runs = dict(RUNS if runs is None else runs)
    for run, (handover, stall) in runs.items():
        make_run(batch, run_id=run, client_handover=handover, stall_total_s=stall)
        if stall == 0.0:
            make_stall_free(batch / run)
    listed = list(runs)
    if invalid:
        make_run(batch, run_id="004", client_handover=9.0, stall_total_s=99.0, lags={"client1": {2: 0.35}})
        listed.append("004")
    if missing:
        listed.append("006")
    listed.sort()
    (batch / "batch.json").write_text(json.dumps({
        "format": "mpstream-batch/1", "batch_id": batch_id, "repeat": len(listed), "runs": listed,
        "command": ["ansible-playbook", "failover.yml", "-e", "failover_repeat=6"],
        "extra_vars": {"failover_repeat": 6}}))
    return batch


def make_stall_free(run: Path) -> None:
    path = run / "nodes/client1/player.json"
    player = json.loads(path.read_text())
    player.update(stall_count=0, stall_total_s=0.0, stall_max_s=0.0, stalls=[])
    path.write_text(json.dumps(player))


@pytest.fixture(scope="module")
def reported_batch(tmp_path_factory):
    batch = make_batch(tmp_path_factory.mktemp("batches"))
    assert main(["report", str(batch)]) == 3  # two invalid runs
    return batch, json.loads((batch / "batch-summary.json").read_text())


def test_invalid_runs_are_named_and_left_out(reported_batch):
    _, summary = reported_batch
    assert summary["format"] == "mpstream-batch-summary/1" and summary["batch_id"] == "b1"
    assert summary["runs"] == 6 and summary["valid_runs"] == 4
    assert summary["invalid_runs"] == [
        {"run": "004", "reasons": ["client1: switch to phase 3 'isp1 down, isp2 up' took effect 0.350 s late "
                                   "(tolerance 0.100 s)"]},
        {"run": "006", "reasons": ["run: no run folder 006"]},
    ]
    assert summary["command"][:2] == ["ansible-playbook", "failover.yml"] and summary["repeat"] == 6
    assert "mptcp_mib" not in summary  # no switcher recorded counters


def test_per_client_figures_over_the_valid_runs(reported_batch):
    _, summary = reported_batch
    client = summary["clients"]["client1"]
    assert client["runs"] == 4 and client["stall_free_runs"] == 2 and client["stall_free_fraction"] == 0.5
    assert client["stall_s"] == {"count": 4, "never": 0, "median": 1.0, "p95": 3.7, "max": 4.0}
    assert client["stall_count"] == 2
    assert client["startup_s"]["median"] == 1.2 and client["startup_s"]["max"] == 1.2
    handovers = {e["to"]: e for e in client["handover_s"]}
    assert list(handovers) == ["isp2 down", "isp1 down, isp2 up", "all up again"]
    after_isp1 = handovers["isp1 down, isp2 up"]
    assert (after_isp1["index"], after_isp1["from"]) == (2, "isp2 down")
    assert (after_isp1["median"], after_isp1["p95"], after_isp1["max"]) == (2.5, 4.7, 5.0)  # not 9 s of run 004
    assert handovers["isp2 down"]["median"] == 0.5
    shares = {e["name"]: e for e in client["down_share"]}
    assert list(shares) == ["isp2 down", "isp1 down, isp2 up"] and shares["isp2 down"]["down"] == ["isp2"]
    assert (shares["isp2 down"]["median"], shares["isp2 down"]["max"], shares["isp2 down"]["count"]) == (0.0, 0.0, 4)
    assert summary["overall"]["stall_free_runs"] == 2 and summary["overall"]["runs"] == 4


def test_runs_csv_one_row_per_run_and_client(reported_batch):
    batch, _ = reported_batch
    path = batch / "runs.csv"
    import pandas  # a requirement of the tests: researchers read runs.csv with it

    frame = pandas.read_csv(path)  # no options
    assert len(frame) == 5 and frame["valid"].sum() == 4
    assert frame.loc[frame["valid"], "stall_s"].median() == 1.0
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run"] for r in rows] == ["001", "002", "003", "004", "005"]  # 006 has no client to list
    assert list(rows[0]) == ["batch", "run", "valid", "client", "started", "stall_count", "stall_s", "startup_s",
                             "handover_to_phase2_s", "handover_to_phase3_s", "handover_to_phase4_s",
                             "down_share_phase2", "down_share_phase3", "reasons"]
    invalid = rows[3]
    assert invalid["valid"] == "False" and invalid["stall_s"] == "99.0" and "0.350 s late" in invalid["reasons"]
    first = rows[0]
    assert (first["batch"], first["valid"], first["client"], first["started"]) == ("b1", "True", "client1", "True")
    assert float(first["handover_to_phase3_s"]) == 1.0 and float(first["down_share_phase2"]) == 0.0
    assert first["stall_count"] == "0" and first["reasons"] == ""


def test_batch_report_md_and_html(reported_batch):
    batch, summary = reported_batch
    report = (batch / "report.md").read_text()
    assert report.startswith("**INVALID RUNS** — 2 of 6 runs do not describe the planned scenario; "
                             "they are left out of every figure:\n\n- 004: client1: switch to phase 3")
    assert "- 006: run: no run folder 006" in report
    assert "# mpstream batch b1" in report and "- **runs**: 6 (4 valid, 2 invalid)" in report
    assert "| client1 | 4 | 2/4 (50 %) | 1.000 / 3.700 / 4.000 | 2 | 1.200 / 1.200 / 1.200 |" in report
    assert "| 3. isp2 down → isp1 down, isp2 up | client1 | 2.500 / 4.700 / 5.000 | 0 |" in report
    assert "| 004 | **no** | 0/1 | 99.000 | 8.650 | client1: switch to phase 3" in report
    assert "![plots/distributions.png](plots/distributions.png)" in report
    assert summary["plots"] == ["plots/distributions.png", "plots/distributions.svg"]
    assert (batch / "plots/distributions.svg").stat().st_size > 5000
    page = (batch / "report.html").read_text()
    assert page.index('<p class="invalid">') < page.index("<h1>mpstream batch b1</h1>")
    assert "<svg" in page and 'class="sortable"' in page
    assert "failover_repeat=6" in page


def test_a_batch_of_valid_runs_exits_0_and_has_no_banner(tmp_path):
    batch = make_batch(tmp_path, invalid=False, missing=False)
    assert main(["report", str(batch), "--no-plots"]) == 0
    report = (batch / "report.md").read_text()
    assert report.startswith("# mpstream batch b1") and "INVALID" not in report
    assert not (batch / "plots").exists() and "<svg" not in (batch / "report.html").read_text()


def test_allow_invalid_and_notes_on_the_folder(tmp_path, capsys):
    batch = make_batch(tmp_path)
    make_run(batch, run_id="stray")
    info = json.loads((batch / "batch.json").read_text())
    info["repeat"] = 8
    (batch / "batch.json").write_text(json.dumps(info))
    assert main(["report", str(batch), "--no-plots", "--allow-invalid"]) == 0
    assert "004: client1: switch to phase 3" in capsys.readouterr().err
    notes = json.loads((batch / "batch-summary.json").read_text())["notes"]
    assert notes == ["run folders not listed in batch.json, left out: stray",
                     "batch.json asked for 8 runs and lists 6"]


def test_never_counts_as_the_worst_and_json_has_no_infinity():
    summary = {"valid": True, "nodes": {"c1": {"roles": ["client"]}},
               "players": {"c1": {"startup_s": None, "stall_count": 0, "stall_total_s": 0.0}},
               "phases": [{"name": "a", "down": [], "start_s": 0.0}, {"name": "b", "down": ["isp1"], "start_s": 10.0,
                                                                         "nodes": {}}],
               "handover_s": [{"to": "b", "at_s": 10.0, "node": "c1", "direction": "rx", "handover_s": None}]}
    (figures,) = run_figures("r1", summary)
    assert figures.startup_s == math.inf and figures.handover_s == {1: math.inf} and not figures.stall_free
    assert figures.down_share == {1: None}  # nothing received: no share to tell
    other = {**summary, "players": {"c1": {"startup_s": 1.0, "stall_count": 0, "stall_total_s": 0.0}},
             "handover_s": [{**summary["handover_s"][0], "handover_s": 0.5}]}
    agg = aggregate([("r1", summary), ("r2", other), ("r3", other)])
    handover = agg["overall"]["handover_s"][0]
    assert (handover["median"], handover["max"], handover["never"], handover["count"]) == (0.5, None, 1, 3)
    assert agg["overall"]["stall_free_runs"] == 2  # a player that never started was not stall-free
    json.dumps(agg, allow_nan=False)


def test_parse_item_labels():
    assert parse_item("tuned=/x/y") == ("tuned", Path("/x/y"))
    assert parse_item("/x/baseline-40ms") == ("baseline-40ms", Path("/x/baseline-40ms"))


def test_compare_a_batch_with_a_single_run(tmp_path):
    batch = make_batch(tmp_path / "a", invalid=True, missing=False)
    single = make_run(tmp_path / "b", run_id="untuned", client_handover=8.0, stall_total_s=8.5)
    info = json.loads((batch / "batch.json").read_text())
    (batch / "batch.json").write_text(json.dumps({**info, "repeat": 9}))
    out = tmp_path / "cmp"
    assert main(["report", "--compare", f"tuned={batch}", str(single), "--output", str(out)]) == 3
    compare = json.loads((out / "compare.json").read_text())
    assert [i["label"] for i in compare["items"]] == ["tuned", "untuned"]
    tuned, untuned = (i["agg"] for i in compare["items"])
    assert tuned["valid_runs"] == 4 and [e["run"] for e in tuned["invalid_runs"]] == ["004"]
    assert untuned["valid_runs"] == 1 and untuned["overall"]["stall_s"]["median"] == 8.5
    report = (out / "report.md").read_text()
    assert report.startswith("**INVALID RUNS** — 1 of 5 runs of tuned do not describe")
    assert "# mpstream comparison: tuned, untuned" in report
    assert "> note: tuned: batch.json asked for 9 runs and lists 5" in report
    assert "| tuned | " in report and "| 2/4 (50 %) | 1.000 / 3.700 / 4.000 |" in report
    assert "| 3. isp2 down → isp1 down, isp2 up | 2.500 / 4.700 / 5.000 | 8.000 / 8.000 / 8.000 |" in report
    with (out / "runs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({r["batch"] for r in rows}) == ["tuned", "untuned"] and len(rows) == 6
    figure = (out / "plots/distributions.svg").read_text()  # matplotlib keeps each text as a comment
    assert "<!-- handover after the change to phase 3. isp2 down → isp1 down, isp2 up -->" in figure
    assert "<!-- stall seconds per run and client -->" in figure and "<svg" in (out / "report.html").read_text()


def test_compare_needs_output_and_existing_folders(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["report", "--compare", str(run)]) == 2
    assert main(["report", "--compare", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "no run or batch folder" in capsys.readouterr().err
    assert main(["report", str(run), "--compare", str(run), "--output", str(tmp_path / "o")]) == 2
    batch = make_batch(tmp_path / "b", invalid=False, missing=False)
    assert main(["report", str(batch), "--baseline", str(run)]) == 2
    assert "--baseline is for one run" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (batch / "report.md").exists()
