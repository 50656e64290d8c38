"""After deploy.yml and a reboot: every node's per-provider rules and tables, MPTCP
endpoints and limits are back, its routes lead through its site's gateway (router1), the
providers' round trips are router1's netem delays, and an MPTCP connection from client1
to server1 runs a subflow from each of client1's addresses to each of server1's."""

import time

import pytest
from nodes import PROVIDERS, SITES, addresses, ipv4, ipv6, subnet4, vm

PORT = 5077
# Round trips between two sites (router1's netem: both access links of 10 ms on isp1, of
# 30 ms on isp2, one way); an emulated CPU adds its own milliseconds on top.
RTT_MS = {1: 40, 2: 120}


def test_a_rule_per_provider_address_into_the_providers_table(host):
    name = host.backend.get_hostname()
    for provider, (v4, v6) in addresses(name).items():
        table = 1000 * provider
        assert f"from {v4} lookup {table}" in host.check_output("ip -4 rule show")
        assert f"from {v6} lookup {table}" in host.check_output("ip -6 rule show")


def test_each_providers_table_leads_through_the_sites_gateway(host):
    site = SITES[host.backend.get_hostname()]
    for provider, nic in PROVIDERS.items():
        table = 1000 * provider
        v4 = host.check_output(f"ip -4 route show table {table}")
        v6 = host.check_output(f"ip -6 route show table {table}")
        assert f"default via {ipv4(provider, site, 1)} dev {nic}" in v4, v4
        assert f"{subnet4(provider, site)} dev {nic}" in v4, v4
        assert f"default via {ipv6(provider, site, 1)} dev {nic}" in v6, v6


def test_mptcp_endpoints_for_every_address(host):
    name = host.backend.get_hostname()
    endpoints = host.check_output("ip mptcp endpoint show")
    flags = "signal" if name == "server1" else "subflow fullmesh"
    for v4, v6 in addresses(name).values():
        for address in (v4, v6):
            line = next((ln for ln in endpoints.splitlines() if ln.startswith(address + " ")), "")
            assert flags in line, endpoints


def test_mptcp_limits_boot_unit_and_path_watcher(host):
    assert "subflows 8" in host.check_output("ip mptcp limits show")
    assert host.service("mpstream-multihoming").is_enabled
    assert host.service("mpstream-pathwatch").is_running


def test_round_trips_are_the_providers_delays():
    """From the client's address on a provider to the server's on the same one (the source
    address picks the provider's table both ways; across providers it would be 80 ms)."""
    client, server = addresses("client1"), addresses("server1")
    for provider, expected in RTT_MS.items():
        for source, address in zip(client[provider], server[provider], strict=True):
            out = vm("client1").check_output(f"ping -n -q -c 5 -i 0.3 -w 20 -I {source} {address}")
            # rtt min/avg/max/mdev = 40.512/41.004/...
            low = float(out.rsplit("=", 1)[1].split("/")[0])
            assert expected <= low < expected * 1.5 + 20, (address, out)


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
def test_mptcp_connection_across_the_sites_has_a_subflow_per_address_pair():
    """An IPv6 connection runs a subflow from each of client1's addresses to each of
    server1's: the initial one, the others opened by the client's fullmesh endpoints once
    the server announces its second address; all of them through router1."""
    server, client = vm("server1"), vm("client1")
    server_address = addresses("server1")[1][1]
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
    expected = {(addresses("client1")[c][1], addresses("server1")[s][1]) for c in PROVIDERS for s in PROVIDERS}
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
