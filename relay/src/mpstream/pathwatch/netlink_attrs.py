"""Netlink framing shared by the rtnetlink and MPTCP generic-netlink event parsers."""

from __future__ import annotations

import struct
from collections.abc import Iterator

NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each netlink attribute in `data`, nested/byte-order flags masked off."""
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        yield kind & 0x3FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3  # attributes are 4-byte aligned
