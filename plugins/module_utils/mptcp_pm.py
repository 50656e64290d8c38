# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upstream kernel's MPTCP path manager (generic netlink `mptcp_pm`): endpoints, limits.

The same commands as `ip mptcp endpoint|limits`, over pyroute2's generic netlink socket
with a message class that also knows the interface index and port (pyroute2's own
`MPTCP` helper cannot send them). Endpoints are described as plain dicts:
`{"id": 101, "address": "198.18.17.10", "flags": ["subflow", "fullmesh"], "dev": "nic1"}`.
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import socket

__metaclass__ = type

GENL_NAME = "mptcp_pm"
CMD_ADD_ADDR, CMD_DEL_ADDR, CMD_GET_ADDR, CMD_FLUSH_ADDRS, CMD_SET_LIMITS, CMD_GET_LIMITS, CMD_SET_FLAGS = (
    range(1, 8)
)
NLA_F_NESTED = 0x8000

# include/uapi/linux/mptcp.h
FLAG_BITS = {"signal": 1, "subflow": 2, "backup": 4, "fullmesh": 8, "implicit": 16, "laminar": 64}
SETTABLE_FLAGS = ("signal", "subflow", "backup", "fullmesh")


class MptcpPmError(Exception):
    pass


def flags_to_bits(flags):
    unknown = set(flags) - set(FLAG_BITS)
    if unknown:
        raise MptcpPmError("unknown endpoint flag(s): %s" % ", ".join(sorted(unknown)))
    bits = 0
    for flag in flags:
        bits |= FLAG_BITS[flag]
    return bits


def bits_to_flags(bits):
    return sorted(name for name, bit in FLAG_BITS.items() if bits & bit)


def normalize(endpoint):
    """A comparable endpoint: canonical address, sorted flags, dev or None, port 0."""
    flags = sorted(set(endpoint.get("flags") or []))
    flags_to_bits(flags)
    return {
        "id": int(endpoint["id"]),
        "address": str(ipaddress.ip_address(endpoint["address"])),
        "flags": flags,
        "dev": endpoint.get("dev") or None,
        "port": int(endpoint.get("port") or 0),
    }


def render(endpoint):
    words = ["%s id %d" % (endpoint["address"], endpoint["id"])]
    words.extend(endpoint["flags"])
    if endpoint.get("dev"):
        words.append("dev %s" % endpoint["dev"])
    if endpoint.get("port"):
        words.append("port %d" % endpoint["port"])
    return " ".join(words)


def diff(current, desired, owned_ids):
    """(to_remove, to_add) so that the owned ids hold exactly `desired`.

    An endpoint whose flags, device or address changed is removed and added again:
    that also re-creates its subflows, which is what a changed flag should do.
    """
    current_by_id = dict((ep["id"], ep) for ep in current)
    desired_by_id = dict((ep["id"], ep) for ep in desired)
    to_remove, to_add = [], []
    for ep_id, ep in sorted(current_by_id.items()):
        if ep_id in owned_ids and desired_by_id.get(ep_id) != ep:
            to_remove.append(ep)
    for ep_id, ep in sorted(desired_by_id.items()):
        if current_by_id.get(ep_id) != ep:
            to_add.append(ep)
    return to_remove, to_add


def _message_class():
    from pyroute2.netlink import genlmsg, nla

    class pm_msg(genlmsg):
        prefix = "MPTCP_PM_ATTR_"
        nla_map = (
            ("MPTCP_PM_ATTR_UNSPEC", "none"),
            ("MPTCP_PM_ATTR_ADDR", "pm_addr"),
            ("MPTCP_PM_ATTR_RCV_ADD_ADDRS", "uint32"),
            ("MPTCP_PM_ATTR_SUBFLOWS", "uint32"),
        )

        class pm_addr(nla):
            prefix = "MPTCP_PM_ADDR_ATTR_"
            nla_map = (
                ("MPTCP_PM_ADDR_ATTR_UNSPEC", "none"),
                ("MPTCP_PM_ADDR_ATTR_FAMILY", "uint16"),
                ("MPTCP_PM_ADDR_ATTR_ID", "uint8"),
                ("MPTCP_PM_ADDR_ATTR_ADDR4", "ip4addr"),
                ("MPTCP_PM_ADDR_ATTR_ADDR6", "ip6addr"),
                ("MPTCP_PM_ADDR_ATTR_PORT", "be16"),
                ("MPTCP_PM_ADDR_ATTR_FLAGS", "uint32"),
                ("MPTCP_PM_ADDR_ATTR_IF_IDX", "int32"),
            )

    return pm_msg


