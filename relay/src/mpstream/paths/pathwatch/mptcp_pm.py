# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upstream kernel's MPTCP path manager (generic netlink `mptcp_pm`): endpoints, limits.

The one client of the path manager in the project, in one file used twice: the path
watcher imports it as `mpstream.paths.pathwatch.mptcp_pm`, and the Ansible modules
(`mptcp_endpoints`, `policy_rollback_guard`) load it as module_utils
(`plugins/module_utils/mptcp_pm.py` is a symbolic link to this file, inside the
collection) and run it with the node's own Python and pyroute2 (Debian's 0.7 on real
hosts, 0.9 on the testbed). So it imports nothing but the standard library and pyroute2,
and stays within Python 3.8. The real file lives in the package, so that a copy of
`relay/` alone (a wheel, a source snapshot) has it.

`PmClient` speaks the kernel's terms: `Endpoint` tuples with flag bits and an ifindex.
`PathManager` is the modules' view of it, the words of `ip mptcp endpoint`: endpoints as
dicts with flag names and a device name,
`{"id": 101, "address": "198.18.17.10", "flags": ["subflow", "fullmesh"], "dev": "nic1"}`.
"""

import ipaddress
import socket
import time
from collections import namedtuple

GENL_NAME = "mptcp_pm"
CMD_ADD_ADDR, CMD_DEL_ADDR, CMD_GET_ADDR, CMD_FLUSH_ADDRS, CMD_SET_LIMITS, CMD_GET_LIMITS, CMD_SET_FLAGS = (
    range(1, 8)
)
NLA_F_NESTED = 0x8000

# include/uapi/linux/mptcp.h
FLAG_SIGNAL, FLAG_SUBFLOW, FLAG_BACKUP, FLAG_FULLMESH, FLAG_IMPLICIT = 1, 2, 4, 8, 16
FLAG_BITS = {"signal": 1, "subflow": 2, "backup": 4, "fullmesh": 8, "implicit": 16, "laminar": 64}
SETTABLE_FLAGS = ("signal", "subflow", "backup", "fullmesh")

Endpoint = namedtuple("Endpoint", ["id", "address", "flags", "ifindex", "port"], defaults=(0, 0))
Endpoint.__doc__ = "An endpoint as the kernel holds it: id, address, flag bits, ifindex (0: any), port (0: none)."


class MptcpPmError(Exception):
    """A path manager request that failed; `code` is the kernel's errno where it answered one."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class EndpointsLeftOut(MptcpPmError):
    """A re-creation removed endpoints that the kernel then refused to add back."""

    def __init__(self, endpoints, error):
        super().__init__(f"removed and not added back: {', '.join(ep.address for ep in endpoints)} ({error})")
        self.endpoints = endpoints


def flags_to_bits(flags):
    unknown = set(flags) - set(FLAG_BITS)
    if unknown:
        raise MptcpPmError("unknown endpoint flag(s): " + ", ".join(sorted(unknown)))
    bits = 0
    for flag in flags:
        bits |= FLAG_BITS[flag]
    return bits


def bits_to_flags(bits):
    return sorted(name for name, bit in FLAG_BITS.items() if bits & bit)


def normalize(endpoint):
    """A comparable endpoint dict: canonical address, sorted flags, dev or None, port 0."""
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
    words = [f"{endpoint['address']} id {endpoint['id']}"]
    words.extend(endpoint["flags"])
    if endpoint.get("dev"):
        words.append(f"dev {endpoint['dev']}")
    if endpoint.get("port"):
        words.append(f"port {endpoint['port']}")
    return " ".join(words)


def diff(current, desired, owned_ids):
    """(to_remove, to_add) so that the owned ids hold exactly `desired` (endpoint dicts).

    An endpoint whose flags, device or address changed is removed and added again:
    that also re-creates its subflows, which is what a changed flag should do.
    """
    current_by_id = {ep["id"]: ep for ep in current}
    desired_by_id = {ep["id"]: ep for ep in desired}
    to_remove, to_add = [], []
    for ep_id, ep in sorted(current_by_id.items()):
        if ep_id in owned_ids and desired_by_id.get(ep_id) != ep:
            to_remove.append(ep)
    for ep_id, ep in sorted(desired_by_id.items()):
        if current_by_id.get(ep_id) != ep:
            to_add.append(ep)
    return to_remove, to_add


def _message_class():
    """pyroute2's own `mptcp_msg` declares IF_IDX as raw bytes and both 0.7 and 0.9 send the port
    in network order, where the kernel wants a host-order u16: hence this declaration."""
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
                ("MPTCP_PM_ADDR_ATTR_PORT", "uint16"),  # host order: the kernel applies htons()
                ("MPTCP_PM_ADDR_ATTR_FLAGS", "uint32"),
                ("MPTCP_PM_ADDR_ATTR_IF_IDX", "int32"),
            )

    return pm_msg


def _address_attrs(endpoint):
    address = ipaddress.ip_address(endpoint.address)
    attrs = [
        ("MPTCP_PM_ADDR_ATTR_FAMILY", socket.AF_INET if address.version == 4 else socket.AF_INET6),
        ("MPTCP_PM_ADDR_ATTR_ID", int(endpoint.id)),
        (f"MPTCP_PM_ADDR_ATTR_ADDR{address.version}", str(address)),
        ("MPTCP_PM_ADDR_ATTR_FLAGS", int(endpoint.flags)),
    ]
    if endpoint.ifindex:
        attrs.append(("MPTCP_PM_ADDR_ATTR_IF_IDX", int(endpoint.ifindex)))
    if endpoint.port:
        attrs.append(("MPTCP_PM_ADDR_ATTR_PORT", int(endpoint.port)))
    return attrs


