"""The rollback guard restores a node whose new routing cuts the controller off.

Namespaces `t8-rg-*`: the controller (where ansible-playbook runs), a router, and the
node with one provider NIC. The controller confirms reachability by pinging the node's
address, so the confirmation depends on the node's routing exactly like an SSH
connection would. A good change is confirmed and kept; a change to a gateway that does
not exist cuts the controller off, the play fails saying so, and the node has restored
its previous routing by itself.
"""

import json
import subprocess
import sys

import pytest

from tests.support.testbed import REPO, VENV_BIN, ansible_env

CTL, GW, NODE = "t8-rg-ctl", "t8-rg-gw", "t8-rg-node"
NODE_ADDR, GOOD_GW, BAD_GW = "198.18.17.10", "198.18.17.1", "198.18.17.254"

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def ns(name, *args, check=True):
    return sh("ip", "netns", "exec", name, *args, check=check)


def teardown():
    for name in (CTL, GW, NODE):
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def network():
    teardown()
    try:
        for name in (CTL, GW, NODE):
            sh("ip", "netns", "add", name)
            ns(name, "ip", "link", "set", "lo", "up")
        sh("ip", "-n", GW, "link", "add", "ctl", "type", "veth", "peer", "name", "wan", "netns", CTL)
        sh("ip", "-n", GW, "link", "add", "node", "type", "veth", "peer", "name", "nic1", "netns", NODE)
        for name, dev, addr in (
            (GW, "ctl", "198.18.99.1/24"),
            (CTL, "wan", "198.18.99.2/24"),
            (GW, "node", "198.18.17.1/24"),
            (NODE, "nic1", f"{NODE_ADDR}/24"),
        ):
            ns(name, "ip", "addr", "add", addr, "dev", dev)
            ns(name, "ip", "link", "set", dev, "up")
        ns(GW, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ns(CTL, "ip", "route", "add", "default", "via", "198.18.99.1")
        yield
    finally:
        teardown()


def deploy(tmp_path, gateway):
    inventory = {
        "all": {
            "hosts": {
                "node": {
                    "ansible_connection": "netns",
                    "ansible_netns_name": NODE,
                    "ansible_python_interpreter": sys.executable,
                    "multihoming_interfaces": [
                        {
                            "name": "nic1",
                            "provider": "isp1",
                            "provider_index": 1,
                            "ipv4": f"{NODE_ADDR}/24",
                            "gateway4": gateway,
                        }
                    ],
                    "mpstream_node_emulated": True,  # no packages, no boot persistence
                    "multihoming_guard": True,
                    "multihoming_guard_confirm_address": NODE_ADDR,
                    "multihoming_guard_timeout": 20,
                    "multihoming_guard_confirm_within": 6,
                    "multihoming_pathwatch": False,
                    "multihoming_state_dir": str(tmp_path / "state"),
                }
            }
        }
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            CTL,
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(path),
            "playbooks/multihoming.yml",
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def controller_reaches_node():
    return ns(CTL, "ping", "-c", "1", "-W", "1", NODE_ADDR, check=False).returncode == 0


def table_default():
    return ns(NODE, "ip", "route", "show", "table", "1000", "default").stdout.split()


def test_guard_keeps_a_confirmed_change_and_restores_one_that_cuts_the_controller_off(network, tmp_path):
    assert not controller_reaches_node()  # the node has no route back yet

    good = deploy(tmp_path, GOOD_GW)
    assert good.returncode == 0, good.stdout[-4000:]
    assert controller_reaches_node()
    assert table_default()[:3] == ["default", "via", GOOD_GW]
    assert not (tmp_path / "state" / "routing-guard.json").exists()  # confirmed, disarmed

    # Nothing to change: no guard armed, no reconnect (the check-mode look says so).
    again = deploy(tmp_path, GOOD_GW)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-4000:]
    armed = again.stdout.split("TASK [multihoming : Arm the rollback guard]")
    assert len(armed) == 2 and "skipping: [node]" in armed[1].split("TASK [")[0], again.stdout[-4000:]

    bad = deploy(tmp_path, BAD_GW)
    assert bad.returncode != 0
    assert "The guard rolled the node back to its previous routing" in bad.stdout, bad.stdout[-4000:]
    assert f"removed ip -4 route add default via {BAD_GW} dev nic1 table 1000" in bad.stdout
    assert table_default()[:3] == ["default", "via", GOOD_GW]
    assert controller_reaches_node()
    rollback = json.loads((tmp_path / "state" / "routing-guard.json.rolled-back").read_text())
    assert rollback["errors"] == []
