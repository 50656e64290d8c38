"""This node's MPTCP subflows, listed and aborted through sock_diag (NETLINK_SOCK_DIAG).

A subflow is a TCP socket whose upper-layer protocol (ULP) is "mptcp"; the local token
in its ULP attributes names its connection. Aborting one (SOCK_DESTROY, what `ss -K`
does; needs CONFIG_INET_DIAG_DESTROY) makes MPTCP send the data still unacknowledged on
it over the connection's other subflows at once, instead of after that subflow's
retransmission timers have given up on a dead path.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from mpstream.netlink import attributes
from mpstream.pathwatch.sockets import unmapped

ESTABLISHED = 1  # TCP_ESTABLISHED
INET_DIAG_INFO = 2  # asking for it brings the ULP attributes along
INET_ULP_INFO_NAME, INET_ULP_INFO_MPTCP = 1, 3
MPTCP_SUBFLOW_ATTR_TOKEN_LOC, MPTCP_SUBFLOW_ATTR_ID_REM, MPTCP_SUBFLOW_ATTR_ID_LOC = 2, 9, 10


@dataclass(frozen=True)
class Subflow:
    family: int
    local: str
    local_port: int
    remote: str
    remote_port: int
    interface: int
    cookie: int
    token: int  # the local token of its MPTCP connection
    # Address IDs: 0 for the addresses the connection began with, on either side.
    local_id: int = 0
    remote_id: int = 0

    @property
    def local_address(self) -> str:
        return unmapped(self.local)

    @property
    def remote_address(self) -> str:
        return unmapped(self.remote)

    def describe(self) -> str:
        return f"{self.local} port {self.local_port} -> {self.remote} port {self.remote_port}"


def mptcp_ulp(ulp_info: bytes) -> tuple[int, int, int] | None:
    """(local token, local and peer address IDs) from an INET_DIAG_ULP_INFO payload;
    None for another ULP."""
    name, token, ids = None, None, {MPTCP_SUBFLOW_ATTR_ID_LOC: 0, MPTCP_SUBFLOW_ATTR_ID_REM: 0}
    for kind, payload in attributes(ulp_info):
        if kind == INET_ULP_INFO_NAME:
            name = payload.split(b"\0", 1)[0]
        elif kind == INET_ULP_INFO_MPTCP:
            for inner, value in attributes(payload):
                if inner == MPTCP_SUBFLOW_ATTR_TOKEN_LOC and len(value) >= 4:
                    token = struct.unpack_from("=I", value)[0]
                elif inner in ids and value:
                    ids[inner] = value[0]
    if name != b"mptcp" or token is None:
        return None
    return token, ids[MPTCP_SUBFLOW_ATTR_ID_LOC], ids[MPTCP_SUBFLOW_ATTR_ID_REM]


def abortable(subflows: Iterable[Subflow], failed: set[str], down: set[str]) -> tuple[list[Subflow], list[Subflow]]:
    """(subflows from the `failed` addresses to abort, those to keep).

    One is aborted only where its connection keeps an established subflow from an address
    that is not `down`: aborting a connection's last working subflow would close the
    connection, which its retransmission timers might still save.

    And only where a working subflow of the connection reaches the same peer address, or
    the subflow joins the two addresses the connection began with (IDs 0). The path
    manager that opens subflows does so only towards peer addresses its subflows use
    (and the initial one, whose first subflow stays listed): one that only this subflow
    reaches would be lost until announced again, over a path that may be gone by then.
    Both ends decide alike, so neither aborts a subflow the other keeps (which would
    then be reset as soon as its provider returned).
    """
    by_connection: dict[int, list[Subflow]] = defaultdict(list)
    for subflow in subflows:
        by_connection[subflow.token].append(subflow)
    chosen, kept = [], []
    for members in by_connection.values():
        working = [member for member in members if member.local_address not in down]
        reached = {member.remote_address for member in working}
        for member in members:
            if member.local_address not in failed:
                continue
            initial = member.local_id == 0 and member.remote_id == 0
            (chosen if working and (initial or member.remote_address in reached) else kept).append(member)
    return chosen, kept


def _words(address: str) -> tuple[int, int, int, int]:
    """An address as inet_diag_sockid holds it: four big-endian words, IPv4 in the first."""
    packed = ipaddress.ip_address(address).packed
    return struct.unpack(">4I", packed.ljust(16, b"\0"))


class SockDiag:
    """Established MPTCP subflows of this network namespace, and aborting one of them."""

    def __init__(self) -> None:
        from pyroute2 import DiagSocket

        self._sock = DiagSocket()
        self._sock.bind()

    def close(self) -> None:
        self._sock.close()

    def subflows(self) -> list[Subflow]:
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in self._sock.get_sock_stats(
                family=family, states=1 << ESTABLISHED, extensions=1 << (INET_DIAG_INFO - 1)
            ):
                ulp = msg.get_attr("INET_DIAG_ULP_INFO")
                mptcp = mptcp_ulp(bytes.fromhex(ulp.replace(":", ""))) if ulp else None
                if mptcp is None:
                    continue  # plain TCP, never ours to abort
                found.append(
                    Subflow(
                        family,
                        msg["idiag_src"],
                        msg["idiag_sport"],
                        msg["idiag_dst"],
                        msg["idiag_dport"],
                        msg["idiag_if"],
                        msg["idiag_cookie"],
                        *mptcp,
                    )
                )
        return found

    def abort(self, subflow: Subflow) -> None:
        """Abort one subflow, found by its exact socket identity; OSError if that failed."""
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
        from pyroute2.netlink.diag import SOCK_DESTROY, inet_diag_req

        req = inet_diag_req()
        req["sdiag_family"] = subflow.family
        req["sdiag_protocol"] = socket.IPPROTO_TCP
        req["idiag_states"] = 1 << ESTABLISHED
        req["idiag_sport"], req["idiag_dport"] = subflow.local_port, subflow.remote_port
        req["idiag_src"], req["idiag_dst"] = _words(subflow.local), _words(subflow.remote)
        req["idiag_if"], req["idiag_cookie"] = subflow.interface, subflow.cookie
        for reply in self._sock.nlm_request(req, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK):
            # pyroute2's sock_diag marshal leaves NLMSG_ERROR undecoded: the code follows the header.
            code = -struct.unpack_from("=i", reply.data, reply.offset + 16)[0]
            if code:
                raise OSError(code, os.strerror(code))
