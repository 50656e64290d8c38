"""RTM_GETSTATS over a plain NETLINK_ROUTE socket: 64-bit link counters at little cost.

An RTM_GETLINK dump (what `IPRoute.get_links` sends) carries every attribute of every
link, and decoding it all in Python costs milliseconds per sample. RTM_GETSTATS with the
IFLA_STATS_LINK_64 filter returns just `struct rtnl_link_stats64` per link, which a few
`struct` calls decode.
Message building and parsing are pure; `RtnlStatsReader` does the socket I/O.
"""

from __future__ import annotations

import os
import socket
import struct

from mpstream.recorder.counters import Counters, Reading, Snapshot, link_names

NETLINK_ROUTE = 0
RTM_GETSTATS = 94
RTM_NEWSTATS = 92
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFLA_STATS_LINK_64 = 1
RTMGRP_LINK = 0x1

NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IF_STATS_MSG = struct.Struct("=BBHII")  # family, pad, pad, ifindex, filter mask
NLATTR = struct.Struct("=HH")  # length, type
# struct rtnl_link_stats64 begins: rx_packets tx_packets rx_bytes tx_bytes rx_errors tx_errors
LINK_STATS64_HEAD = struct.Struct("=6Q")


class NetlinkError(OSError):
    """The kernel answered the request with an error."""


def getstats_request(sequence: int) -> bytes:
    """A dump request for the 64-bit link counters of every interface."""
    body = IF_STATS_MSG.pack(socket.AF_UNSPEC, 0, 0, 0, 1 << (IFLA_STATS_LINK_64 - 1))
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_GETSTATS, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


def parse_stats_messages(data: bytes, into: dict[int, Counters]) -> bool:
    """Add the counters in one received buffer to `into`; True when the dump is complete."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _port = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            raise NetlinkError(0, "truncated netlink message")
        if kind == NLMSG_DONE:
            return True
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + NLMSGHDR.size)
            if code:
                raise NetlinkError(-code, os.strerror(-code))
        elif kind == RTM_NEWSTATS:
            _fam, _p1, _p2, ifindex, _mask = IF_STATS_MSG.unpack_from(data, offset + NLMSGHDR.size)
            attr = offset + NLMSGHDR.size + IF_STATS_MSG.size
            end = offset + length
            while attr + NLATTR.size <= end:
                attr_len, attr_type = NLATTR.unpack_from(data, attr)
                if attr_len < NLATTR.size:
                    break
                if attr_type == IFLA_STATS_LINK_64 and attr_len >= NLATTR.size + LINK_STATS64_HEAD.size:
                    rxp, txp, rxb, txb, rxe, txe = LINK_STATS64_HEAD.unpack_from(data, attr + NLATTR.size)
                    into[ifindex] = Counters(rxb, txb, rxp, txp, rxe, txe)
                attr += (attr_len + 3) & ~3
        offset += (length + 3) & ~3
    return False


def _links() -> dict[int, tuple[str, bool]]:
    try:
        return link_names()
    except ImportError:  # without pyroute2: names from if_nameindex(3), every interface taken as up
        return {index: (name, True) for index, name in socket.if_nameindex()}


class RtnlStatsReader:
    """Counters of every interface of the current network namespace via RTM_GETSTATS.

    Interface names and up/down states are looked up (RTM_GETLINK through pyroute2) only
    when the kernel announces a link change (RTNLGRP_LINK) or an unknown ifindex shows up,
    not on every sample.
    """

    name = "netlink"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._events.bind((0, RTMGRP_LINK))
        self._events.setblocking(False)
        self._sequence = 0
        self._links: dict[int, tuple[str, bool]] = {}

    def _links_changed(self) -> bool:
        changed = False
        while True:
            try:
                self._events.recv(65536)
            except BlockingIOError:
                return changed
            except OSError:  # ENOBUFS: events were lost, so assume a change
                pass
            changed = True

    def read(self) -> Snapshot:
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        refresh = self._links_changed()
        self._sock.send(getstats_request(self._sequence))
        by_index: dict[int, Counters] = {}
        while not parse_stats_messages(self._sock.recv(65536), by_index):
            pass
        if refresh or not by_index.keys() <= self._links.keys():
            self._links = _links()
        links = self._links
        # an ifindex still unnamed appeared between the two calls: it shows up next sample
        return {links[i][0]: Reading(c, i, links[i][1]) for i, c in by_index.items() if i in links}

    def close(self) -> None:
        self._sock.close()
        self._events.close()
