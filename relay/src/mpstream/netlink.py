"""Netlink framing as pure functions: the messages in a received buffer, the attributes in a message.

The one parser of netlink framing in the package: the recorder's RTM_GETSTATS and
RTM_GETLINK dumps, the path watcher's rtnetlink and MPTCP events and its sock_diag
replies all read their bytes through it. No sockets here.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
NLATTR = struct.Struct("=HH")  # length, type
NFGENMSG = struct.Struct("!BBH")  # nfnetlink's header after netlink's: family, version, resource id
NLMSG_ERROR, NLMSG_DONE = 2, 3
NETLINK_NETFILTER = 12  # the protocol of nfnetlink sockets (nftables, NFQUEUE)
NFNL_SUBSYS_NFTABLES = 10  # nfnetlink's nftables messages: this << 8 | NFT_MSG_*
SOL_NETLINK = 270  # the level of netlink socket options
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLM_F_ACK = 0x4
NLA_TYPE_MASK = 0x3FFF  # the type without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_ERROR_CODE = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel answered a request with an error."""


def align(length: int) -> int:
    """Messages and attributes start on 4-byte boundaries."""
    return (length + 3) & ~3


def request(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    """A netlink message of type `kind` carrying `body` (port id 0: the kernel fills it in)."""
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, flags, sequence, 0) + body


def attribute(kind: int, value: bytes) -> bytes:
    """A netlink attribute of type `kind` carrying `value`, padded to the next 4-byte boundary."""
    size = NLATTR.size + len(value)
    return NLATTR.pack(size, kind) + value + b"\0" * (align(size) - size)


def error_code(data: bytes | bytearray, payload: int) -> int:
    """The (negative) errno of an NLMSG_ERROR message whose payload starts at `payload`; 0 is an ACK."""
    return _ERROR_CODE.unpack_from(data, payload)[0]


def raise_for_error(data: bytes | bytearray, payload: int) -> None:
    """Raise NetlinkError for an NLMSG_ERROR payload that carries an error (not an ACK)."""
    code = error_code(data, payload)
    if code:
        raise NetlinkError(-code, os.strerror(-code))


def messages(data: bytes | bytearray, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(type, payload offset, message end) of each message in `data[:end]`.

    An NLMSG_ERROR message with an error code raises NetlinkError; a truncated header
    (length shorter than the header itself) raises too, since nothing after it can be found.
    """
    end = len(data) if end is None else end
    offset = 0
    while offset + NLMSG_HDR.size <= end:
        length, kind, _flags, _seq, _port = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            raise NetlinkError(0, "truncated netlink message")
        if kind == NLMSG_ERROR:
            raise_for_error(data, offset + NLMSG_HDR.size)
        yield kind, offset + NLMSG_HDR.size, offset + length
        offset += align(length)


def attribute_spans(data: bytes | bytearray, offset: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(type, value offset, value end) of each attribute in `data[offset:end]`, flags masked off."""
    end = len(data) if end is None else end
    while offset + NLATTR.size <= end:
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size:
            return
        yield kind & NLA_TYPE_MASK, offset + NLATTR.size, offset + length
        offset += align(length)


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each attribute in `data` (nested attributes: call again on the value)."""
    for kind, start, stop in attribute_spans(data):
        yield kind, data[start:stop]
