"""After converge and a reboot: per-provider rules and tables, MPTCP endpoints and
limits are in place, and an MPTCP connection between the VMs runs all four subflows."""

import os
import time

import pytest
import testinfra

# NorNet scheme, site 1: server1 is node 10, client1 node 20.
ADDRESSES = {
    "server1": {1: ("198.18.17.10", "2001:2:0:101::a"), 2: ("198.18.33.10", "2001:2:0:201::a")},
    "client1": {1: ("198.18.17.20", "2001:2:0:101::14"), 2: ("198.18.33.20", "2001:2:0:201::14")},
}
PORT = 5077
# The role's nodes; router1 only forwards between the provider segments.
testinfra_hosts = ["server", "client"]


def vm(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def test_a_rule_per_provider_address_into_the_providers_table(host):
    name = host.backend.get_hostname()
    for provider, (ipv4, ipv6) in ADDRESSES[name].items():
        table = 1000 * provider
        assert f"from {ipv4} lookup {table}" in host.check_output("ip -4 rule show")
        assert f"from {ipv6} lookup {table}" in host.check_output("ip -6 rule show")


def test_each_providers_table_has_its_link_and_default_route(host):
    for provider, nic in ((1, "nic1"), (2, "nic2")):
        table = 1000 * provider
        v4 = host.check_output(f"ip -4 route show table {table}")
        v6 = host.check_output(f"ip -6 route show table {table}")
        assert f"default via 198.18.{16 * provider + 1}.1 dev {nic}" in v4, v4
        assert f"198.18.{16 * provider + 1}.0/24 dev {nic}" in v4, v4
        assert f"default via 2001:2:0:{provider}01::1 dev {nic}" in v6, v6


def test_mptcp_endpoints_for_every_address(host):
    name = host.backend.get_hostname()
    endpoints = host.check_output("ip mptcp endpoint show")
    flags = "signal" if name == "server1" else "subflow fullmesh"
    for ipv4, ipv6 in ADDRESSES[name].values():
        for address in (ipv4, ipv6):
            line = next((ln for ln in endpoints.splitlines() if ln.startswith(address + " ")), "")
            assert flags in line, endpoints


def test_mptcp_limits_and_boot_unit(host):
    assert "subflows 8" in host.check_output("ip mptcp limits show")
    assert host.service("mpstream-multihoming").is_enabled


def test_path_watcher_runs(host):
    assert host.service("mpstream-pathwatch").is_running


def diagnostics(server, client) -> str:
    """What the two test units printed and which sockets there are, for a failure message."""
    out = []
    for name, h in (("server1", server), ("client1", client)):
        out.append(f"--- {name}")
        units = "-u molecule-mptcp-listen -u molecule-mptcp-talk"
        out.append(h.run(f"journalctl --no-pager -o cat {units} | tail -20").stdout)
        out.append(h.run("ss -tanM | tail -20; ip mptcp endpoint show; ip mptcp limits show").stdout)
    return "\n".join(out)


def established_pairs(host) -> set[tuple[str, str]]:
    """(local, remote) addresses of the established TCP subflows towards PORT."""
    pairs = set()
    for line in host.check_output("ss -HtnO state established").splitlines():
        words = line.split()
        if len(words) < 4 or not words[3].endswith(f":{PORT}"):
            continue
        # "[2001:db8::1]%nic2:40000": the scope suffix names the NIC a subflow is bound to.
        local, remote = (w.rsplit(":", 1)[0].split("%")[0].strip("[]").removeprefix("::ffff:") for w in words[2:4])
        pairs.add((local, remote))
    return pairs


@pytest.mark.timeout(180)
def test_mptcp_connection_between_the_vms_has_four_subflows():
    """An IPv6 connection runs a subflow from each of client1's addresses to each of
    server1's: the initial one, the others opened by the client's fullmesh endpoints
    once the server announces its second address; the crossing ones through router1."""
    server, client = vm("server1"), vm("client1")
    server_address = ADDRESSES["server1"][1][1]
    listener = (
        "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_MPTCP); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('::', {PORT})); s.listen(); c, _ = s.accept(); "
        "exec('while c.recv(65536): pass')"
    )
    talker = (
        "import socket, time; s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_MPTCP); "
        f"s.connect(('{server_address}', {PORT})); "
        "exec('for _ in range(1500):\\n s.sendall(bytes(1000)); time.sleep(0.1)')"
    )
    expected = {(ADDRESSES["client1"][c][1], ADDRESSES["server1"][s][1]) for c in (1, 2) for s in (1, 2)}
    server.run("systemctl stop molecule-mptcp-listen molecule-mptcp-talk 2>/dev/null")
    client.run("systemctl stop molecule-mptcp-talk 2>/dev/null")
    assert server.run(f'systemd-run --unit=molecule-mptcp-listen --collect python3 -c "{listener}"').rc == 0
    try:
        time.sleep(2)
        assert client.run(f'systemd-run --unit=molecule-mptcp-talk --collect python3 -c "{talker}"').rc == 0
        pairs: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and pairs != expected:
            time.sleep(2)
            pairs = established_pairs(client)
        time.sleep(3)  # would another one still appear?
        pairs = established_pairs(client)
        assert pairs == expected, f"{sorted(pairs)}\n{diagnostics(server, client)}"
        # The MPTCP socket itself; ss's port filters do not apply to MPTCP sockets.
        mptcp_sockets = client.check_output("ss -HMn")
        assert f":{PORT}" in mptcp_sockets, mptcp_sockets
    finally:
        client.run("systemctl stop molecule-mptcp-talk")
        server.run("systemctl stop molecule-mptcp-listen")
