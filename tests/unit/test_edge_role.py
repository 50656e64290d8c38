"""The relay role renders an edge's origins from the inventory's `origin` group (inventory/edge.example)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mpstream.streaming.relay.config import load

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = """
- hosts: edge4:origin1
  gather_facts: false
  vars_files: [{layout}/defaults/main.yml, {role}/defaults/main.yml, {role}/vars/main.yml]
  tasks:
    - ansible.builtin.template:
        src: {role}/templates/relay.toml.j2
        dest: "{out}/{{{{ inventory_hostname }}}}.toml"
        mode: "0644"
      delegate_to: localhost
"""
ANSIBLE = Path(sys.executable).with_name("ansible-playbook")


@pytest.mark.skipif(not ANSIBLE.exists() and not shutil.which("ansible-playbook"), reason="no ansible")
def test_edges_get_the_origin_groups_hosts_and_origins_get_none(tmp_path):
    playbook = tmp_path / "render.yml"
    # the relay role's defaults read the node's layout, which its dependency node_layout owns
    playbook.write_text(PLAYBOOK.format(role=REPO / "roles" / "relay", layout=REPO / "roles" / "node_layout",
                                        out=tmp_path))
    run = subprocess.run([str(ANSIBLE), "-i", str(REPO / "inventory" / "edge.example"), str(playbook),
                          "-e", "relay_origin_port=1936"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    edge = load(tmp_path / "edge4.toml")
    # Each origin's first provider's IPv6 address (site 2 and 3, node 10), in inventory order.
    assert edge.origins == ("rtmp://[2001:db8:0:102::a]:1936/live", "rtmp://[2001:db8:0:103::a]:1936/live")
    assert edge.origins_for("live") == edge.origins
    assert load(tmp_path / "origin1.toml").origins == ()
