"""The kernel's notice of an nftables commit, read from bytes, and what times a switch."""

from __future__ import annotations

import struct

import pytest
from mpstream.netlink import NetlinkError, attribute, request
from mpstream.paths.outage.commits import NEWGEN, NFTA_GEN_PROC_PID, committers
from mpstream.paths.outage.plan import Target
from mpstream.paths.outage.scheduler import Prepared

NFTA_GEN_ID, NFTA_GEN_PROC_NAME = 1, 3
NEWTABLE = 10 << 8 | 0


def notice(pid: int, generation: int = 7, name: bytes = b"nft\0") -> bytes:
    """NFT_MSG_NEWGEN as the kernel sends it: nfgenmsg, then the generation, pid and name."""
    body = (b"\x00\x00\x00\x0a" + attribute(NFTA_GEN_ID, struct.pack("!I", generation))
            + attribute(NFTA_GEN_PROC_PID, struct.pack("!I", pid)) + attribute(NFTA_GEN_PROC_NAME, name))
    return request(NEWGEN, 0, 0, body)


def test_a_commit_notice_names_the_process_that_committed():
    assert committers(notice(6189)) == [6189]


def test_only_generation_notices_count_in_a_buffer_of_many():
    table = request(NEWTABLE, 0, 0, b"\x01\x00\x00\x0a" + attribute(1, b"mpstream_outage\0"))
    assert committers(table + notice(41) + table + notice(42, generation=8)) == [41, 42]
    assert committers(table) == []


def test_a_notice_without_a_whole_pid_names_nobody():
    body = b"\x00\x00\x00\x0a" + attribute(NFTA_GEN_PROC_PID, b"\x00\x01")
    assert committers(request(NEWGEN, 0, 0, body)) == []


def test_a_truncated_message_is_an_error_not_a_guess():
    broken = bytearray(notice(41))
    struct.pack_into("=I", broken, 0, 8)  # a length shorter than the header itself
    with pytest.raises(NetlinkError):
        committers(bytes(broken))


def prepared(**state) -> Prepared:
    return Prepared(Target(None, ("nic2",), False), **state)


def test_a_switch_is_timed_by_its_commit_notice_where_one_was_seen():
    assert prepared(committed=10.008, returned=10.040).took_effect() == (10.008, "commit")


def test_without_a_notice_nfts_exit_times_the_switch_and_says_so():
    assert prepared(returned=10.040).took_effect() == (10.040, "exit")


def test_a_refused_transaction_took_no_effect_and_carries_when_the_refusal_was_known():
    assert prepared(returned=10.040, error="Error: x").took_effect() == (10.040, None)


def test_a_switch_that_needed_no_transaction_is_timed_by_its_instant_alone():
    assert prepared(unchanged=True, returned=10.0).took_effect() == (10.0, None)