class PmClient:
    """The in-kernel path manager of the current network namespace: list, add and delete
    endpoints, read and set the limits."""

    def __init__(self):
        from pyroute2.netlink.generic import GenericNetlinkSocket

        self._msg = _message_class()
        self._sock = GenericNetlinkSocket()
        try:
            self._sock.bind(GENL_NAME, self._msg)
        except Exception as exc:
            self._sock.close()
            raise MptcpPmError(f"the kernel has no MPTCP path manager ({exc}): is MPTCP built in?") from exc

    def close(self):
        self._sock.close()

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
            raise MptcpPmError(f"mptcp_pm command {cmd} failed: {exc}", exc.code) from exc

    def endpoints(self):
        """Every endpoint, by id."""
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
        return sorted(result, key=lambda ep: ep.id)

    def _add(self, endpoint):
        self._request(CMD_ADD_ADDR, [("MPTCP_PM_ATTR_ADDR", {"attrs": _address_attrs(endpoint)}, NLA_F_NESTED)])

    def _on_address(self, endpoint, implicit):
        """The endpoints on `endpoint`'s address and port, implicit ones or the others."""
        place = (endpoint.address, endpoint.port)
        return [ep for ep in self.endpoints()
                if (ep.address, ep.port) == place and bool(ep.flags & FLAG_IMPLICIT) == implicit]

    def add(self, endpoint):
        """Add an endpoint, in place of an implicit one on its address.

        The kernel makes an address an implicit endpoint when a subflow comes up on it while
        it has none, as a peer's join does that arrives between an endpoint's removal and its
        return, and then refuses (EINVAL) that address with an id until the implicit one is
        gone. Deleting it closes its subflows; the endpoint added in its place brings them back.
        """
        try:
            self._add(endpoint)
        except MptcpPmError:
            implicit = self._on_address(endpoint, implicit=True)
            if not implicit:
                raise
            for stand_in in implicit:
                self.delete(stand_in)
            time.sleep(0.1)  # until the kernel has closed their subflows, or it opens none for ours
            self._add(endpoint)

    def add_all(self, endpoints):
        """Add every endpoint; [(endpoint, error)] for those the kernel refused. One whose address
        has an endpoint already (put back meanwhile, by the multihoming role say: EBUSY, EEXIST,
        or EINVAL on older kernels) counts as added."""
        refused = []
        for endpoint in endpoints:
            try:
                self.add(endpoint)
            except (MptcpPmError, OSError) as exc:  # one refusal must not keep the others away
                if not self._on_address(endpoint, implicit=False):
                    refused.append((endpoint, exc))
        return refused

    def delete(self, endpoint):
        """Delete an endpoint, given as an Endpoint or by its id."""
        endpoint_id = endpoint.id if isinstance(endpoint, Endpoint) else endpoint
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

    def recreate(self, addresses, pause=0.1):
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
        refused = self.add_all(done)
        if refused:
            raise EndpointsLeftOut([endpoint for endpoint, _ in refused], refused[-1][1])
        return done


def as_dict(endpoint, names):
    """An Endpoint in the modules' words; `names` maps ifindex to device name."""
    return {
        "id": endpoint.id,
        "address": endpoint.address,
        "flags": bits_to_flags(endpoint.flags),
        "dev": names.get(endpoint.ifindex, str(endpoint.ifindex)) if endpoint.ifindex else None,
        "port": endpoint.port,
    }


def from_dict(endpoint, indexes):
    """An endpoint dict as an Endpoint; `indexes` maps device name to ifindex."""
    ifindex = 0
    if endpoint.get("dev"):
        ifindex = indexes.get(endpoint["dev"])
        if ifindex is None:
            raise MptcpPmError(f"no network interface {endpoint['dev']!r} for endpoint {endpoint['address']}")
    return Endpoint(
        int(endpoint["id"]),
        str(ipaddress.ip_address(endpoint["address"])),
        flags_to_bits(endpoint.get("flags") or []),
        ifindex,
        int(endpoint.get("port") or 0),
    )


class PathManager:
    """The path manager in the words of `ip mptcp endpoint`: endpoint dicts that name their device."""

    def __init__(self):
        from pyroute2 import IPRoute

        self.client = PmClient()
        self._ipr = IPRoute()

    def close(self):
        self.client.close()
        self._ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _names(self):
        return {link["index"]: link.get_attr("IFLA_IFNAME") for link in self._ipr.get_links()}

    def endpoints(self):
        names = self._names()
        return [as_dict(endpoint, names) for endpoint in self.client.endpoints()]

    def add(self, endpoint):
        indexes = {name: index for index, name in self._names().items()} if endpoint.get("dev") else {}
        self.client.add(from_dict(endpoint, indexes))

    def delete(self, endpoint_id):
        self.client.delete(endpoint_id)

    def limits(self):
        return self.client.limits()

    def set_limits(self, subflows, add_addr_accepted):
        self.client.set_limits(subflows, add_addr_accepted)
