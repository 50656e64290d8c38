"""What each NIC really delivered to this node: nftables counters behind the outage's drop.

A NIC's own counters count every packet that reaches it, also those the outage then drops
(a peer's subflow from a working provider keeps retransmitting to the address on the failed
one), so they cannot show that an outage held. The counting table `inet mpstream_delivered`
has one counter per NIC in an input chain that runs after the outage table's (priority 0
against -10): a packet the outage drops never reaches it. The switcher installs it at its
start, reads it shortly before and right after each switch and removes it at its end.

The counters are read in the process, over nfnetlink (`rule_counters`): an nft process per
reading cost 0.1 s to over a second of a busy emulated CPU, twice per node at every switch,
where the nodes' watchers had to react to the failure; the dump costs well under a millisecond.
"""

from __future__ import annotations

import socket
import subprocess
import time

from mpstream.netlink import NETLINK_NETFILTER
from mpstream.paths.outage import rule_counters

TABLE = "mpstream_delivered"
PRIORITY = 0  # after the outage table's input chain (-10)
RECEIVE_SIZE = 1 << 16  # one part of the dump: the kernel's dump buffers are smaller


def ruleset(nics: list[str]) -> str:
    """The nft script that (re)creates the counting table with zeroed counters, in one transaction."""
    rules = "".join(f'    iifname "{nic}" counter\n' for nic in nics)
    return (f"table inet {TABLE}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority {PRIORITY}; policy accept;\n"
            f"{rules}  }}\n}}\n")


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nft", *args], input=script, capture_output=True, text=True)


def install(nics: list[str]) -> str | None:
    """Start counting afresh; the error nft gave, or None."""
    result = _nft("-f", "-", script=ruleset(nics))
    return None if result.returncode == 0 else " ".join(result.stderr.split()) or f"nft exited {result.returncode}"


def read(timeout: float) -> dict[str, int] | None:
    """Bytes delivered per NIC since `install`; None when there is no counting table or the
    kernel's answer takes longer than `timeout` seconds (nothing waits on a late reading)."""
    deadline = time.monotonic() + timeout
    counted: dict[str, int] = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as dump:
            dump.bind((0, 0))
            dump.send(rule_counters.dump_request(TABLE, sequence=1))
            done = False
            while not done:
                dump.settimeout(max(deadline - time.monotonic(), 0.0))
                found, done = rule_counters.dump_part(dump.recv(RECEIVE_SIZE))
                for nic, octets in found:
                    counted[nic] = counted.get(nic, 0) + octets
    except OSError:  # late (a timeout is one), refused, or no netlink here
        return None
    return counted or None  # a table without counting rules is not the counting table


def remove() -> bool:
    """Delete the counting table; True if there was one."""
    return _nft("delete", "table", "inet", TABLE).returncode == 0
