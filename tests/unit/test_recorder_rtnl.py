"""RTM_GETSTATS messages built and parsed without a socket."""

from __future__ import annotations

import errno
import struct

import pytest
from mpstream.recorder.counters import Counters
from mpstream.recorder.rtnl_stats import (
    IF_STATS_MSG,
    IFINFOMSG,
    IFLA_IFNAME,
    IFLA_STATS_LINK_64,
    NLATTR,
    NLM_F_DUMP,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGHDR,
    RTM_GETLINK,
    RTM_GETSTATS,
    RTM_NEWLINK,
    RTM_NEWSTATS,
    NetlinkError,
    getlink_request,
    getstats_request,
    parse_link_messages,
    parse_stats_messages,
)


def stats_message(ifindex: int, values: list[int]) -> bytes:
    stats = struct.pack("=24Q", *(values + [0] * (24 - len(values))))  # rtnl_link_stats64 head
    other_attr = NLATTR.pack(NLATTR.size + 6, 99) + b"\0" * 6 + b"\0\0"  # padded, skipped
    attr = NLATTR.pack(NLATTR.size + len(stats), IFLA_STATS_LINK_64) + stats
    body = IF_STATS_MSG.pack(0, 0, 0, ifindex, 1) + other_attr + attr
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_NEWSTATS, 2, 7, 0) + body


def control(kind: int, code: int = 0) -> bytes:
    body = struct.pack("=i", code) + b"\0" * 16
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, 0, 7, 0) + body


def test_request_asks_for_a_dump_of_link_stats64():
    request = getstats_request(42)
    length, kind, flags, seq, _ = NLMSGHDR.unpack_from(request)
    assert (length, kind, seq) == (len(request), RTM_GETSTATS, 42)
    assert flags & NLM_F_DUMP == NLM_F_DUMP
    assert IF_STATS_MSG.unpack_from(request, NLMSGHDR.size)[4] == 1 << (IFLA_STATS_LINK_64 - 1)


def test_parses_counters_of_each_link_until_done():
    found: dict[int, Counters] = {}
    first = stats_message(2, [10, 20, 1000, 2000, 1, 2])
    assert parse_stats_messages(first + stats_message(7, [1, 1, 2**64 - 1, 5, 0, 0]), found) is False
    assert found[2] == Counters(rx_bytes=1000, tx_bytes=2000, rx_packets=10, tx_packets=20, rx_errors=1,
                                tx_errors=2)
    assert found[7].rx_bytes == 2**64 - 1
    assert parse_stats_messages(control(NLMSG_DONE), found) is True


def test_kernel_error_is_raised():
    with pytest.raises(NetlinkError) as info:
        parse_stats_messages(control(NLMSG_ERROR, -errno.EOPNOTSUPP), {})
    assert info.value.errno == errno.EOPNOTSUPP


def link_message(ifindex: int, name: str, flags: int) -> bytes:
    mtu = NLATTR.pack(NLATTR.size + 4, 4) + struct.pack("=I", 1500)
    raw_name = name.encode() + b"\0"
    name_attr = NLATTR.pack(NLATTR.size + len(raw_name), IFLA_IFNAME) + raw_name
    name_attr += b"\0" * (-len(name_attr) % 4)
    body = IFINFOMSG.pack(0, 0, 1, ifindex, flags, 0) + mtu + name_attr
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_NEWLINK, 2, 8, 0) + body


def test_link_dump_gives_names_and_up_flags():
    request = getlink_request(3)
    assert NLMSGHDR.unpack_from(request)[1] == RTM_GETLINK
    links: dict[int, tuple[str, bool]] = {}
    assert parse_link_messages(link_message(1, "lo", 0x49) + link_message(5, "nic2", 0x1002), links) is False
    assert links == {1: ("lo", True), 5: ("nic2", False)}
    assert parse_link_messages(control(NLMSG_DONE), links) is True
