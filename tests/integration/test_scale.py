"""The experiment at NorNet scale: 12 sites x 3 providers on the emulated testbed.

Site indices spread over 1-255 (NorNet's addressing), the relay on 100 Mbit/s links, 10
viewers. Checks what the report says against what happened: every node's switches took
effect on time, the down provider carried (almost) nothing at any node while it was down,
every viewer's stalls are reported. (A switch made late on purpose making the run invalid
is tested on the 3-node testbed: tests/integration/test_failover.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.scale_inventory import write_inventory
from tests.support.testbed import STATE_ROOT, run_leftovers, run_playbook

PREFIX = "t14sc"
SITES = 12
PROVIDERS = ("isp1", "isp2", "isp3")
PHASE_SECONDS = 8
# Receive share of a provider while it is down, at every node: what got past the outage's
# drop (counted behind it by each node's switcher) is the goal. What reached the NIC
# also counts what the drop then discarded: a server's subflow from its working provider to
# a client's address on the failed one keeps retransmitting into it until it backs off (up to
# ~40 KB in the first second: 2.7-5.1 % of a phase in some runs). A switch that missed its
# phase shows as 30 % and more in either.
DELIVERED_SHARE_LIMIT = 0.03
ARRIVED_SHARE_LIMIT = 0.06
# Twelve switchers fire at the same instants on this machine's two shared cores (each its own
# host at real sites): the last nft transaction lands 60 ms late on a quiet machine and was
# 103 ms late once in CI under the default 100 ms tolerance. The run is judged at 250 ms here,
# the median held to 50 ms; benchmarks/scale.py reports the lags at 20 sites.
TOLERANCE_MS = 250
LAG_P50_LIMIT_S = 0.05


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Path:
    return write_inventory(tmp_path_factory.mktemp("scale") / "inventory", SITES, len(PROVIDERS), spread=True)


@pytest.fixture(scope="module")
def deployed(inventory):
    try:
        run_playbook("deploy.yml", "-i", str(inventory), extra_vars={"testbed_prefix": PREFIX}, timeout=1200)
        yield
    finally:
        run_playbook("playbooks/testbed.yml", "-i", str(inventory),
                     extra_vars={"testbed_prefix": PREFIX, "testbed_state": "absent"}, check=False)
        shutil.rmtree(STATE_ROOT / PREFIX, ignore_errors=True)


def failover(inventory: Path, results: Path, check: bool = True, **extra) -> subprocess.CompletedProcess:
    return run_playbook("failover.yml", "-i", str(inventory), check=check, timeout=900, extra_vars={
        "testbed_prefix": PREFIX, "failover_phase_seconds": PHASE_SECONDS, "failover_results_dir": str(results),
        **extra})


@pytest.mark.timeout(1800)
def test_twelve_sites_switch_on_time_and_the_outages_show_where_the_report_says(deployed, inventory, tmp_path):
    failover(inventory, tmp_path, failover_switch_tolerance_ms=TOLERANCE_MS)
    run_dir = (tmp_path / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    timeline = json.loads((run_dir / "timeline.json").read_text())
    assert summary["valid"] is True, summary["reasons"]
    # Every node switched at every planned instant (4 phases and the end), within tolerance.
    assert len(timeline["switches"]) == SITES and {"push1", "server1"} <= set(timeline["switches"])
    assert timeline["lag_s"]["count"] + timeline["lag_s"]["unchanged"] == SITES * 5
    # The first phase and the end found every provider up already: no transaction to time.
    assert timeline["lag_s"]["unchanged"] == SITES * 2
    # Every transaction is timed by the kernel's notice of its commit, none by nft's exit.
    assert timeline["lag_s"]["by_commit"] == timeline["lag_s"]["count"], timeline["lag_s"]
    assert timeline["tolerance_s"] == TOLERANCE_MS / 1000
    assert timeline["lag_s"]["max"] <= timeline["tolerance_s"], timeline["lag_s"]
    assert timeline["lag_s"]["p50"] <= LAG_P50_LIMIT_S, timeline["lag_s"]
    for phase in timeline["phases"]:
        assert 0 <= phase["start"] - phase["planned_start"] <= timeline["tolerance_s"], phase
    # The outages happened when the report says: a down provider's share at every node.
    phases = summary["phases"]
    assert [p["down"] for p in phases] == [[], ["isp2"], ["isp1"], []]
    for phase in phases[1:3]:
        down = phase["down"][0]
        for key, limit in (("delivered_rx_share", DELIVERED_SHARE_LIMIT), ("rx_share", ARRIVED_SHARE_LIMIT)):
            shares = {node: providers[down][key] for node, providers in phase["nodes"].items()
                      if providers.get(down, {}).get(key) is not None}
            assert len(shares) == SITES, (key, shares)
            assert max(shares.values()) < limit, (phase["name"], key, shares)
    # Every viewer's stalls are reported, and the overview shows every node.
    clients = list(summary["players"])
    assert len(clients) == SITES - 2
    assert all(summary["players"][c]["stall_count"] is not None for c in clients)
    assert summary["players_overall"]["clients"] == SITES - 2
    assert (run_dir / "plots" / "overview.png").stat().st_size > 0
    assert not run_leftovers(PREFIX)
