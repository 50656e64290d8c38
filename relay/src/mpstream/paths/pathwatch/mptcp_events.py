"""MPTCP path manager events (generic netlink group `mptcp_pm_events`), parsed from bytes.

The kernel tells listeners about connections and subflows coming and going; the watcher
logs them next to its own decisions, so that an outage's log shows which subflows died
and when the re-created ones came up.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from mpstream.netlink import NLMSG_HDR
from mpstream.netlink import attributes as _attrs

# include/uapi/linux/mptcp_pm.h
EVENTS = {
    1: "created",
    2: "established",
    3: "closed",
    6: "announced",
    7: "removed",
    10: "sub_established",
    11: "sub_closed",
    13: "sub_priority",
}
ATTR_TOKEN, ATTR_FAMILY, ATTR_LOC_ID, ATTR_REM_ID = 1, 2, 3, 4
ATTR_SADDR4, ATTR_SADDR6, ATTR_DADDR4, ATTR_DADDR6, ATTR_SPORT, ATTR_DPORT = 5, 6, 7, 8, 9, 10
ATTR_BACKUP, ATTR_ERROR = 11, 12
GENL_HDR = struct.Struct("=BBH")
GROUP_NAME = "mptcp_pm_events"


@dataclass(frozen=True)
class MptcpEvent:
    kind: str
    token: int | None = None
    saddr: str | None = None
    daddr: str | None = None
    sport: int | None = None
    dport: int | None = None
    error: int | None = None

    def describe(self) -> str:
        where = ""
        if self.saddr:
            where = f" {self.saddr}:{self.sport} -> {self.daddr}:{self.dport}"
        elif self.daddr:
            where = f" {self.daddr}:{self.dport}"
        error = f" (error {self.error})" if self.error else ""
        return (
            f"MPTCP {self.kind} token {self.token:#x}{where}{error}"
            if self.token is not None
            else f"MPTCP {self.kind}{where}{error}"
        )


def parse(datagram: bytes, family_id: int) -> list[MptcpEvent]:
    events = []
    offset = 0
    while offset + NLMSG_HDR.size + GENL_HDR.size <= len(datagram):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(datagram, offset)
        if length < NLMSG_HDR.size:
            break
        if kind == family_id:
            cmd, _version, _reserved = GENL_HDR.unpack_from(datagram, offset + NLMSG_HDR.size)
            body = datagram[offset + NLMSG_HDR.size + GENL_HDR.size : offset + length]
            fields: dict = {}
            for attr, value in _attrs(body):
                if attr == ATTR_TOKEN and len(value) >= 4:
                    fields["token"] = struct.unpack("=I", value[:4])[0]
                elif attr in (ATTR_SADDR4, ATTR_DADDR4) and len(value) >= 4:
                    fields["saddr" if attr == ATTR_SADDR4 else "daddr"] = str(
                        ipaddress.IPv4Address(value[:4])
                    )
                elif attr in (ATTR_SADDR6, ATTR_DADDR6) and len(value) >= 16:
                    fields["saddr" if attr == ATTR_SADDR6 else "daddr"] = str(
                        ipaddress.IPv6Address(value[:16])
                    )
                elif attr in (ATTR_SPORT, ATTR_DPORT) and len(value) >= 2:
                    fields["sport" if attr == ATTR_SPORT else "dport"] = struct.unpack("!H", value[:2])[0]
                elif attr == ATTR_ERROR and value:
                    fields["error"] = value[0]
            events.append(MptcpEvent(EVENTS.get(cmd, f"event {cmd}"), **fields))
        offset += (length + 3) & ~3
    return events


def open_socket():
    """(socket, family id) subscribed to the MPTCP events; raises OSError where there are none."""
    import socket

    from pyroute2.netlink.generic import GenericNetlinkSocket

    from mpstream.paths.pathwatch.mptcp_pm import _message_class

    genl = GenericNetlinkSocket()
    try:
        genl.bind("mptcp_pm", _message_class())
        family_id, group = genl.prid, genl.mcast_groups.get(GROUP_NAME)
    except Exception as exc:  # noqa: BLE001 - no MPTCP in this kernel
        raise OSError(f"no MPTCP path manager family: {exc}") from None
    finally:
        genl.close()
    if group is None:
        raise OSError("the kernel has no MPTCP event group")
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
    sock.bind((0, 0))
    sock.setsockopt(270, 1, group)  # SOL_NETLINK, NETLINK_ADD_MEMBERSHIP
    sock.setblocking(False)
    return sock, family_id
