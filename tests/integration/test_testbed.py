"""The emulated testbed: reachability, provider paths, outages, shaping, idempotence, teardown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.support.testbed import (
    REPO,
    VENV_BIN,
    ansible_env,
    emulated_testbed,
    namespaces,
    netns_exec,
    recap,
    run_playbook,
)

PREFIX = "t2tb"
# Distinct rates per provider and direction, so each shaper is seen doing its own job.
PROVIDERS = [
    {"name": "isp1", "index": 1, "nic": "nic1", "rate_up": "2mbit", "rate_down": "8mbit"},
    {"name": "isp2", "index": 2, "nic": "nic2", "rate_up": "8mbit", "rate_down": "3mbit"},
]
# The default inventory's nodes (site index, node index 10).
NODES = {"push1": 1, "server1": 2, "client1": 3}


def address(version: int, provider: int, site: int) -> str:
    if version == 4:
        return f"198.18.{16 * provider + site}.10"
    return f"2001:2:0:{provider}{site:02x}::a"


def gateway(version: int, provider: int, site: int) -> str:
    return f"198.18.{16 * provider + site}.1" if version == 4 else f"2001:2:0:{provider}{site:02x}::1"


@pytest.fixture(scope="module")
def built():
    before_links = root_links()
    before_tables = root_nft_tables()
    with emulated_testbed(PREFIX, {"mpstream_providers": PROVIDERS}) as first_run:
        warm_up()
        yield first_run
    # The context manager has removed the testbed: nothing of it may remain.
    assert not {n for n in namespaces() if n.startswith(PREFIX + "-")}
    assert root_links() == before_links
    assert root_nft_tables() == before_tables


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def root_nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def warm_up():
    """Resolve neighbours once, so the first probe of a test is not lost to NDP/ARP."""
    for node, site in NODES.items():
        for provider in (1, 2):
            for version in (4, 6):
                netns_exec(f"{PREFIX}-{node}", "ping", f"-{version}", "-c", "1", "-W", "1",
                           gateway(version, provider, site))


def ping(ns: str, target: str, *, nic: str | None = None, count: int = 2) -> bool:
    args = ["ping", "-c", str(count), "-i", "0.2", "-W", "1"]
    if nic:
        args += ["-I", nic]
    return netns_exec(ns, *args, target).returncode == 0


def test_first_run_changed_and_second_run_changes_nothing(built):
    assert recap(built.stdout)["localhost"]["changed"] == 1
    again = run_playbook("playbooks/testbed.yml", extra_vars={"testbed_prefix": PREFIX,
                                                              "mpstream_providers": PROVIDERS})
    assert recap(again.stdout)["localhost"]["changed"] == 0


def test_check_mode_reports_a_changed_rate_and_changes_nothing(built):
    changed = [dict(p, rate_up="5mbit") if p["name"] == "isp1" else p for p in PROVIDERS]
    result = run_playbook("playbooks/testbed.yml", "--check", "--diff",
                          extra_vars={"testbed_prefix": PREFIX, "mpstream_providers": changed})
    assert recap(result.stdout)["localhost"]["changed"] == 1
    qdisc = subprocess.run(["tc", "-n", f"{PREFIX}-push1", "qdisc", "show", "dev", "nic1"],
                           capture_output=True, text=True).stdout
    assert "rate 2Mbit" in qdisc


def test_every_node_reaches_its_provider_routers_over_both_families(built):
    failures = []
    for node, site in NODES.items():
        for provider, nic in ((1, "nic1"), (2, "nic2")):
            for version in (4, 6):
                target = gateway(version, provider, site)
                if not ping(f"{PREFIX}-{node}", target, nic=nic):
                    failures.append(f"{node} {nic} -> {target}")
    assert not failures


def test_ansible_reaches_every_node_through_the_netns_connection(built):
    result = subprocess.run([str(VENV_BIN / "ansible"), "testbed", "-m", "ansible.builtin.ping",
                             "-e", f"testbed_prefix={PREFIX}"],
                            cwd=REPO, capture_output=True, text=True, env=ansible_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(NODES)


# A one-way UDP probe: the sender binds to a NIC, the receiver reports which datagrams arrived.
RECEIVER = textwrap.dedent("""
    import json, socket, sys, time
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 5999))
    sock.settimeout(0.2)
    print("ready", flush=True)
    seen, deadline = set(), time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        try:
            seen.add(sock.recv(100).decode())
        except socket.timeout:
            pass
    print(json.dumps(sorted(seen)))
