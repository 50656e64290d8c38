"""The relay between two namespaces joined by two links: its connections are MPTCP with several subflows.

Namespace t3-<pid>-b runs `mpstream relay --mptcp on` and announces its second address
(`signal` endpoint); t3-<pid>-a runs a publisher and a player on MPTCP sockets with a
`subflow` endpoint on its second link. `ss -M` in the relay's namespace and the stats
API must both show more than one subflow per connection.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.timeout(90),
]

MPSTREAM = str(Path(sys.executable).with_name("mpstream"))
REPO = Path(__file__).resolve().parents[2]
RELAY_ADDRESSES = ("2001:2:0:31::1", "2001:2:0:32::1")
CLIENT_ADDRESSES = ("2001:2:0:31::2", "2001:2:0:32::2")

PEERS = r"""
import asyncio, sys, time
from tests.support.rtmp_client import RtmpPeer
from mpstream.streaming.rtmp import AUDIO, VIDEO, MediaMessage, PlayStarted, PublishStarted

URL = sys.argv[1]

async def main():
    player = await RtmpPeer.open(URL, "play", mptcp="on")
    await player.wait_for(PlayStarted)
    publisher = await RtmpPeer.open(URL, "publish", mptcp="on")
    sid = (await publisher.wait_for(PublishStarted)).stream_id
    publisher.session.send_media(VIDEO, sid, 0, b"\x17\x00\x00\x00\x00\x01\x42\x00\x1e\xff")
    for i in range(100):  # 4 s of 25 fps, ~1.3 Mbit/s
        body = (b"\x17\x01" if i % 50 == 0 else b"\x27\x01") + bytes(20000 if i % 50 == 0 else 6000)
        publisher.session.send_media(VIDEO, sid, i * 40, body)
        publisher.session.send_media(AUDIO, sid, i * 40, b"\xaf\x01" + bytes(200))
        await publisher.drain()
        if i == 60:
            print("READY", flush=True)  # the test now inspects both connections
        await asyncio.sleep(0.04)
    await player.wait_for(MediaMessage, count=201, timeout=10)
    print("FRAMES", sum(1 for e in player.of(MediaMessage) if e.type_id == VIDEO) - 1, flush=True)
    await publisher.close()
    await player.close()

asyncio.run(main())
"""


def sh(*args: str, ns: str | None = None, check: bool = True) -> str:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30).stdout


def http_get(ns: str, path: str) -> str:
    """GET from the relay's stats API, which listens on the loopback of its namespace."""
    url = f"http://127.0.0.1:8935{path}"
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    return sh(sys.executable, "-c", code, ns=ns)


@pytest.fixture
def two_links():
    """Namespaces a (client) and b (relay) with two veth links, MPTCP endpoints on the second."""
    a, b = f"t3-{os.getpid()}-a", f"t3-{os.getpid()}-b"
    created = []
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for link in (1, 2):
            sh("ip", "link", "add", f"t3a{link}", "netns", a, "type", "veth", "peer", "name", f"t3b{link}",
               "netns", b)
            sh("ip", "-n", a, "addr", "add", f"{CLIENT_ADDRESSES[link - 1]}/64", "dev", f"t3a{link}", "nodad")
            sh("ip", "-n", b, "addr", "add", f"{RELAY_ADDRESSES[link - 1]}/64", "dev", f"t3b{link}", "nodad")
            sh("ip", "-n", a, "link", "set", f"t3a{link}", "up")
            sh("ip", "-n", b, "link", "set", f"t3b{link}", "up")
        for ns in (a, b):
            sh("sysctl", "-qw", "net.mptcp.enabled=1", ns=ns)
            sh("ip", "-n", ns, "mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4")
        sh("ip", "-n", b, "mptcp", "endpoint", "add", RELAY_ADDRESSES[1], "dev", "t3b2", "signal")
        sh("ip", "-n", a, "mptcp", "endpoint", "add", CLIENT_ADDRESSES[1], "dev", "t3a2", "subflow")
        yield a, b
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)


def test_relay_connections_use_several_subflows(two_links, tmp_path):
    a, b = two_links
    log = tmp_path / "relay.log"
    relay = subprocess.Popen(["ip", "netns", "exec", b, MPSTREAM, "relay", "--listen", "[::]:1935", "--http",
                              "127.0.0.1:8935", "--mptcp", "on"], stdout=subprocess.DEVNULL,
                             stderr=open(log, "wb"))
    peers = None
    try:
        deadline = time.monotonic() + 10
        while "stats API on" not in log.read_text():
            assert relay.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        peers = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", PEERS,
                                  f"rtmp://[{RELAY_ADDRESSES[0]}]:1935/live/cam"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert peers.stdout.readline().strip() == "READY", peers.stderr.read()

        ss = sh("ss", "-Mni", ns=b)
        extra = [int(n) for n in re.findall(r"\bsubflows:(\d+)", ss)]
        assert len(extra) >= 2 and all(n >= 1 for n in extra), ss  # per connection, beyond the first subflow
        tcp = sh("ss", "-tni", "sport", "= :1935", ns=b)
        assert tcp.count("tcp-ulp-mptcp") >= 4, tcp  # two connections x two subflows
        assert RELAY_ADDRESSES[1] in tcp  # the announced second address carries subflows

        clients = json.loads(http_get(b, "/clients"))
        roles = {c["role"]: c for c in clients}
        assert set(roles) == {"publisher", "player"}
        for client in clients:
            assert client["mptcp"] is True and client["subflows"] >= 2, client
            paths = " ".join(client["subflow_paths"])
            assert len(client["subflow_paths"]) == client["subflows"], client
            assert all(f"[{address}]:1935" in paths for address in RELAY_ADDRESSES), client
        metrics = http_get(b, "/metrics")
        assert "mpstream_relay_mptcp_connections 2" in metrics

        out, err = peers.communicate(timeout=30)
        assert peers.returncode == 0, err
        assert "FRAMES 100" in out
        text = log.read_text()
        assert "transport: MPTCP" in text and text.count("over MPTCP") >= 2
    finally:
        for proc in (peers, relay):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
