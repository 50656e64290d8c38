"""The multihoming role on the emulated testbed (prefix t8tb): rules, tables, endpoints,
all four provider paths for IPv4 and IPv6, one MPTCP connection with a subflow per path,
idempotence, and check mode with diff on a changed inventory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.support.testbed import emulated_testbed, netns_exec, recap, run_playbook

PREFIX = "t8tb"
NODES = {"push1": 1, "server1": 2, "client1": 3}  # site index of each node (node index 10)
PORT = 18937

pytestmark = [pytest.mark.timeout(420), pytest.mark.slow]


def address(version: int, provider: int, site: int, host: int = 10) -> str:
    return (
        f"198.18.{16 * provider + site}.{host}"
        if version == 4
        else f"2001:2:0:{provider}{site:02x}::{host:x}"
    )


def ns(node: str) -> str:
    return f"{PREFIX}-{node}"


def ip_json(node: str, *args: str):
    return json.loads(netns_exec(ns(node), "ip", "-j", *args, check=True).stdout or "[]")


@pytest.fixture(scope="module")
def deployed():
    try:
        with emulated_testbed(PREFIX):
            first = run_playbook("playbooks/multihoming.yml", extra_vars={"testbed_prefix": PREFIX})
            yield first
    finally:
        # Removing the namespaces ended the path watchers; their pid files and logs go too.
        shutil.rmtree(f"/var/lib/mpstream-testbed/{PREFIX}", ignore_errors=True)


def pathwatch_running(node: str) -> bool:
    """What the supervisor says of the node's path watcher."""
    status = subprocess.run(
        [sys.executable, "-m", "mpstream.supervise", "status", "--name", "pathwatch",
         "--state-dir", f"/var/lib/mpstream-testbed/{PREFIX}/{node}"],
        capture_output=True, text=True,
    )
    return json.loads(status.stdout)["running"]


def test_every_node_has_the_rules_tables_and_endpoints_of_the_inventory(deployed):
    for node, site in NODES.items():
        flags = ["signal"] if node == "server1" else ["subflow", "fullmesh"]
        for version in (4, 6):
            rules = {
                (r.get("src"), r.get("table"), r.get("priority"))
                for r in ip_json(node, f"-{version}", "rule")
                if r.get("protocol") == "77"
            }
            assert rules == {(address(version, p, site), str(1000 * p), 1000 + p) for p in (1, 2)}
            for p in (1, 2):
                routes = ip_json(node, f"-{version}", "route", "show", "table", str(1000 * p))
                defaults = [r for r in routes if r["dst"] == "default"]
                assert [(r["gateway"], r["dev"]) for r in defaults] == [
                    (address(version, p, site, 1), f"nic{p}")
                ]
                assert any(
                    r["dst"].endswith("/24" if version == 4 else "/64") and r["dev"] == f"nic{p}"
                    for r in routes
                )
            main = sorted(
                (r["metric"], r["dev"])
                for r in ip_json(node, f"-{version}", "route", "show", "default")
                if r.get("protocol") == "77"
            )
            assert main == [(10, "nic1"), (11, "nic2")]  # the primary provider first
        flag_names = ("signal", "subflow", "backup", "fullmesh")
        endpoints = {
            (e["address"], e["id"], tuple(sorted(f for f in flag_names if e.get(f))))
            for e in ip_json(node, "mptcp", "endpoint", "show")
        }
        assert endpoints == {
            (address(v, p, site), 100 + 10 * p + v, tuple(sorted(flags))) for v in (4, 6) for p in (1, 2)
        }
        limits = netns_exec(ns(node), "ip", "mptcp", "limits", "show", check=True).stdout.split()
        assert limits == ["add_addr_accepted", "8", "subflows", "8"]
        assert pathwatch_running(node), f"path watcher of {node} is not running"


ECHO_SERVER = """
import socket, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, %d)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", %d)); s.listen(64)
def serve(c):
    with c:
        while data := c.recv(65536):
            c.sendall(data)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

TCP_PATHS = """
import json, socket, sys
results = {}
for source, target in json.loads(sys.argv[1]):
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    try:
        with socket.create_connection((target, %d), timeout=3, source_address=(source, 0)) as c:
            c.sendall(b"ping"); results[source + ">" + target] = c.recv(4) == b"ping"
    except OSError as exc:
        results[source + ">" + target] = str(exc)