class PathManager(object):
    """A small client of the in-kernel path manager in the current network namespace."""

    def __init__(self):
        from pyroute2 import IPRoute
        from pyroute2.netlink.generic import GenericNetlinkSocket

        self._msg = _message_class()
        self._sock = GenericNetlinkSocket()
        try:
            self._sock.bind(GENL_NAME, self._msg)
        except Exception as exc:
            self._sock.close()
            raise MptcpPmError("the kernel has no MPTCP path manager (%s): is MPTCP built in?" % exc)
        self._ipr = IPRoute()

    def close(self):
        self._sock.close()
        self._ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, cmd, attrs=(), dump=False):
        from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
        from pyroute2.netlink.exceptions import NetlinkError

        msg = self._msg()
        msg["cmd"] = cmd
        msg["version"] = 1
        msg["attrs"] = list(attrs)
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        if cmd == CMD_GET_LIMITS:
            flags = NLM_F_REQUEST
        try:
            return list(self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=flags))
        except NetlinkError as exc:
            raise MptcpPmError("mptcp_pm command %d failed: %s" % (cmd, exc))

    def _names(self):
        return dict((link["index"], link.get_attr("IFLA_IFNAME")) for link in self._ipr.get_links())

    def endpoints(self):
        names = self._names()
        result = []
        for msg in self._request(CMD_GET_ADDR, dump=True):
            addr = msg.get_attr("MPTCP_PM_ATTR_ADDR")
            if addr is None:
                continue
            address = addr.get_attr("MPTCP_PM_ADDR_ATTR_ADDR4") or addr.get_attr("MPTCP_PM_ADDR_ATTR_ADDR6")
            ifindex = addr.get_attr("MPTCP_PM_ADDR_ATTR_IF_IDX")
            result.append(
                {
                    "id": addr.get_attr("MPTCP_PM_ADDR_ATTR_ID"),
                    "address": str(ipaddress.ip_address(address)),
                    "flags": bits_to_flags(addr.get_attr("MPTCP_PM_ADDR_ATTR_FLAGS") or 0),
                    "dev": names.get(ifindex, str(ifindex)) if ifindex else None,
                    "port": addr.get_attr("MPTCP_PM_ADDR_ATTR_PORT") or 0,
                }
            )
        return sorted(result, key=lambda ep: ep["id"])

    def add(self, endpoint):
        address = ipaddress.ip_address(endpoint["address"])
        attrs = [
            ("MPTCP_PM_ADDR_ATTR_FAMILY", socket.AF_INET if address.version == 4 else socket.AF_INET6),
            ("MPTCP_PM_ADDR_ATTR_ID", int(endpoint["id"])),
            ("MPTCP_PM_ADDR_ATTR_ADDR%d" % address.version, str(address)),
            ("MPTCP_PM_ADDR_ATTR_FLAGS", flags_to_bits(endpoint.get("flags") or [])),
        ]
        if endpoint.get("dev"):
            index = dict((name, number) for number, name in self._names().items()).get(endpoint["dev"])
            if index is None:
                raise MptcpPmError("no network interface %r for endpoint %s" % (endpoint["dev"], address))
            attrs.append(("MPTCP_PM_ADDR_ATTR_IF_IDX", index))
        if endpoint.get("port"):
            attrs.append(("MPTCP_PM_ADDR_ATTR_PORT", int(endpoint["port"])))
        self._request(CMD_ADD_ADDR, [("MPTCP_PM_ATTR_ADDR", {"attrs": attrs}, NLA_F_NESTED)])

    def delete(self, endpoint_id):
        self._request(
            CMD_DEL_ADDR,
            [("MPTCP_PM_ATTR_ADDR", {"attrs": [("MPTCP_PM_ADDR_ATTR_ID", int(endpoint_id))]}, NLA_F_NESTED)],
        )

    def limits(self):
        msg = self._request(CMD_GET_LIMITS)[0]
        return {
            "subflows": msg.get_attr("MPTCP_PM_ATTR_SUBFLOWS") or 0,
            "add_addr_accepted": msg.get_attr("MPTCP_PM_ATTR_RCV_ADD_ADDRS") or 0,
        }

    def set_limits(self, subflows, add_addr_accepted):
        self._request(
            CMD_SET_LIMITS,
            [
                ("MPTCP_PM_ATTR_SUBFLOWS", int(subflows)),
                ("MPTCP_PM_ATTR_RCV_ADD_ADDRS", int(add_addr_accepted)),
            ],
        )
