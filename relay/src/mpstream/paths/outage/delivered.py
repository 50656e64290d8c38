"""What each NIC really delivered to this node: nftables counters behind the outage's drop.

A NIC's own counters count every packet that reaches it, also those the outage then drops
(a peer's subflow from a working provider keeps retransmitting to the address on the failed
one), so they cannot show that an outage held. The counting table `inet mpstream_delivered`
has one counter per NIC in an input chain that runs after the outage table's (priority 0
against -10): a packet the outage drops never reaches it. The switcher installs it at its
start, reads it right after each switch took effect and removes it at its end.
"""

from __future__ import annotations

import json
import subprocess

TABLE = "mpstream_delivered"
PRIORITY = 0  # after the outage table's input chain (-10)


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


def read() -> dict[str, int] | None:
    """Bytes delivered per NIC since `install`, or None when there is no counting table."""
    result = _nft("-j", "list", "table", "inet", TABLE)
    if result.returncode != 0:
        return None
    try:
        return parse(result.stdout)
    except (ValueError, KeyError, TypeError):
        return None


def remove() -> bool:
    """Delete the counting table; True if there was one."""
    return _nft("delete", "table", "inet", TABLE).returncode == 0
