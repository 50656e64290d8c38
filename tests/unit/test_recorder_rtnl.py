"""RTM_GETSTATS messages built and parsed without a socket; the readers on a namespace of their own."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from mpstream.measurement.recorder.counters import Counters, ProcNetDevReader, Reading
from mpstream.measurement.recorder.rtnl_stats import (
    IF_STATS_MSG,
    IFINFOMSG,
    IFLA_IFNAME,
    IFLA_STATS_LINK_64,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_GETSTATS,
    RTM_NEWLINK,
    RTM_NEWSTATS,
    RtnlStatsReader,
    answer_parts,
    getlink_request,
    getstats_request,
    parse_link_messages,
    parse_stats_messages,
)
from mpstream.netlink import NLATTR, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDR, NetlinkError


def stats_message(ifindex: int, values: list[int], other_attribute: bool = True) -> bytes:
    """An RTM_NEWSTATS message; the kernel's own have no other attribute before the counters."""
    stats = struct.pack("=25Q", *(values + [0] * (25 - len(values))))  # rtnl_link_stats64
    other_attr = NLATTR.pack(NLATTR.size + 6, 99) + b"\0" * 6 + b"\0\0" if other_attribute else b""
    attr = NLATTR.pack(NLATTR.size + len(stats), IFLA_STATS_LINK_64) + stats
    body = IF_STATS_MSG.pack(0, 0, 0, ifindex, 1) + other_attr + attr
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_NEWSTATS, 2, 7, 0) + body


def control(kind: int, code: int = 0) -> bytes:
    body = struct.pack("=i", code) + b"\0" * 16
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, 0, 7, 0) + body


def test_request_asks_for_a_dump_of_link_stats64():
    request = getstats_request(42)
    length, kind, flags, seq, _ = NLMSG_HDR.unpack_from(request)
    assert (length, kind, seq) == (len(request), RTM_GETSTATS, 42)
    assert flags & NLM_F_DUMP == NLM_F_DUMP
    assert IF_STATS_MSG.unpack_from(request, NLMSG_HDR.size)[4] == 1 << (IFLA_STATS_LINK_64 - 1)


@pytest.mark.parametrize("other_attribute", [False, True], ids=["kernel-layout", "any-layout"])
def test_parses_counters_of_each_link_until_done(other_attribute):
    found: dict[int, Counters] = {}
    first = stats_message(2, [10, 20, 1000, 2000, 1, 2], other_attribute)
    second = stats_message(7, [1, 1, 2**64 - 1, 5, 0, 0], other_attribute)
    assert parse_stats_messages(first + second, found) == (False, False)
    assert found[2] == Counters(rx_bytes=1000, tx_bytes=2000, rx_packets=10, tx_packets=20, rx_errors=1,
                                tx_errors=2)
    assert type(found[2]) is Counters and found[7].rx_bytes == 2**64 - 1
    assert parse_stats_messages(control(NLMSG_DONE), found) == (True, False)


def test_an_answer_of_ten_links_in_one_buffer_and_a_message_of_another_layout():
    ten = b"".join(stats_message(i, [i, 2 * i, 1000 + i, 2**40 + i, 0, i % 2], other_attribute=False)
                   for i in range(1, 11))
    found: dict[int, Counters] = {}
    assert parse_stats_messages(ten + control(NLMSG_DONE), found) == (True, False)
    assert sorted(found) == list(range(1, 11)) and all(type(c) is Counters for c in found.values())
    assert found[7] == Counters(rx_packets=7, tx_packets=14, rx_bytes=1007, tx_bytes=2**40 + 7, rx_errors=0,
                                tx_errors=1)
    mixed: dict[int, Counters] = {}  # one message with another attribute first: read one by one
    assert parse_stats_messages(ten + stats_message(11, [5, 5, 5, 5]) + control(NLMSG_DONE), mixed) == (True, False)
    assert mixed == {**found, 11: Counters(5, 5, 5, 5, 0, 0)}


def test_reads_only_up_to_the_received_length():
    found: dict[int, Counters] = {}
    buffer = bytearray(4096)
    data = stats_message(3, [1, 2, 3, 4, 5, 6], other_attribute=False) + control(NLMSG_DONE)
    buffer[: len(data)] = data
    buffer[len(data) : len(data) * 2] = stats_message(9, [7], other_attribute=False) + control(NLMSG_DONE)
    assert parse_stats_messages(buffer, found, len(data) - len(control(NLMSG_DONE))) == (False, False)
    assert list(found) == [3]


def test_link_notifications_among_the_counters_are_reported():
    found: dict[int, Counters] = {}
    event = link_message(4, "nic4", 0x1)
    removed = NLMSG_HDR.pack(len(event), RTM_DELLINK, 0, 0, 0) + event[NLMSG_HDR.size:]
    data = event + stats_message(4, [1, 1, 1, 1, 0, 0], other_attribute=False) + control(NLMSG_DONE)
    assert parse_stats_messages(data, found) == (True, True)
    assert parse_stats_messages(removed + control(NLMSG_DONE), {}) == (True, True)
    assert found[4].rx_bytes == 1


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
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_NEWLINK, 2, 8, 0) + body


