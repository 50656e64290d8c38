"""The boot script the multihoming role renders for real hosts re-creates exactly the
state its modules set live: run in a fresh namespace (t8-boot), the modules then find
nothing to change. (That it runs at boot is proven in the molecule VMs.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.testbed import REPO, VENV_BIN, ansible_env

NODE = "t8-boot"
INTERFACES = [
    {
        "name": "nic1",
        "provider": "isp1",
        "provider_index": 1,
        "ipv4": "198.18.19.10/24",
        "gateway4": "198.18.19.1",
        "ipv6": "2001:2:0:103::a/64",
        "gateway6": "2001:2:0:103::1",
    },
    {
        "name": "nic2",
        "provider": "isp2",
        "provider_index": 2,
        "ipv4": "198.18.35.10/24",
        "gateway4": "198.18.35.1",
        "ipv6": "2001:2:0:203::a/64",
        "gateway6": "2001:2:0:203::1",
    },
]
ENDPOINTS = [
    {
        "id": 100 + 10 * i["provider_index"] + v,
        "address": i[f"ipv{v}"].split("/")[0],
        "dev": i["name"],
        "flags": ["subflow", "fullmesh"],
    }
    for i in INTERFACES
    for v in (4, 6)
]

pytestmark = [pytest.mark.timeout(180)]

sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
import policy_routing_state  # noqa: E402


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture
def node():
    subprocess.run(["ip", "netns", "del", NODE], capture_output=True)
    sh("ip", "netns", "add", NODE)
    try:
        for iface in INTERFACES:
            sh(
                "ip",
                "-n",
                NODE,
                "link",
                "add",
                iface["name"],
                "type",
                "veth",
                "peer",
                "name",
                "p" + iface["name"],
            )
            for dev in (iface["name"], "p" + iface["name"]):
                sh("ip", "-n", NODE, "link", "set", dev, "up")
            sh("ip", "-n", NODE, "addr", "add", iface["ipv4"], "dev", iface["name"])
            sh("ip", "-n", NODE, "addr", "add", iface["ipv6"], "dev", iface["name"], "nodad")
        yield NODE
    finally:
        subprocess.run(["ip", "netns", "del", NODE], capture_output=True)


def ansible(module, args, *extra):
    return subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "all",
            "-i",
            f"{NODE},",
            "-c",
            "netns",
            "-e",
            f"ansible_netns_name={NODE}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-m",
            module,
            "-a",
            json.dumps(args),
            *extra,
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_boot_script_recreates_what_the_modules_set(node, tmp_path):
    variables = tmp_path / "vars.json"
    variables.write_text(
        json.dumps(
            {
                "_multihoming_routing": {"state": policy_routing_state.desired_state(INTERFACES)},
                "_multihoming_endpoints": ENDPOINTS,
                "multihoming_route_protocol": 77,
                "multihoming_mptcp_limits": {"subflows": 8, "add_addr_accepted": 8},
            }
        )
    )
    script = tmp_path / "mpstream-multihoming"
    rendered = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-m",
            "template",
            "-a",
            f"src=roles/multihoming/templates/mpstream-multihoming.sh.j2 dest={script} mode=0755",
            "-e",
            f"@{variables}",
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stdout
    for _ in range(2):  # a second boot-time run must work on top of the first, too
        run = subprocess.run(["ip", "netns", "exec", NODE, "sh", str(script)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr

    routing = ansible("mpstream.nornet.policy_routing", {"interfaces": INTERFACES}, "--check")
    assert routing.returncode == 0 and '"changed": false' in routing.stdout, routing.stdout
    endpoints = ansible(
        "mpstream.nornet.mptcp_endpoints",
        {"endpoints": ENDPOINTS, "limits": {"subflows": 8, "add_addr_accepted": 8}},
        "--check",
    )
    assert endpoints.returncode == 0 and '"changed": false' in endpoints.stdout, endpoints.stdout
    assert Path(script).read_text().count("ip -6 rule add") == 2
