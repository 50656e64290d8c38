"""The kernel's MPTCP endpoints (generic netlink `mptcp_pm`), enough to re-create them."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

CMD_ADD_ADDR, CMD_DEL_ADDR, CMD_GET_ADDR = 1, 2, 3
NLA_F_NESTED = 0x8000
FLAG_SIGNAL, FLAG_SUBFLOW, FLAG_BACKUP, FLAG_FULLMESH = 1, 2, 4, 8  # MPTCP_PM_ADDR_FLAG_*


@dataclass(frozen=True)
class Endpoint:
    id: int
    address: str
    flags: int
    ifindex: int = 0
    port: int = 0


def _message_class():
    from pyroute2.netlink import genlmsg, nla

    class pm_msg(genlmsg):
        prefix = "MPTCP_PM_ATTR_"
        nla_map = (
            ("MPTCP_PM_ATTR_UNSPEC", "none"),
            ("MPTCP_PM_ATTR_ADDR", "pm_addr"),
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


class PathManager:
    """List, delete and add endpoints of the in-kernel path manager (this namespace)."""

    def __init__(self) -> None:
        from pyroute2.netlink.generic import GenericNetlinkSocket

        self._msg = _message_class()
        self._sock = GenericNetlinkSocket()
        self._sock.bind("mptcp_pm", self._msg)

    def close(self) -> None:
        self._sock.close()

    def _request(self, cmd: int, addr_attrs: list | None = None, dump: bool = False) -> list:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST

        msg = self._msg()
        msg["cmd"] = cmd
        msg["version"] = 1
        msg["attrs"] = [("MPTCP_PM_ATTR_ADDR", {"attrs": addr_attrs}, NLA_F_NESTED)] if addr_attrs else []
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        return list(self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=flags))

    def endpoints(self) -> list[Endpoint]:
        result = []
        for msg in self._request(CMD_GET_ADDR, dump=True):
            addr = msg.get_attr("MPTCP_PM_ATTR_ADDR")
            if addr is None:
                continue
            address = addr.get_attr("MPTCP_PM_ADDR_ATTR_ADDR4") or addr.get_attr("MPTCP_PM_ADDR_ATTR_ADDR6")
            result.append(
                Endpoint(
                    addr.get_attr("MPTCP_PM_ADDR_ATTR_ID"),
                    str(ipaddress.ip_address(address)),
                    addr.get_attr("MPTCP_PM_ADDR_ATTR_FLAGS") or 0,
                    addr.get_attr("MPTCP_PM_ADDR_ATTR_IF_IDX") or 0,
                    addr.get_attr("MPTCP_PM_ADDR_ATTR_PORT") or 0,
                )
            )
        return result

    def delete(self, endpoint: Endpoint) -> None:
        self._request(CMD_DEL_ADDR, [("MPTCP_PM_ADDR_ATTR_ID", endpoint.id)])

    def add(self, endpoint: Endpoint) -> None:
        address = ipaddress.ip_address(endpoint.address)
        attrs = [
            ("MPTCP_PM_ADDR_ATTR_FAMILY", socket.AF_INET if address.version == 4 else socket.AF_INET6),
            ("MPTCP_PM_ADDR_ATTR_ID", endpoint.id),
            (f"MPTCP_PM_ADDR_ATTR_ADDR{address.version}", str(address)),
            ("MPTCP_PM_ADDR_ATTR_FLAGS", endpoint.flags),
        ]
        if endpoint.ifindex:
            attrs.append(("MPTCP_PM_ADDR_ATTR_IF_IDX", endpoint.ifindex))
        if endpoint.port:
            attrs.append(("MPTCP_PM_ADDR_ATTR_PORT", endpoint.port))
        self._request(CMD_ADD_ADDR, attrs)

    def recreate(self, addresses: set[str], pause: float = 0.1) -> list[Endpoint]:
        """Remove and add again every endpoint on one of `addresses`; the ones re-created.

        Where one of them is announced (`signal`), the pause between the two lets the peer
        act on the address's removal (RM_ADDR) before it hears of the address again
        (ADD_ADDR): taken the other way round, it would drop the address it has just been
        told about.
        """
        done = [endpoint for endpoint in self.endpoints() if endpoint.address in addresses]
        for endpoint in done:
            self.delete(endpoint)
        if any(endpoint.flags & FLAG_SIGNAL for endpoint in done):
            time.sleep(pause)
        for endpoint in done:
            self.add(endpoint)
        return done