print(json.dumps(results))
"""


@pytest.fixture
def echo_server(deployed):
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns("server1"), sys.executable, "-c", ECHO_SERVER % (262, PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_all_four_paths_carry_tcp_for_ipv4_and_ipv6_from_each_source_address(echo_server):
    pairs = [
        (address(v, mine, 3), address(v, theirs, 2)) for v in (4, 6) for mine in (1, 2) for theirs in (1, 2)
    ]
    out = netns_exec(
        ns("client1"), sys.executable, "-c", TCP_PATHS % PORT, json.dumps(pairs), check=True
    ).stdout
    results = json.loads(out)
    assert results == {f"{s}>{t}": True for s, t in pairs}


# IPV6_V6ONLY keeps the connection on IPv6 paths: a dual-stack MPTCP socket also takes
# the IPv4 addresses the server announces (8 subflows instead of 4).
MPTCP_CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, 262)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.connect((sys.argv[1], %d))
for _ in range(100):
    s.sendall(b"x" * 1000); s.recv(1000); time.sleep(0.05)
"""


def test_one_mptcp_connection_from_client_to_server_has_a_subflow_per_path(echo_server):
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns("client1"), sys.executable, "-c", MPTCP_CLIENT % PORT, address(6, 1, 2)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wanted = {(address(6, mine, 3), address(6, theirs, 2)) for mine in (1, 2) for theirs in (1, 2)}
        deadline = time.monotonic() + 10
        seen: set = set()
        while time.monotonic() < deadline and not wanted <= seen:
            time.sleep(0.2)
            seen = set()
            for line in netns_exec(ns("client1"), "ss", "-Htn", "state", "established").stdout.splitlines():
                local, peer = line.split()[2:4]
                if peer.endswith(f":{PORT}"):
                    seen.add(
                        (
                            local.rsplit(":", 1)[0].split("%")[0].strip("[]"),
                            peer.rsplit(":", 1)[0].strip("[]"),
                        )
                    )
        assert wanted <= seen, f"IPv6 subflows seen: {sorted(seen)}"
        time.sleep(1.0)  # would a fifth appear?
        subflows = [
            line
            for line in netns_exec(ns("client1"), "ss", "-Htn", "state", "established").stdout.splitlines()
            if line.split()[3].endswith(f":{PORT}")
        ]
        assert len(subflows) == 4, subflows
    finally:
        proc.kill()
        proc.wait()


def test_second_run_changes_nothing(deployed):
    again = run_playbook("playbooks/multihoming.yml", extra_vars={"testbed_prefix": PREFIX})
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-4000:]


def test_check_diff_on_a_changed_inventory_shows_the_change_and_changes_nothing(deployed):
    before = {node: netns_exec(ns(node), "ip", "route", "show", "default").stdout for node in NODES}
    checked = run_playbook(
        "playbooks/multihoming.yml",
        "--check",
        "--diff",
        extra_vars={"testbed_prefix": PREFIX, "multihoming_primary_provider": "isp2"},
    )
    assert "+ip -4 route add default via 198.18.35.1 dev nic2 table main metric 10" in checked.stdout
    assert "-ip -4 route add default via 198.18.35.1 dev nic2 table main metric 11" in checked.stdout
    assert all(counts["changed"] >= 1 for counts in recap(checked.stdout).values())
    assert before == {node: netns_exec(ns(node), "ip", "route", "show", "default").stdout for node in NODES}


def test_state_absent_removes_only_what_the_role_owns(deployed):
    foreign = ("ip", "rule", "add", "from", "198.18.99.9", "table", "99", "priority", "99")
    netns_exec(ns("client1"), *foreign, check=True)  # someone else's rule: must survive
    removed = run_playbook(
        "playbooks/multihoming.yml", extra_vars={"testbed_prefix": PREFIX, "multihoming_state": "absent"}
    )
    assert all(counts["failed"] == 0 for counts in recap(removed.stdout).values())
    for node in NODES:
        assert not [r for r in ip_json(node, "rule") if r.get("protocol") == "77"]
        assert not [
            r for r in ip_json(node, "-6", "route", "show", "table", "all") if r.get("protocol") == "77"
        ]
        assert ip_json(node, "mptcp", "endpoint", "show") == []
        assert not pathwatch_running(node)
    assert any(r.get("priority") == 99 for r in ip_json("client1", "rule"))
