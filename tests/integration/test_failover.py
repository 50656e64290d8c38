"""deploy.yml then failover.yml on the emulated testbed, with short phases.

Checks the paper's Fig. 3 in numbers (which provider carries the stream in each phase),
that a viewer with a 1 s buffer never stalls, and that an interrupted run leaves no
outage and no stray process behind but keeps what it measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.testbed import REPO, VENV_BIN, ansible_env, emulated_testbed, namespaces, run_playbook

PREFIX = "t6fo"
PHASE_SECONDS = 6
NODES = ("push1", "server1", "client1")
PROVIDERS = ("isp1", "isp2")


@pytest.fixture(scope="module")
def deployed():
    with emulated_testbed(PREFIX, playbook="deploy.yml"):
        yield


def failover(results: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    return run_playbook("failover.yml", *args, extra_vars={
        "testbed_prefix": PREFIX, "failover_phase_seconds": PHASE_SECONDS,
        "failover_results_dir": str(results), **extra})


def summary_of(results: Path) -> dict:
    return json.loads((results / "latest" / "summary.json").read_text())


def outage_tables() -> list[str]:
    found = []
    for ns in sorted(n for n in namespaces() if n.startswith(PREFIX + "-")):
        tables = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"],
                                capture_output=True, text=True).stdout
        if "mpstream_outage" in tables:
            found.append(ns)
    return found


def run_processes() -> list[str]:
    """Command lines of the per-run processes (clients, recorders, outage watchdogs) in the testbed."""
    found = []
    for ns in sorted(n for n in namespaces() if n.startswith(PREFIX + "-")):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if any(word in cmdline for word in (" play ", " publish ", " record ", "_expire", "failover-")):
                found.append(f"{ns}: {cmdline}")
    return found


@pytest.mark.timeout(900)
def test_the_stream_follows_the_surviving_provider_and_never_stalls(deployed, tmp_path):
    failover(tmp_path)
    summary = summary_of(tmp_path)
    phases = summary["phases"]
    assert [p["down"] for p in phases] == [[], ["isp2"], ["isp1"], []]
    for phase in phases:
        push = phase["nodes"]["push1"]
        client = phase["nodes"]["client1"]
        for side, key in ((push, "tx_share"), (client, "rx_share")):
            shares = {p: side[p][key] for p in PROVIDERS}
            if not phase["down"]:
                assert min(shares.values()) >= 0.10, (phase["name"], key, shares)
            else:
                assert shares[phase["down"][0]] < 0.01, (phase["name"], key, shares)
    player = summary["players"]["client1"]
    assert player["stall_count"] == 0, player["stalls"]
    assert player["startup_s"] < 1.0
    assert "handover_s" in summary
    report = (tmp_path / "latest" / "report.md").read_text()
    assert "isp2" in report and list((tmp_path / "latest" / "plots").glob("*.png"))
    assert not outage_tables()
    assert not run_processes()


@pytest.mark.timeout(600)
def test_an_interrupted_run_restores_providers_and_keeps_what_it_measured(deployed, tmp_path):
    command = [str(VENV_BIN / "ansible-playbook"), "failover.yml", "-e", json.dumps({
        "testbed_prefix": PREFIX, "failover_phase_seconds": 20, "failover_results_dir": str(tmp_path)})]
    run = subprocess.Popen(command, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        timeline = tmp_path / "latest" / "timeline.json"
        while time.monotonic() < deadline:
            if timeline.exists() and len(json.loads(timeline.read_text() or "{}").get("phases", [])) >= 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail("phase 2 never started")
        time.sleep(2)
        assert outage_tables(), "phase 2 should have an outage in force"
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert not outage_tables(), output[-3000:]
    assert not run_processes(), output[-3000:]
    run_dir = (tmp_path / "latest").resolve()
    timeline = json.loads((run_dir / "timeline.json").read_text())
    assert len(timeline["phases"]) == 2 and timeline["phases"][-1]["end"] is not None
    for node in NODES:
        assert (run_dir / "nodes" / node / "rates.csv").stat().st_size > 0
    assert (run_dir / "summary.json").exists()
    assert not (tmp_path / ".running").exists()
