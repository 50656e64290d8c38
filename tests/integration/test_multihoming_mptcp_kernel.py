"""The mptcp_kernel role on an emulated node (namespace t8-mk-node): sysctls per
namespace and nothing else, idempotence, and the messages where no kernel may be installed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.testbed import REPO, VENV_BIN, ansible_env, recap

NODE = "t8-mk-node"

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


@pytest.fixture
def node(tmp_path):
    subprocess.run(["ip", "netns", "del", NODE], capture_output=True)
    subprocess.run(["ip", "netns", "add", NODE], check=True)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "node": {
                            "ansible_connection": "netns",
                            "ansible_netns_name": NODE,
                            "ansible_python_interpreter": sys.executable,
                            "mptcp_kernel_sysctl_file": str(tmp_path / "sysctl.conf"),
                        }
                    }
                }
            }
        )
    )
    try:
        yield inventory
    finally:
        subprocess.run(["ip", "netns", "del", NODE], capture_output=True)


def play(inventory, **extra):
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/mptcp_kernel.yml",
            "-e",
            json.dumps(extra),
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def sysctl(name, namespace=None):
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run(
        [*prefix, "sysctl", "-n", name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_sysctls_are_set_in_the_node_namespace_only_and_a_second_run_changes_nothing(node, tmp_path):
    names = (
        "net.mptcp.stale_loss_cnt",
        "net.mptcp.blackhole_timeout",
        "net.ipv4.tcp_rto_max_ms",
        "net.ipv4.tcp_retries2",
        "net.ipv4.tcp_rto_min_us",
        "net.ipv4.tcp_notsent_lowat",
        "net.ipv4.tcp_congestion_control",
    )
    host_values = {name: sysctl(name) for name in names}
    # The role lets the namespaces choose cubic by adding it to the host's allowed list (which
    # changes no one's default); the test gives the host its list back.
    allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
    host_allowed = allowed.read_text()
    try:
        first = play(node, mptcp_kernel_add_addr_timeout=7, mptcp_kernel_tcp_congestion_control="cubic")
        assert first.returncode == 0, first.stdout[-3000:]
        assert sysctl("net.mptcp.stale_loss_cnt", NODE) == "1"
        assert sysctl("net.mptcp.blackhole_timeout", NODE) == "0"  # the testbed's outages drop MPTCP SYNs
        assert sysctl("net.mptcp.add_addr_timeout", NODE) == "7"
        assert sysctl("net.ipv4.tcp_rto_max_ms", NODE) == "1000"
        assert sysctl("net.ipv4.tcp_retries2", NODE) == "60"
        assert sysctl("net.ipv4.tcp_rto_min_us", NODE) == "50000"
        assert sysctl("net.ipv4.tcp_notsent_lowat", NODE) == "16384"
        # A new namespace starts with the host's choice (BBR on some hosts); the role sets the one asked for.
        assert sysctl("net.ipv4.tcp_congestion_control", NODE) == "cubic"
        assert {name: sysctl(name) for name in host_values} == host_values
        assert not (tmp_path / "sysctl.conf").exists()  # nothing persists on an emulated node
        second = play(node, mptcp_kernel_add_addr_timeout=7, mptcp_kernel_tcp_congestion_control="cubic")
        assert recap(second.stdout)["node"]["changed"] == 0
        assert "cubic" in allowed.read_text().split()
    finally:
        allowed.write_text(host_allowed)


def test_a_kernel_that_is_too_old_stops_the_play_with_what_the_node_needs(node):
    emulated = play(node, mptcp_kernel_min_version="99.0")
    assert emulated.returncode != 0
    assert "needs a kernel with upstream MPTCP (CONFIG_MPTCP) at version 99.0 or newer" in emulated.stdout
    assert "emulated node" in emulated.stdout
    disabled = play(
        node, mptcp_kernel_min_version="99.0", mpstream_node_emulated=False, mptcp_kernel_install=False
    )
    assert disabled.returncode != 0
    assert "Installing a kernel is disabled (mptcp_kernel_install: false)" in disabled.stdout
