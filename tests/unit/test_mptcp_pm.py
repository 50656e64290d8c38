"""The one MPTCP path-manager client: the same source for the Ansible modules and the path watcher."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from mpstream.netlink import NLMSG_HDR, attributes
from mpstream.paths.pathwatch import mptcp_pm
from pyroute2.netlink import NLM_F_REQUEST

REPO = Path(__file__).resolve().parents[2]


def test_the_package_carries_the_module_utils_file_itself():
    packaged = REPO / "relay" / "src" / "mpstream" / "paths" / "pathwatch" / "mptcp_pm.py"
    assert packaged.resolve() == (REPO / "plugins" / "module_utils" / "mptcp_pm.py").resolve()
    assert Path(mptcp_pm.__file__).resolve() == packaged.resolve()


def test_endpoint_in_the_modules_words_and_back():
    endpoint = mptcp_pm.Endpoint(101, "2001:db8::a", mptcp_pm.FLAG_SUBFLOW | mptcp_pm.FLAG_FULLMESH, 7, 0)
    as_dict = mptcp_pm.as_dict(endpoint, {7: "nic1"})
    assert as_dict == {"id": 101, "address": "2001:db8::a", "flags": ["fullmesh", "subflow"], "dev": "nic1",
                       "port": 0}
    assert mptcp_pm.render(as_dict) == "2001:db8::a id 101 fullmesh subflow dev nic1"
    assert mptcp_pm.from_dict(as_dict, {"nic1": 7}) == endpoint
    assert mptcp_pm.as_dict(endpoint._replace(ifindex=0), {})["dev"] is None
    with pytest.raises(mptcp_pm.MptcpPmError):
        mptcp_pm.from_dict(as_dict, {})


def encoded_address(endpoint: mptcp_pm.Endpoint) -> bytes:
    msg = mptcp_pm._message_class()()
    msg["cmd"], msg["version"] = mptcp_pm.CMD_ADD_ADDR, 1
    msg["header"]["type"], msg["header"]["flags"] = 30, NLM_F_REQUEST
    addr_attrs = mptcp_pm._address_attrs(endpoint)
    msg["attrs"] = [("MPTCP_PM_ATTR_ADDR", {"attrs": addr_attrs}, mptcp_pm.NLA_F_NESTED)]
    msg.encode()
    return bytes(msg.data)


def nested_attributes(data: bytes) -> dict[int, bytes]:
    (outer,) = [value for kind, value in attributes(data[NLMSG_HDR.size + 4:]) if kind == 1]
    return dict(attributes(outer))


def test_address_attributes_as_the_kernel_reads_them():
    endpoint = mptcp_pm.Endpoint(102, "198.18.17.10", mptcp_pm.FLAG_SIGNAL, ifindex=3, port=8080)
    attrs = nested_attributes(encoded_address(endpoint))
    assert struct.unpack("=H", attrs[1])[0] == socket.AF_INET
    assert attrs[2] == bytes([102])
    assert attrs[3] == socket.inet_aton("198.18.17.10")
    # The kernel takes the port as a host-order u16 (htons(nla_get_u16(...))), not big-endian.
    assert struct.unpack("=H", attrs[5])[0] == 8080
    assert struct.unpack("=I", attrs[6])[0] == mptcp_pm.FLAG_SIGNAL
    assert struct.unpack("=i", attrs[7])[0] == 3
    assert 7 not in nested_attributes(encoded_address(endpoint._replace(ifindex=0, port=0)))
