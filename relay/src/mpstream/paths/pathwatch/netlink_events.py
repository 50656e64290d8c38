"""Link and address notifications from rtnetlink, parsed from bytes (no sockets)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mpstream.netlink import NLMSG_HDR
from mpstream.netlink import attributes as _attrs

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
IFLA_IFNAME = 3
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBi")


@dataclass(frozen=True)
class LinkEvent:
    index: int
    name: str | None
    carrier: bool  # administratively up and lower layer up
    removed: bool


@dataclass(frozen=True)
class AddressEvent:
    index: int
    family: int
    removed: bool


def parse(datagram: bytes) -> list[LinkEvent | AddressEvent]:
    events: list[LinkEvent | AddressEvent] = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(datagram):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(datagram, offset)
        if length < NLMSG_HDR.size:
            break
        body = datagram[offset + NLMSG_HDR.size : offset + length]
        if kind in (RTM_NEWLINK, RTM_DELLINK) and len(body) >= IFINFOMSG.size:
            _family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
            name = None
            for attr, value in _attrs(body[IFINFOMSG.size :]):
                if attr == IFLA_IFNAME:
                    name = value.split(b"\0", 1)[0].decode(errors="replace")
            carrier = bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)
            events.append(LinkEvent(index, name, carrier and kind == RTM_NEWLINK, kind == RTM_DELLINK))
        elif kind in (RTM_NEWADDR, RTM_DELADDR) and len(body) >= IFADDRMSG.size:
            family, _plen, _flags, _scope, index = IFADDRMSG.unpack_from(body)
            events.append(AddressEvent(index, family, kind == RTM_DELADDR))
        offset += (length + 3) & ~3
    return events
