"""Addresses of established TCP sockets (MPTCP subflows among them), from /proc/net.

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
    return {local for local, _remote in established_pairs(text)}


def established_pairs(text: str) -> set[tuple[str, str]]:
    """(local, remote) addresses from the text of /proc/net/tcp or /proc/net/tcp6."""
    pairs = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == ESTABLISHED:
            pairs.add((_address(fields[1].split(":")[0]), _address(fields[2].split(":")[0])))
    return pairs


def _read_pairs() -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as handle:
                pairs |= established_pairs(handle.read())
        except OSError:
            continue
    # A dual-stack socket's IPv4 addresses show as ::ffff:a.b.c.d.
    return {(unmapped(local), unmapped(remote)) for local, remote in pairs}


def local_addresses_in_use() -> set[str]:
    return {local for local, _remote in _read_pairs()}


def peers_reached_only_from(addresses: set[str]) -> set[str]:
    """Remote addresses that established sockets reach from `addresses` and from nowhere else.

    MPTCP's in-kernel path manager opens new subflows towards the peer addresses its
    existing subflows use: a peer address only the given local addresses talk to would
    be forgotten with their subflows.
    """
    pairs = _read_pairs()
    from_them = {remote for local, remote in pairs if local in addresses}
    from_others = {remote for local, remote in pairs if local not in addresses}
    return from_them - from_others


def unmapped(address: str) -> str:
    """IPv4 for an IPv4-mapped address (a dual-stack socket's), the address otherwise."""
    mapped = getattr(ipaddress.ip_address(address), "ipv4_mapped", None)
    return str(mapped) if mapped else address
