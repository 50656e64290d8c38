"""The failover role with origins and edges (inventory/edge-testbed.example): the publisher's URLs,
each client's edge, and the switch plans of a phase that takes a host down (about 5 s: one
ansible-playbook run that renders the role's variables for every host)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "failover"
ANSIBLE = Path(sys.executable).with_name("ansible-playbook")
PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars_files: [{role}/defaults/main.yml, {role}/vars/main.yml]
  tasks:
    - ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        content: "{{{{ {{'publish': _failover_publish_urls, 'play': _failover_play_url,
                       'plan': _failover_node_plan}} | to_json }}}}"
        mode: "0644"
      delegate_to: localhost
"""
T0 = 1_000_000.0
SCHEDULE = {"run_id": "r1", "t0": T0, "phases": [
    {"name": "all up", "down": [], "start": T0, "end": T0 + 8},
    {"name": "isp2 down", "down": ["isp2"], "start": T0 + 8, "end": T0 + 16},
    {"name": "origin1 down", "down": ["origin1"], "start": T0 + 16, "end": T0 + 24},
    {"name": "isp1 down, isp2 up", "down": ["isp1"], "start": T0 + 24, "end": T0 + 32}]}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if not ANSIBLE.exists() and not shutil.which("ansible-playbook"):
        pytest.skip("no ansible")
    out = tmp_path_factory.mktemp("failover-edges")
    playbook = out / "render.yml"
    playbook.write_text(PLAYBOOK.format(role=ROLE, out=out))
    # as describe.yml measures it on every node of real sites: here every clock 0.25 s behind
    clock = {"clock": {"correction_s": -0.25}}
    extra = {"failover_schedule": SCHEDULE, "failover_phase_seconds": 8, "failover_relay_port": 1936,
             "_failover_clock": clock}
    run = subprocess.run([str(ANSIBLE), "-i", str(REPO / "inventory" / "edge-testbed.example"), str(playbook),
                          "-e", json.dumps(extra)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_the_publisher_feeds_every_origin_in_inventory_order(rendered):
    # Each origin at its first provider's IPv6 address (sites 2 and 3, node 10).
    assert rendered["push1"]["publish"] == ["rtmp://[2001:db8:0:102::a]:1936/live/mpstream",
                                            "rtmp://[2001:db8:0:103::a]:1936/live/mpstream"]


def test_each_client_plays_from_the_edge_of_its_site(rendered):
    assert rendered["client4"]["play"] == "rtmp://[2001:db8:0:104::a]:1936/live/mpstream"
    assert rendered["client5"]["play"] == "rtmp://[2001:db8:0:105::a]:1936/live/mpstream"


def nics_per_switch(plan: dict) -> list[list[str]]:
    return [[nic for apply in s["apply"] for nic in apply["nics"]] for s in plan["switches"]]


def test_a_phase_naming_a_host_cuts_all_its_providers_there_and_nothing_elsewhere(rendered):
    # switches: the four phases, then the end that brings everything back
    assert nics_per_switch(rendered["origin1"]["plan"]) == [[], ["nic2"], ["nic1", "nic2"], ["nic1"], []]
    for other in ("origin2", "edge4", "client5", "push1"):
        assert nics_per_switch(rendered[other]["plan"]) == [[], ["nic2"], [], ["nic1"], []], other
    assert [s["name"] for s in rendered["origin1"]["plan"]["switches"]][2] == "origin1 down"
    # each switcher keeps the controller's instants by its own clock
    assert {rendered[host]["plan"]["clock_offset_s"] for host in rendered} == {-0.25}
