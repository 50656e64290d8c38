"""What each NIC really delivered to this node: nftables counters behind the outage's drop.

A NIC's own counters count every packet that reaches it, also those the outage then drops
(a peer's subflow from a working provider keeps retransmitting to the address on the failed
one), so they cannot show that an outage held. The counting table `inet mpstream_delivered`
has one counter per NIC in an input chain that runs after the outage table's (priority 0
against -10): a packet the outage drops never reaches it. The switcher installs it at its
start, reads it shortly before and right after each switch and removes it at its end.

A reading is an `nft` started ahead (`Reading`), as the switches' own: starting nft is most
of its cost (0.1 s to over a second on a busy emulated CPU, where a reading started at its
instant made the switch after it late), the dump of one small table is the rest.
"""

from __future__ import annotations

import json
import subprocess

TABLE = "mpstream_delivered"
PRIORITY = 0  # after the outage table's input chain (-10)
# `nft -j list table inet mpstream_delivered` as a command on standard input (JSON input: the
# output is JSON too).
LIST_COMMAND = json.dumps({"nftables": [{"list": {"table": {"family": "inet", "name": TABLE}}}]})


def ruleset(nics: list[str]) -> str:
    """The nft script that (re)creates the counting table with zeroed counters, in one transaction."""
    rules = "".join(f'    iifname "{nic}" counter\n' for nic in nics)
    return (f"table inet {TABLE}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority {PRIORITY}; policy accept;\n"
            f"{rules}  }}\n}}\n")


def parse(listing: str) -> dict[str, int]:
    """Bytes per NIC from `nft -j list table inet mpstream_delivered` (bytes at the IP layer)."""
    counted: dict[str, int] = {}
    for item in json.loads(listing).get("nftables", []):
        expressions = (item.get("rule") or {}).get("expr") or []
        nic = next((e["match"]["right"] for e in expressions
                    if (e.get("match") or {}).get("left") == {"meta": {"key": "iifname"}}), None)
        counter = next((e["counter"] for e in expressions if isinstance(e.get("counter"), dict)), None)
        if isinstance(nic, str) and counter is not None:
            counted[nic] = counted.get(nic, 0) + int(counter.get("bytes", 0))
    return counted


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nft", *args], input=script, capture_output=True, text=True)


def install(nics: list[str]) -> str | None:
    """Start counting afresh; the error nft gave, or None."""
    result = _nft("-f", "-", script=ruleset(nics))
    return None if result.returncode == 0 else " ".join(result.stderr.split()) or f"nft exited {result.returncode}"


class Reading:
    """One reading of the counters, its nft started now and waiting for the command."""

    def __init__(self) -> None:
        # Its own session: a signal to the switcher's process group must not reach it.
        self.process = subprocess.Popen(["nft", "-j", "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, start_new_session=True)

    def take(self, timeout: float) -> dict[str, int] | None:
        """Bytes delivered per NIC since `install`; None when there is no counting table or
        the answer takes longer than `timeout` seconds (nothing waits on a late reading)."""
        try:
            listing, _ = self.process.communicate(LIST_COMMAND, timeout=max(timeout, 0.0))
        except (subprocess.TimeoutExpired, OSError):  # late, or nft is gone already
            self.discard()
            return None
        if self.process.returncode != 0:
            return None
        try:
            return parse(listing)
        except (ValueError, KeyError, TypeError):
            return None

    def discard(self) -> None:
        """End the reading's nft, if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def remove() -> bool:
    """Delete the counting table; True if there was one."""
    return _nft("delete", "table", "inet", TABLE).returncode == 0
