"""Addresses of established TCP sockets (MPTCP subflows among them), from the sock_diag dump.

Read at the moment of a decision, not tracked from events, so that a watcher started
while connections are already up knows about them too. Other TCP connections from the
same address count as well, which only makes the watcher more careful. The dump and
its parsing are `subflows.SockDiag`'s, the one sock_diag client of the package.
"""

from __future__ import annotations

from mpstream.paths.pathwatch.subflows import SockDiag, unmapped


def established_pairs(diag: SockDiag | None = None) -> set[tuple[str, str]]:
    """(local, remote) addresses of the established TCP sockets, IPv4 and IPv6.

    A dual-stack socket's IPv4 addresses (::ffff:a.b.c.d) count as the IPv4 addresses
    they are. `diag`: an open SockDiag to read through; one is opened for this call otherwise.
    """
    own = diag is None
    diag = SockDiag() if own else diag
    try:
        return {(s.local_address, s.remote_address) for s in diag.established()}
    finally:
        if own:
            diag.close()


def local_addresses_in_use(diag: SockDiag | None = None) -> set[str]:
    return {local for local, _remote in established_pairs(diag)}


def peers_reached_only_from(addresses: set[str], diag: SockDiag | None = None) -> set[str]:
    """Remote addresses that established sockets reach from `addresses` and from nowhere else.

    MPTCP's in-kernel path manager opens new subflows towards the peer addresses its
    existing subflows use: a peer address only the given local addresses talk to would
    be forgotten with their subflows.
    """
    pairs = established_pairs(diag)
    from_them = {remote for local, remote in pairs if local in addresses}
    from_others = {remote for local, remote in pairs if local not in addresses}
    return from_them - from_others


__all__ = ["established_pairs", "local_addresses_in_use", "peers_reached_only_from", "unmapped"]