def test_link_dump_gives_names_and_up_flags():
    request = getlink_request(3)
    assert NLMSG_HDR.unpack_from(request)[1] == RTM_GETLINK
    links: dict[int, tuple[str, bool]] = {}
    assert parse_link_messages(link_message(1, "lo", 0x49) + link_message(5, "nic2", 0x1002), links) == (False, False)
    assert links == {1: ("lo", True), 5: ("nic2", False)}
    gone = link_message(5, "nic2", 0)
    gone = NLMSG_HDR.pack(len(gone), RTM_DELLINK, 0, 0, 0) + gone[NLMSG_HDR.size:]
    assert parse_link_messages(gone + control(NLMSG_DONE), links) == (True, True)


CLONE_NEWNET = 0x40000000
T = TypeVar("T")


@pytest.fixture
def namespace():
    """A network namespace of our own with `lo` up and nothing else."""
    if os.geteuid() != 0:
        pytest.skip("making a network namespace needs root")
    name = f"rtnl-test{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def made_in(namespace: str, make: Callable[[], T]) -> T:
    """What `make` makes (a socket, an open /proc/thread-self file) inside `namespace`; it stays there.

    Made on a thread of its own: setns(2) moves only the calling thread, which then ends.
    """
    def enter_and_make() -> T:
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/run/netns/{namespace}", "rb") as handle:
            if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        return make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(enter_and_make).result()


def ping_lo(namespace: str) -> None:
    """Two pings on `lo`: 4 packets received there (2 requests, 2 replies)."""
    subprocess.run(["ip", "netns", "exec", namespace, "ping", "-c", "2", "-i", "0.2", "-q", "127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL)


def test_reader_hands_back_its_snapshot_while_the_kernel_answers_the_same(namespace):
    reader = made_in(namespace, RtnlStatsReader)
    try:
        first = reader.read()
        assert set(first) == {"lo"} and first["lo"].up
        assert reader.read() is first  # nothing moved on lo: the same answer, not parsed again
        ping_lo(namespace)
        moved = reader.read()
        assert moved is not first
        assert moved["lo"].counters.rx_packets == first["lo"].counters.rx_packets + 4  # 2 requests, 2 replies
        assert reader.read() is moved
        subprocess.run(["ip", "-n", namespace, "link", "add", "rt0", "type", "veth", "peer", "name", "rt1"],
                       check=True)
        grown = reader.read()  # the link notification came first: parsed, names looked up again
        assert set(grown) == {"lo", "rt0", "rt1"} and not grown["rt0"].up
        subprocess.run(["ip", "-n", namespace, "link", "set", "rt0", "up"], check=True)
        assert reader.read()["rt0"].up  # same counters, but a notification in between
    finally:
        reader.close()


def test_reader_reads_only_the_links_whose_messages_changed(namespace):
    subprocess.run(["ip", "-n", namespace, "link", "add", "rt0", "type", "veth", "peer", "name", "rt1"], check=True)
    reader = made_in(namespace, RtnlStatsReader)
    try:
        first = reader.read()
        assert set(first) == {"lo", "rt0", "rt1"}
        for _ in range(2):  # the second time, from parts made by the first
            ping_lo(namespace)
            moved = reader.read()
            assert moved is not first
            assert moved["lo"].counters.rx_packets == first["lo"].counters.rx_packets + 4
            assert moved["rt0"] is first["rt0"] and moved["rt1"] is first["rt1"]  # the veths carried nothing
            first = moved
        subprocess.run(["ip", "-n", namespace, "link", "del", "rt0"], check=True)
        assert set(reader.read()) == {"lo"}  # a shorter answer, after a notification: read whole
    finally:
        reader.close()


def test_an_answer_is_cut_into_its_links_messages_only_when_all_are_of_the_expected_layout():
    links = {"lo": Reading(Counters(1, 1, 1, 1, 0, 0), 1, True), "nic1": Reading(Counters(2, 2, 2, 2, 0, 0), 3, True)}
    one, three = (stats_message(i, [i, i, i, i], other_attribute=False) for i in (1, 3))
    parts = answer_parts(bytearray(one + three + control(NLMSG_DONE)), links)
    assert [(p.offset, p.message, p.name, p.reading) for p in parts] == [
        (0, one, "lo", links["lo"]), (len(one), three, "nic1", links["nic1"])]
    assert answer_parts(bytearray(one + three), links) is None  # no NLMSG_DONE
    assert answer_parts(bytearray(one + stats_message(3, [1]) + control(NLMSG_DONE)), links) is None  # layout
    assert answer_parts(bytearray(one + stats_message(5, [1], False) + control(NLMSG_DONE)), links) is None


def test_proc_reader_hands_back_its_snapshot_while_the_text_is_the_same(namespace):
    reader = made_in(namespace, lambda: ProcNetDevReader("/proc/thread-self/net/dev"))
    try:
        first = reader.read()
        assert set(first) == {"lo"}
        assert reader.read() is first
        ping_lo(namespace)
        moved = reader.read()  # the same open file, read again from its start
        assert moved is not first
        assert moved["lo"].counters.rx_packets == first["lo"].counters.rx_packets + 4
        assert reader.read() is moved
        subprocess.run(["ip", "-n", namespace, "link", "add", "rt0", "type", "veth", "peer", "name", "rt1"],
                       check=True)
        assert set(reader.read()) == {"lo", "rt0", "rt1"}
    finally:
        reader.close()
