"""failover.yml over SSH, as against real sites: the paper's four phases (short ones), with
the molecule inventory of the nodes; the results come home to the controller, and
nothing of the run stays behind on the nodes."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes import SITES, vm

REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
PHASE_SECONDS = 10
# Kept for a look (and for the README's VM-against-testbed table) with
# MOLECULE_EXPERIMENT_RESULTS=DIR; else with the scenario's other temporary files.
RESULTS = Path(os.environ.get("MOLECULE_EXPERIMENT_RESULTS")
               or Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "results")
RUN_PROCESS_WORDS = (" play ", " publish ", " record ", " outage ", "failover-")
# Real sites' clocks differ: the client's runs this far ahead of everyone's during the run.
CLIENT_CLOCK_AHEAD_S = 3.0


@pytest.fixture(scope="module")
def run() -> Iterator[Path]:
    """failover.yml from the repository, with its ansible.cfg, on molecule's inventory, with
    the client's clock set ahead (and set back afterwards)."""
    client = vm("client1")
    client.run_expect([0], f"date -s '+{CLIENT_CLOCK_AHEAD_S:g} seconds'")
    try:
        yield run_failover()
    finally:
        client.run_expect([0], f"date -s '-{CLIENT_CLOCK_AHEAD_S:g} seconds'")


def run_failover() -> Path:
    """The run's results folder."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    # The repository's callbacks (failover_guard restores the providers of an interrupted
    # run), and the task times as in the scenario's other steps.
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACKS_ENABLED": "mpstream.nornet.failover_guard,ansible.posix.profile_tasks"}
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), "failover.yml",
               "-e", json.dumps({"failover_phase_seconds": PHASE_SECONDS, "failover_results_dir": str(RESULTS),
                                 # emulated CPUs: a lighter stream than the default 2.5 Mbit/s
                                 "failover_bitrate": "1M"})]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    print(done.stdout[-6000:])
    lost = "\n".join(what_failed(done.stdout))
    assert done.returncode == 0, f"{lost}\n...\n{done.stdout[-6000:]}{done.stderr[-3000:]}"
    return (RESULTS / "latest").resolve()


def what_failed(output: str) -> list[str]:
    """Each node's failure or loss of contact in a playbook's output, after the task it came in
    (the output's tail alone may not say which task lost a node)."""
    task, found = "", []
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.rstrip(" *")
        elif line.startswith(("fatal:", "failed:")) or "UNREACHABLE!" in line:
            found += [task, line[:1500]]
    return found


@pytest.fixture(scope="module")
def summary(run) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_four_phases_and_the_failed_provider_carried_nothing_to_the_client(summary):
    assert summary["valid"] is True, summary["reasons"]
    phases = summary["phases"]
    assert [p["down"] for p in phases] == [[], ["isp2"], ["isp1"], []]
    for phase in phases[1:3]:
        shares = phase["nodes"]["client1"]
        down = phase["down"][0]
        assert shares[down]["rx_share"] < 0.03, (phase["name"], shares)


def test_the_players_stalls_and_startup_are_reported(summary):
    player = summary["players"]["client1"]
    assert {"startup_s", "stall_count", "stall_total_s", "stalls", "latency_ms"} <= set(player), player
    assert player["video_frames"] > 0
    assert [h for h in summary["handover_s"] if h["node"] == "client1"], summary["handover_s"]


def test_every_nodes_clock_and_results_came_home(run, summary):
    meta = json.loads((run / "meta.json").read_text())
    assert set(meta["nodes"]) == set(SITES)
    for name, description in meta["nodes"].items():
        clock = description["clock"]
        # nodes over SSH keep clocks of their own: read between two of the controller's readings
        assert clock["shared_with_controller"] is False, (name, clock)
        assert clock["controller_asked"] <= clock["controller_answered"], (name, clock)
        assert (run / "nodes" / name / "rates.csv").stat().st_size > 0
    assert set(summary["clocks"]) == set(SITES)
    # The client's clock ahead was measured and allowed for (the run is valid: see above).
    client = summary["clocks"]["client1"]
    # Half the round trip of reading the clock over SSH: 0.50 s on emulated CPUs under load,
    # still well under the 3 s to be measured (the bracket is checked on the next line).
    assert client["uncertainty_s"] < 1.0, client
    assert abs(client["offset_s"] - CLIENT_CLOCK_AHEAD_S) <= client["uncertainty_s"] + 0.1, client
    assert client["correction_s"] == pytest.approx(client["offset_s"], abs=1e-6), client
    report = (run / "report.md").read_text()
    assert "## Clocks" in report and "isp2" in report
    assert list((run / "plots").glob("*.png"))


@pytest.mark.parametrize("name", sorted(SITES))
def test_no_drop_rule_and_no_run_process_left(run, name):
    node = vm(name)
    assert "mpstream_outage" not in node.check_output("nft list tables")
    processes = node.check_output("ps -eo args")
    assert not [line for line in processes.splitlines() if "mpstream" in line
                and any(word in f" {line} " for word in RUN_PROCESS_WORDS)], processes
