"""The counting table behind the outage's drop: its rules, and its counters read from a rule dump's bytes."""

from __future__ import annotations

import struct

import pytest
from mpstream.netlink import (
    NFGENMSG,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_HDR,
    NetlinkError,
    attribute,
    request,
)
from mpstream.paths.outage import delivered, rule_counters, table
from mpstream.paths.outage.rule_counters import (
    GETRULE,
    NEWRULE,
    NFT_CMP_EQ,
    NFT_META_IIFNAME,
    NFTA_CMP_DATA,
    NFTA_CMP_OP,
    NFTA_CMP_SREG,
    NFTA_COUNTER_BYTES,
    NFTA_DATA_VALUE,
    NFTA_EXPR_DATA,
    NFTA_EXPR_NAME,
    NFTA_LIST_ELEM,
    NFTA_META_DREG,
    NFTA_META_KEY,
    NFTA_RULE_EXPRESSIONS,
    NFTA_RULE_TABLE,
    dump_part,
    dump_request,
)

NLA_F_NESTED = 0x8000
NFTA_RULE_CHAIN, NFTA_RULE_HANDLE = 2, 3
NFTA_COUNTER_PACKETS = 2
NFT_CMP_NEQ = 1
be32 = struct.Struct("!I").pack


def expression(name: str, *fields: bytes) -> bytes:
    data = attribute(NFTA_EXPR_DATA | NLA_F_NESTED, b"".join(fields))
    return attribute(NFTA_LIST_ELEM | NLA_F_NESTED, attribute(NFTA_EXPR_NAME, name.encode() + b"\0") + data)


def iifname(nic: bytes, register: int = 1, op: int = NFT_CMP_EQ) -> bytes:
    """`meta load iifname => reg N` and `cmp eq reg N <nic>`, as the kernel dumps them."""
    key, destination = attribute(NFTA_META_KEY, be32(NFT_META_IIFNAME)), attribute(NFTA_META_DREG, be32(register))
    return (expression("meta", key, destination)
            + expression("cmp", attribute(NFTA_CMP_SREG, be32(register)), attribute(NFTA_CMP_OP, be32(op)),
                         attribute(NFTA_CMP_DATA | NLA_F_NESTED, attribute(NFTA_DATA_VALUE, nic))))


def counter(octets: int, packets: int = 1) -> bytes:
    return expression("counter", attribute(NFTA_COUNTER_BYTES, struct.pack("!Q", octets)),
                      attribute(NFTA_COUNTER_PACKETS, struct.pack("!Q", packets)))


def rule(*expressions: bytes, handle: int = 2) -> bytes:
    """NFT_MSG_NEWRULE of the counting table, as a rule dump carries it."""
    body = (NFGENMSG.pack(rule_counters.NFPROTO_INET, 0, 0)
            + attribute(NFTA_RULE_TABLE, delivered.TABLE.encode() + b"\0")
            + attribute(NFTA_RULE_CHAIN, b"input\0") + attribute(NFTA_RULE_HANDLE, struct.pack("!Q", handle))
            + attribute(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, b"".join(expressions)))
    return request(NEWRULE, 0x2, 1, body)  # NLM_F_MULTI


DONE = request(NLMSG_DONE, 0x2, 1, b"\0\0\0\0")


def padded(nic: str) -> bytes:
    return nic.encode().ljust(16, b"\0")


def test_the_request_asks_for_the_rules_of_the_counting_table_alone():
    message = dump_request(delivered.TABLE, sequence=4)
    length, kind, flags, sequence, _ = NLMSG_HDR.unpack_from(message)
    assert (length, kind, flags, sequence) == (len(message), GETRULE, NLM_F_REQUEST | NLM_F_DUMP, 4)
    assert NFGENMSG.unpack_from(message, NLMSG_HDR.size) == (rule_counters.NFPROTO_INET, 0, 0)
    assert message[NLMSG_HDR.size + NFGENMSG.size:] == attribute(NFTA_RULE_TABLE, b"mpstream_delivered\0")


def test_each_rule_gives_its_nic_and_the_bytes_it_counted():
    data = (rule(iifname(padded("nic1")), counter(15000), handle=2)
            + rule(iifname(padded("eth1.100"), register=8), counter(0), handle=3) + DONE)
    assert dump_part(data) == ([("nic1", 15000), ("eth1.100", 0)], True)


def test_a_dump_in_parts_ends_with_its_done_message():
    assert dump_part(rule(iifname(padded("nic1")), counter(84))) == ([("nic1", 84)], False)
    assert dump_part(DONE) == ([], True)


def test_rules_that_do_not_count_one_named_nic_are_left_out():
    data = (rule(counter(500))  # no NIC
            + rule(iifname(padded("nic9")))  # no counter
            + rule(iifname(b"eth"), counter(7))  # a wildcard `eth*`: no NUL, not a NIC's name
            + rule(iifname(padded("nic3"), op=NFT_CMP_NEQ), counter(9))  # `iifname != nic3`
            + rule(expression("meta", attribute(NFTA_META_KEY, be32(4)), attribute(NFTA_META_DREG, be32(1))),
                   expression("cmp", attribute(NFTA_CMP_SREG, be32(1)), attribute(NFTA_CMP_OP, be32(NFT_CMP_EQ)),
                              attribute(NFTA_CMP_DATA, attribute(NFTA_DATA_VALUE, padded("nic4")))),
                   counter(11))  # another meta key compared with a NIC-like value
            + rule()  # no expressions at all
            + DONE)
    assert dump_part(data) == ([], True)


def test_a_counter_of_the_wrong_size_counts_nothing():
    short = expression("counter", attribute(NFTA_COUNTER_BYTES, b"\0\0\0\x07"))
    assert dump_part(rule(iifname(padded("nic1")), short)) == ([], False)


def test_an_error_from_the_kernel_is_raised_not_read_as_no_counts():
    error = request(2, 0, 1, struct.pack("=i", -2) + dump_request(delivered.TABLE, 1)[:NLMSG_HDR.size])
    with pytest.raises(NetlinkError):
        dump_part(error)


def test_the_table_counts_after_the_outage_drop_and_replaces_itself():
    script = delivered.ruleset(["nic1", "nic2"])
    assert script.startswith(f"table inet {delivered.TABLE}\ndelete table inet {delivered.TABLE}\n")
    assert 'iifname "nic1" counter' in script and 'iifname "nic2" counter' in script
    assert "policy accept" in script and "drop" not in script
    # behind the outage's input chain: what it drops never reaches the counters
    outage = table.ruleset(["nic1"], False, until=60.0, now=0.0)
    outage_priority = int(outage.split("hook input priority ")[1].split(";")[0])
    assert delivered.PRIORITY > outage_priority
