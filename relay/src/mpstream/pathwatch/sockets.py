"""Local addresses of established TCP sockets (MPTCP subflows among them), from /proc/net.

Read at the moment of a decision, not tracked from events, so that a watcher started
while connections are already up knows about them too. Other TCP connections from the
same address count as well, which only makes the watcher more careful.
"""

from __future__ import annotations

import ipaddress

ESTABLISHED = "01"


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    return str(ipaddress.ip_address(b"".join(words)))


def established_local_addresses(text: str) -> set[str]:
    """From the text of /proc/net/tcp or /proc/net/tcp6."""
    addresses = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == ESTABLISHED:
            addresses.add(_address(fields[1].split(":")[0]))
    return addresses


def local_addresses_in_use() -> set[str]:
    addresses: set[str] = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as handle:
                addresses |= established_local_addresses(handle.read())
        except OSError:
            continue
    # A dual-stack socket's IPv4 address shows as ::ffff:a.b.c.d.
    return {_unmapped(address) for address in addresses}


def _unmapped(address: str) -> str:
    mapped = getattr(ipaddress.ip_address(address), "ipv4_mapped", None)
    return str(mapped) if mapped else address
