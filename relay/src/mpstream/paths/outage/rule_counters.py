"""The counters of an nftables table's `iifname "NIC" counter` rules, over nfnetlink, as bytes.

Pure functions (tested without a kernel): the GETRULE dump request for one table, and the
(NIC, bytes) each rule of the replies counted. A rule names its NIC as the kernel holds it:
`meta load iifname => reg N` then `cmp eq reg N "NIC\\0..."` (the name NUL-padded to 16
bytes: an exact match; a wildcard's value has no NUL and is not a NIC), then `counter`.
"""

from __future__ import annotations

import struct

from mpstream.netlink import (
    NFGENMSG,
    NFNL_SUBSYS_NFTABLES,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    attribute,
    attribute_spans,
    messages,
    request,
)

NFT_MSG_NEWRULE, NFT_MSG_GETRULE = 6, 7
NEWRULE = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE  # each rule of the dump
GETRULE = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETRULE
NFPROTO_INET = 1

NFTA_RULE_TABLE, NFTA_RULE_EXPRESSIONS = 1, 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_META_DREG, NFTA_META_KEY = 1, 2
NFT_META_IIFNAME = 6
NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA = 1, 2, 3
NFT_CMP_EQ = 0
NFTA_DATA_VALUE = 1
NFTA_COUNTER_BYTES = 1

_BE32 = struct.Struct("!I")
_BE64 = struct.Struct("!Q")


def dump_request(table: str, sequence: int, family: int = NFPROTO_INET) -> bytes:
    """Ask for every rule of `table` (all its chains), with their expressions' state."""
    body = NFGENMSG.pack(family, 0, 0) + attribute(NFTA_RULE_TABLE, table.encode() + b"\0")
    return request(GETRULE, NLM_F_REQUEST | NLM_F_DUMP, sequence, body)


def _fields(data: bytes | bytearray, start: int, end: int) -> dict[int, bytes]:
    return {kind: bytes(data[value:stop]) for kind, value, stop in attribute_spans(data, start, end)}


def _nested(value: bytes | None) -> dict[int, bytes]:
    return _fields(value, 0, len(value)) if value else {}


def _be32(value: bytes | None) -> int | None:
    return _BE32.unpack(value)[0] if value is not None and len(value) == _BE32.size else None


def rule_counter(data: bytes | bytearray, start: int, end: int) -> tuple[str, int] | None:
    """(NIC, bytes) of the rule whose attributes are `data[start:end]`, None if it is not an
    exact `iifname` match with a counter."""
    expressions = _fields(data, start, end).get(NFTA_RULE_EXPRESSIONS, b"")
    iifname_register = nic = counted = None
    for kind, elem, elem_end in attribute_spans(expressions):
        if kind != NFTA_LIST_ELEM:
            continue
        expression = _fields(expressions, elem, elem_end)
        name = expression.get(NFTA_EXPR_NAME, b"").rstrip(b"\0")
        fields = _nested(expression.get(NFTA_EXPR_DATA))
        if name == b"meta" and _be32(fields.get(NFTA_META_KEY)) == NFT_META_IIFNAME:
            iifname_register = _be32(fields.get(NFTA_META_DREG))
        elif (name == b"cmp" and iifname_register is not None
              and _be32(fields.get(NFTA_CMP_SREG)) == iifname_register
              and _be32(fields.get(NFTA_CMP_OP)) == NFT_CMP_EQ):
            value = _nested(fields.get(NFTA_CMP_DATA)).get(NFTA_DATA_VALUE)
            if value and b"\0" in value:
                nic = value.split(b"\0", 1)[0].decode(errors="replace")
        elif name == b"counter" and (octets := fields.get(NFTA_COUNTER_BYTES)) and len(octets) == _BE64.size:
            counted = _BE64.unpack(octets)[0]
    return (nic, counted) if nic and counted is not None else None


def dump_part(data: bytes | bytearray) -> tuple[list[tuple[str, int]], bool]:
    """The (NIC, bytes) of each counting rule in one received buffer of the dump, and whether
    the buffer ends it. An error the kernel answered raises NetlinkError."""
    found, done = [], False
    for kind, payload, end in messages(data):
        if kind == NLMSG_DONE:
            done = True
        elif kind == NEWRULE and (counter := rule_counter(data, payload + NFGENMSG.size, end)) is not None:
            found.append(counter)
    return found, done