""")
SENDER = textwrap.dedent("""
    import socket, sys
    for label in sys.argv[1:]:
        nic, target = label.split(">")
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, nic.encode())
        for _ in range(3):
            sock.sendto(label.encode(), (target, 5999))
""")


def delivered_paths(src: str, dst: str, dst_site: int) -> set[str]:
    """Which of the 8 one-way paths (2 NICs x 2 destination addresses x 2 families) deliver."""
    labels = [f"{nic}>{address(version, provider, dst_site)}"
              for nic in ("nic1", "nic2") for provider in (1, 2) for version in (4, 6)]
    receiver = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-{dst}", sys.executable, "-c", RECEIVER, "1.5"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        netns_exec(f"{PREFIX}-{src}", sys.executable, "-c", SENDER, *labels, check=True)
        return set(json.loads(receiver.stdout.readline()))
    finally:
        receiver.kill()
        receiver.wait()


def router_rx_packets(provider: str, port: str) -> int:
    out = subprocess.run(["ip", "-n", f"{PREFIX}-{provider}", "-s", "-j", "link", "show", port],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["stats64"]["rx"]["packets"]


def test_node_to_node_traffic_crosses_the_provider_of_the_nic_it_leaves_from(built):
    port = "s1n10"  # push1's access port on each provider router
    for nic, via, other in (("nic1", "isp1", "isp2"), ("nic2", "isp2", "isp1")):
        before = {p: router_rx_packets(p, port) for p in ("isp1", "isp2")}
        netns_exec(f"{PREFIX}-push1", "ping", "-c", "20", "-i", "0.01", "-q", "-I", nic,
                   address(6, 1, NODES["server1"]), check=True)
        grown = {p: router_rx_packets(p, port) - before[p] for p in ("isp1", "isp2")}
        assert grown[via] >= 20, (nic, grown)
        assert grown[other] < 5, (nic, grown)  # at most a stray neighbour solicitation


def test_all_four_paths_between_two_nodes_work(built):
    assert len(delivered_paths("push1", "server1", NODES["server1"])) == 8


@pytest.mark.parametrize("down,surviving", [("isp2", "isp1"), ("isp1", "isp2")])
def test_a_provider_that_drops_forwarding_cuts_exactly_its_paths(built, down, surviving):
    ns = f"{PREFIX}-{down}"
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, text=True, input=(
        "table inet t2_outage { chain forward { type filter hook forward priority 0; policy drop; }; }"))
    try:
        delivered = delivered_paths("push1", "server1", NODES["server1"])
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "t2_outage"], check=True)
    index = int(surviving[-1])
    nic = f"nic{index}"
    # Only the path that stays inside the surviving provider: its NIC to its address.
    assert delivered == {f"{nic}>{address(v, index, NODES['server1'])}" for v in (4, 6)}
    assert len(delivered_paths("push1", "server1", NODES["server1"])) == 8  # restored


@pytest.mark.parametrize("nic,provider,rate_mbit", [("nic1", 1, 2.0), ("nic2", 2, 3.0)])
def test_shaping_limits_a_bulk_transfer_to_the_configured_rate(built, nic, provider, rate_mbit):
    server_addr = address(4, provider, NODES["server1"])
    iperf = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-server1", "iperf3", "-s", "-1", "-B", server_addr],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = netns_exec(f"{PREFIX}-push1", "iperf3", "-c", server_addr, "-B", address(4, provider, 1),
                         "--bind-dev", nic, "-t", "5", "-O", "1", "-J", check=True).stdout
    finally:
        iperf.kill()
        iperf.wait()
    goodput = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    # tbf counts whole Ethernet frames: TCP payload is 1448 of every 1514 bytes on the wire.
    expected = rate_mbit * 1448 / 1514
    assert abs(goodput - expected) <= 0.10 * expected, (goodput, expected)
