"""An implicit endpoint on an address gives way to the endpoint the path-manager client adds.

When a subflow comes up on an address without an endpoint (a join that arrives between an
endpoint's removal and its return, as in a VM run where the path watcher re-created a
server's `signal` endpoint), the kernel makes the address an implicit endpoint and then
refuses to add that address with an id (EINVAL, on 6.1 as on 6.18): the endpoint was lost
and a viewer with it. Here a client's join to the server's announced address makes one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.testbed import listening, netns_exec, wait_for

SERVER, CLIENT = "t16pmi-srv", "t16pmi-cli"
SERVER_A, SERVER_B, CLIENT_A, CLIENT_B = "198.18.250.1", "198.18.251.1", "198.18.250.2", "198.18.251.2"
PORT = 5000
HOLD = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
if sys.argv[1] == "listen":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(); held, _ = s.accept()  # joins need the listener open
else:
    s.connect((sys.argv[1], int(sys.argv[2])))
time.sleep(60)
"""
PM = """
import json, sys
from mpstream.paths.pathwatch.mptcp_pm import FLAG_SUBFLOW, Endpoint, PmClient
endpoint = Endpoint(9, sys.argv[1], FLAG_SUBFLOW, 0, 0)
with PmClient() as pm:
    if sys.argv[2] == "add":
        pm.add(endpoint)
    else:
        print(json.dumps([str(exc) for _, exc in pm.add_all([endpoint])]))
    print(json.dumps([ep._asdict() for ep in pm.endpoints()]))
"""


def endpoints(ns: str) -> list[dict]:
    out = netns_exec(ns, sys.executable, "-c", "import json; from mpstream.paths.pathwatch.mptcp_pm import PmClient\n"
                     "with PmClient() as pm: print(json.dumps([ep._asdict() for ep in pm.endpoints()]))",
                     check=True).stdout
    return json.loads(out)


def subflows_from(ns: str, address: str) -> int:
    out = netns_exec(ns, "ss", "-tnH", "state", "established", "src", address, check=True).stdout
    return len(out.splitlines())


@pytest.fixture
def connected():
    """Server and client on two veth links, the server announcing B; an MPTCP connection over A."""
    holders = []
    try:
        for ns in (SERVER, CLIENT):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        for link, server, client in (("pa", SERVER_A, CLIENT_A), ("pb", SERVER_B, CLIENT_B)):
            subprocess.run(["ip", "link", "add", link, "netns", SERVER, "type", "veth", "peer", "name", link,
                            "netns", CLIENT], check=True)
            netns_exec(SERVER, "ip", "addr", "add", f"{server}/24", "dev", link, check=True)
            netns_exec(CLIENT, "ip", "addr", "add", f"{client}/24", "dev", link, check=True)
        for ns in (SERVER, CLIENT):
            for link in ("lo", "pa", "pb"):
                netns_exec(ns, "ip", "link", "set", link, "up", check=True)
            netns_exec(ns, "sysctl", "-qw", "net.mptcp.enabled=1", check=True)
            netns_exec(ns, "ip", "mptcp", "limits", "set", "subflows", "4", "add_addr_accepted", "4", check=True)
        netns_exec(SERVER, "ip", "mptcp", "endpoint", "add", SERVER_B, "id", "7", "signal", check=True)
        for ns, role in ((SERVER, "listen"), (CLIENT, SERVER_A)):
            holders.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", HOLD, role, str(PORT)]))
            if role == "listen":
                assert listening(SERVER, PORT)
        yield
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
        for ns in (SERVER, CLIENT):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def test_an_implicit_endpoint_gives_way_to_the_added_one_and_its_subflow_returns(connected):
    # The client joins the announced address from B, which has no endpoint: an implicit one.
    assert wait_for(lambda: any(ep["address"] == CLIENT_B and ep["flags"] & 16 for ep in endpoints(CLIENT))), \
        endpoints(CLIENT)
    refused = netns_exec(CLIENT, "ip", "mptcp", "endpoint", "add", CLIENT_B, "id", "9", "subflow")
    assert refused.returncode != 0, "the kernel no longer refuses an id on an implicit endpoint's address"

    out = netns_exec(CLIENT, sys.executable, "-c", PM, CLIENT_B, "add", check=True).stdout
    table = json.loads(out.splitlines()[-1])
    assert [(ep["id"], ep["address"], ep["flags"]) for ep in table] == [(9, CLIENT_B, 2)]
    # Its subflow was closed with the implicit endpoint; the added endpoint opens one again.
    assert wait_for(lambda: subflows_from(CLIENT, CLIENT_B) == 1), netns_exec(CLIENT, "ss", "-tnH").stdout

    # Added again (by a retry, say): the kernel refuses, the address is held, nothing is left out.
    out = netns_exec(CLIENT, sys.executable, "-c", PM, CLIENT_B, "add_all", check=True).stdout
    assert json.loads(out.splitlines()[0]) == []
    assert [ep["id"] for ep in json.loads(out.splitlines()[1])] == [9]
