"""This node's MPTCP subflows, listed and aborted through sock_diag (NETLINK_SOCK_DIAG).

The one sock_diag dump of the package: the established TCP sockets of both families,
of which `sockets` reads the addresses in use and this module picks the subflows.

A subflow is a TCP socket whose upper-layer protocol (ULP) is "mptcp"; the local token
in its ULP attributes names its connection. Aborting one (SOCK_DESTROY, what `ss -K`
does; needs CONFIG_INET_DIAG_DESTROY) makes MPTCP send the data still unacknowledged on
it over the connection's other subflows at once, instead of after that subflow's
retransmission timers have given up on a dead path.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mpstream.netlink import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    align,
    attribute_spans,
    attributes,
    messages,
    raise_for_error,
    request,
)

NETLINK_SOCK_DIAG = 4
ESTABLISHED = 1  # TCP_ESTABLISHED
INET_DIAG_INFO = 2  # asking for it brings the ULP attributes along
INET_ULP_INFO_NAME, INET_ULP_INFO_MPTCP = 1, 3
MPTCP_SUBFLOW_ATTR_TOKEN_LOC, MPTCP_SUBFLOW_ATTR_ID_REM, MPTCP_SUBFLOW_ATTR_ID_LOC = 2, 9, 10


def unmapped(address: str) -> str:
    """IPv4 for an IPv4-mapped address (a dual-stack socket's), the address otherwise."""
    mapped = getattr(ipaddress.ip_address(address), "ipv4_mapped", None)
    return str(mapped) if mapped else address


@dataclass(frozen=True)
class TcpSocket:
    """An established TCP socket as sock_diag names it (a dual-stack one's IPv4 addresses mapped)."""

    family: int
    local: str
    local_port: int
    remote: str
    remote_port: int
    interface: int
    cookie: int

    @property
    def local_address(self) -> str:
        return unmapped(self.local)

    @property
    def remote_address(self) -> str:
        return unmapped(self.remote)

    def describe(self) -> str:
        return f"{self.local} port {self.local_port} -> {self.remote} port {self.remote_port}"


@dataclass(frozen=True)
class Subflow(TcpSocket):
    token: int  # the local token of its MPTCP connection
    # Address IDs: 0 for the addresses the connection began with, on either side.
    local_id: int = 0
    remote_id: int = 0
    # From its tcp_info: retransmission timeouts since the last ACK of new data (backed
    # off while > 0), and milliseconds since it last heard from the peer (data or an ACK).
    retransmits: int = 0
    heard_ms: int | None = None


# struct tcp_info (linux/tcp.h): tcpi_retransmits is its third byte; tcpi_last_data_recv
# and tcpi_last_ack_recv are the u32s at bytes 52 and 56.
_TCP_INFO_RETRANSMITS, _TCP_INFO_HEARD = 2, struct.Struct("=II")
_TCP_INFO_HEARD_AT = 52


def tcp_state(tcp_info: bytes | None) -> tuple[int, int | None]:
    """(retransmits, milliseconds since the peer was last heard) from a struct tcp_info;
    (0, None) where there is none, or too short a one."""
    if not tcp_info or len(tcp_info) < _TCP_INFO_HEARD_AT + _TCP_INFO_HEARD.size:
        return 0, None
    last_data, last_ack = _TCP_INFO_HEARD.unpack_from(tcp_info, _TCP_INFO_HEARD_AT)
    return tcp_info[_TCP_INFO_RETRANSMITS], min(last_data, last_ack)


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
    """(subflows over the `failed` addresses to abort, those to keep).

    `failed` and `down` hold addresses at either end: a subflow goes over a provider when
    its local address or its peer's is one of that provider's (where paths cross providers,
    a subflow from another provider's address towards a peer's address on the failed one
    dies with it, and the peer's reset of its own side is lost in the outage).

    One is aborted only where its connection keeps an established subflow with neither end
    `down`: aborting a connection's last working subflow would close the connection, which
    its retransmission timers might still save.

    And only where a working subflow of the connection reaches the same peer address, or
    that address is the one the connection began with on the peer's side (ID 0). The path
    manager that opens subflows does so only towards peer addresses its subflows use (and
    the initial one, whose first subflow stays listed): one that only this subflow reaches
    would be lost until announced again, over a path that may be gone by then.
    """
    by_connection: dict[int, list[Subflow]] = defaultdict(list)
    for subflow in subflows:
        by_connection[subflow.token].append(subflow)
    chosen, kept = [], []
    for members in by_connection.values():
        working = [m for m in members if m.local_address not in down and m.remote_address not in down]
        reached = {member.remote_address for member in working}
        for member in members:
            if member.local_address not in failed and member.remote_address not in failed:
                continue
            keeps_peer = member.remote_id == 0 or member.remote_address in reached
            (chosen if working and keeps_peer else kept).append(member)
    return chosen, kept


@dataclass(frozen=True)
class Failure:
    """A provider's failure as this node's subflows stood when it was seen."""

    seen: float  # when (the watcher's clock)
    connections: frozenset[int]  # every MPTCP connection (local token) then
    over_provider: frozenset[int]  # those with a subflow from one of the provider's addresses


def failure_seen(subflows: Iterable[Subflow], addresses: set[str], seen: float, cut: Iterable[int] = ()) -> Failure:
    """The failure from the subflows listed once the watcher has acted on it, and the
    connections whose subflows from `addresses` it has just aborted (`cut`)."""
    listed, cut = list(subflows), frozenset(cut)
    return Failure(
        seen,
        frozenset(s.token for s in listed) | cut,
        frozenset(s.token for s in listed if s.local_address in addresses) | cut,
    )


def unserved(subflows: Iterable[Subflow], addresses: set[str], failure: Failure, now: float) -> set[int]:
    """Connections that still need the provider's endpoints re-created on its return.

    Those are the connections that had a subflow from its `addresses` when it failed, or
    began since, and have no working one from them now. Working: no retransmission timeout
    pending, and heard from (data or an ACK) since the failure was seen (`now` on the same
    clock): over the returned path, or over one that never failed (a false alarm).
    Re-creating closes such subflows, and the re-announcement that brings them back needs
    another working path, which a node losing a provider may not have.
    """
    listed = list(subflows)
    heard_within_ms = (now - failure.seen) * 1000
    needing = failure.over_provider | ({s.token for s in listed} - failure.connections)
    served = {
        s.token
        for s in listed
        if s.local_address in addresses
        and s.retransmits == 0
        and s.heard_ms is not None
        and s.heard_ms <= heard_within_ms
    }
    return needing - served


# sock_diag (linux/inet_diag.h): a request is struct inet_diag_req_v2, an answer struct
# inet_diag_msg followed by attributes; both hold a struct inet_diag_sockid.
SOCK_DIAG_BY_FAMILY, SOCK_DESTROY = 20, 21
INET_DIAG_ULP_INFO = 19
_SOCKID = "2s2s16s16sI8s"  # ports and addresses in network order, interface, cookie
_REQUEST = struct.Struct("=BBBxI" + _SOCKID)  # family, protocol, extensions, states
_ANSWER = struct.Struct("=BBBB" + _SOCKID + "5I")  # family, state, timer, retransmits, ...
_PORT, _COOKIE = struct.Struct("!H"), struct.Struct("=Q")
_RECEIVE_SIZE = 1 << 16  # the kernel fills a dump's reads up to 32 KiB


def _request(family: int, states: int, extensions: int = 0, socket_id: bytes = b"\0" * 48) -> bytes:
    fields = struct.unpack("=" + _SOCKID, socket_id)
    return _REQUEST.pack(family, socket.IPPROTO_TCP, extensions, states, *fields)


def _socket_id(subflow: TcpSocket) -> bytes:
    """A socket's identity as inet_diag_sockid holds it (an IPv4 address in the first word)."""
    def packed(address: str) -> bytes:
        return socket.inet_pton(subflow.family, address).ljust(16, b"\0")

    return struct.pack("=" + _SOCKID, _PORT.pack(subflow.local_port), _PORT.pack(subflow.remote_port),
                       packed(subflow.local), packed(subflow.remote), subflow.interface,
                       _COOKIE.pack(subflow.cookie))


def parse_answer(data: bytes | bytearray, payload: int, end: int) -> tuple[tuple, bytes | None, bytes | None]:
    """(identity fields of a TcpSocket, its INET_DIAG_ULP_INFO and INET_DIAG_INFO (tcp_info)
    payloads or None) from one inet_diag_msg whose payload starts at `payload`."""
    family, _state, _timer, _retrans, sport, dport, src, dst, interface, cookie, *_ = _ANSWER.unpack_from(
        data, payload)
    size = 4 if family == socket.AF_INET else 16
    identity = (family, socket.inet_ntop(family, src[:size]), _PORT.unpack(sport)[0],
                socket.inet_ntop(family, dst[:size]), _PORT.unpack(dport)[0], interface, _COOKIE.unpack(cookie)[0])
    ulp = info = None
    for kind, start, stop in attribute_spans(data, payload + align(_ANSWER.size), end):
        if kind == INET_DIAG_ULP_INFO:
            ulp = bytes(data[start:stop])
        elif kind == INET_DIAG_INFO:
            info = bytes(data[start:stop])
    return identity, ulp, info


class SockDiag:
    """Established TCP sockets and MPTCP subflows of this network namespace, and aborting a subflow."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self._sock.bind((0, 0))
        self._buffer = bytearray(_RECEIVE_SIZE)
        self._sequence = 0

    def close(self) -> None:
        self._sock.close()

    def _send(self, kind: int, flags: int, body: bytes) -> None:
        self._sequence += 1
        self._sock.send(request(kind, flags, self._sequence, body))

    def _dump(self, extensions: int = 0) -> Iterator[tuple[tuple, bytes | None, bytes | None]]:
        """(identity fields of a TcpSocket, ULP info, tcp_info) of every established TCP socket.

        Dual-stack sockets are in the IPv6 dump only, their IPv4 addresses mapped.
        """
        for family in (socket.AF_INET, socket.AF_INET6):
            self._send(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, _request(family, 1 << ESTABLISHED, extensions))
            done = False
            while not done:
                size = self._sock.recv_into(self._buffer)
                for kind, payload, end in messages(self._buffer, size):  # an error answer raises
                    if kind == NLMSG_DONE:
                        raise_for_error(self._buffer, payload)
                        done = True
                        break
                    if kind == SOCK_DIAG_BY_FAMILY:
                        yield parse_answer(self._buffer, payload, end)

    def established(self) -> list[TcpSocket]:
        """Every established TCP socket, MPTCP subflow or not, both families."""
        return [TcpSocket(*identity) for identity, _ulp, _info in self._dump()]

    def subflows(self) -> list[Subflow]:
        found = []
        # Asking for INET_DIAG_INFO (tcp_info) brings the ULP attributes along.
        for identity, ulp, info in self._dump(extensions=1 << (INET_DIAG_INFO - 1)):
            mptcp = mptcp_ulp(ulp) if ulp else None
            if mptcp is None:
                continue  # plain TCP, never ours to abort
            found.append(Subflow(*identity, *mptcp, *tcp_state(info)))
        return found

    def abort(self, subflow: Subflow) -> None:
        """Abort one subflow, found by its exact socket identity; OSError if that failed."""
        self._send(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK,
                   _request(subflow.family, 1 << ESTABLISHED, socket_id=_socket_id(subflow)))
        size = self._sock.recv_into(self._buffer)
        for _message in messages(self._buffer, size):  # the answer: an error raises, an ACK passes
            pass
