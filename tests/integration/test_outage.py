"""mpstream outage: nftables outages that switch on time, expire by themselves and cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

NS = "t6out"
PEER = "t6out-peer"


def mpstream(*args: str, netns: str | None = NS) -> dict:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run([*prefix, sys.executable, "-m", "mpstream", "outage", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def ping(target: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", NS, "ping", "-c", "1", "-W", "1", target],
                          capture_output=True).returncode == 0


@pytest.fixture
def node():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "netns", "add", PEER], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "link", "add", "nic1", "type", "veth", "peer", "name", "peer1",
                        "netns", PEER], check=True)
        for ns, ifname, address in ((NS, "nic1", "198.18.250.1/24"), (PEER, "peer1", "198.18.250.2/24")):
            subprocess.run(["ip", "-n", ns, "addr", "add", address, "dev", ifname], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", ifname, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        subprocess.run(["ip", "netns", "del", PEER])


def test_a_nic_outage_drops_its_traffic_and_expires_by_itself(node):
    assert ping("198.18.250.2")
    applied = mpstream("apply", "--nic", "nic1", "--for", "1.5")
    assert applied["changed"] and applied["nics"] == ["nic1"]
    assert mpstream("status")["outage"]["nics"] == ["nic1"]
    assert not ping("198.18.250.2")
    time.sleep(2.0)
    assert mpstream("status")["outage"] is None
    assert ping("198.18.250.2")


def test_a_switch_waits_for_its_time_and_an_immediate_clear_cancels_it(node):
    start = time.time()
    mpstream("apply", "--nic", "nic1", "--for", "30", "--at", str(start + 1.0))
    assert time.time() - start >= 1.0
    assert mpstream("status")["outage"]["nics"] == ["nic1"]
    assert mpstream("clear") == {"changed": True, "cancelled": 0, "cleared": {"nics": ["nic1"], "forwarding": False}}
    assert mpstream("clear")["changed"] is False
    pending = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-m", "mpstream", "outage", "apply",
                                "--forwarding", "--for", "30", "--at", str(time.time() + 3)],
                               stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert mpstream("clear")["cancelled"] == 1
        assert pending.wait(timeout=5) != 0
        time.sleep(2.5)
        assert mpstream("status")["outage"] is None
    finally:
        pending.kill()


def test_a_router_outage_acts_in_the_named_namespaces(node):
    result = mpstream("apply", "--forwarding", "--for", "30", "--netns", NS, netns=None)
    assert result["netns"][NS]["forwarding"] is True
    tables = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "tables"], capture_output=True, text=True)
    assert "mpstream_outage" in tables.stdout
    assert mpstream("clear", "--netns", NS, netns=None)["changed"]


def test_a_missing_nic_is_a_clear_error_that_changes_nothing(node):
    result = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-m", "mpstream", "outage", "apply",
                             "--nic", "eth9", "--for", "5"], capture_output=True, text=True)
    assert result.returncode != 0 and "no interface eth9" in result.stderr
    assert mpstream("status")["outage"] is None
