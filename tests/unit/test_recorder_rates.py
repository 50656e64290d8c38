"""Deltas from counter snapshots: selection, wrap, reset, interfaces that appear or vanish."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mpstream.measurement.recorder.counters import Counters, Reading, parse_proc_net_dev
from mpstream.measurement.recorder.csvformat import Delta
from mpstream.measurement.recorder.rates import InterfaceSelection, RateTracker, counter_delta

PROC_NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo: 1171904    1392    0    0    0     0          0         0  "
    "1171904    1392    0    0    0     0       0          0\n"
    "  nic1: 18446744073709551615 12 3 0 0 0 0 0 999 14 5 0 0 0 0 0\n"
)


def counters(rx=0, tx=0, rxp=0, txp=0):
    return Counters(rx_bytes=rx, tx_bytes=tx, rx_packets=rxp, tx_packets=txp, rx_errors=0, tx_errors=0)


def test_parse_proc_net_dev():
    snap = parse_proc_net_dev(PROC_NET_DEV)
    assert list(snap) == ["lo", "nic1"]
    nic1 = snap["nic1"].counters
    assert nic1.rx_bytes == 2**64 - 1 and nic1.rx_packets == 12 and nic1.rx_errors == 3
    assert nic1.tx_bytes == 999 and nic1.tx_packets == 14 and nic1.tx_errors == 5


def test_selection_like_bwmng():
    assert "eth0" in InterfaceSelection.parse("")
    only = InterfaceSelection.parse("nic1,nic2")
    assert "nic1" in only and "nic2" in only and "lo" not in only
    but = InterfaceSelection.parse("%lo,nic2")
    assert "nic1" in but and "lo" not in but and "nic2" not in but


def test_counter_delta_plain_and_wraps():
    assert counter_delta(150, 100) == 50
    assert counter_delta(10, 2**32 - 6) == 16  # a 32-bit counter wrapped
    assert counter_delta(10, 2**64 - 6) == 16  # a 64-bit counter wrapped
    assert counter_delta(500, 3 * 2**32) == 500  # reset: counts since the reset
    assert counter_delta(5, 1000) == 5


@given(old=st.integers(0, 2**64 - 1), step=st.integers(0, 2**31 - 1))
def test_counter_delta_recovers_any_small_step_across_64bit_wrap(old, step):
    assert counter_delta((old + step) % 2**64, old) == step


def snap(**values):
    return {name: (v if isinstance(v, Reading) else Reading(v)) for name, v in values.items()}


def test_tracker_first_sample_zero_then_deltas_and_total():
    tracker = RateTracker()
    elapsed, rows = tracker.update(snap(nic1=counters(100, 10), nic2=counters(5, 5)), 10.0)
    assert [r.name for r in rows] == ["nic1", "nic2", "total"]
    assert all(r.delta == Delta() for r in rows) and elapsed == 0.0
    elapsed, rows = tracker.update(snap(nic1=counters(300, 40, 2, 1), nic2=counters(6, 105)), 10.5)
    by_name = {r.name: r for r in rows}
    assert by_name["nic1"].delta == Delta(rx_bytes=200, tx_bytes=30, rx_packets=2, tx_packets=1)
    assert elapsed == 0.5
    assert by_name["total"].delta.rx_bytes == 201 and by_name["total"].delta.tx_bytes == 130


def test_tracker_idle_interfaces_keep_their_rows_and_the_total_sums_the_busy_ones():
    tracker = RateTracker()
    tracker.update(snap(a=counters(1), b=counters(2), c=counters(3)), 0.0)
    first = tracker.update(snap(a=counters(1), b=counters(2), c=counters(3)), 0.1).rows
    second = tracker.update(snap(a=counters(1), b=counters(9, 1), c=counters(3)), 0.2).rows
    assert second[0] is first[0] and second[2] is first[2]  # reused, nothing made for them
    assert [r.delta.rx_bytes for r in second] == [0, 7, 0, 7] and second[-1].delta.tx_bytes == 1
    third = tracker.update(snap(a=counters(5), b=counters(10, 1), c=counters(3)), 0.3).rows
    assert [r.delta.rx_bytes for r in third] == [4, 1, 0, 5]


def test_tracker_selection_excludes_from_rows_and_total():
    tracker = RateTracker(InterfaceSelection.parse("%lo"))
    tracker.update(snap(lo=counters(0), nic1=counters(0)), 0.0)
    rows = tracker.update(snap(lo=counters(1000), nic1=counters(7)), 1.0).rows
    assert [r.name for r in rows] == ["nic1", "total"]
    assert rows[-1].delta.rx_bytes == 7


def test_tracker_interface_appears_vanishes_and_is_recreated():
    tracker = RateTracker()
    tracker.update(snap(a=Reading(counters(10), ifindex=2)), 0.0)
    rows = tracker.update(snap(a=Reading(counters(20), ifindex=2), b=Reading(counters(5000), ifindex=3)), 1.0).rows
    assert {r.name: r.delta.rx_bytes for r in rows} == {"a": 10, "b": 0, "total": 10}  # no peak for b
    rows = tracker.update(snap(b=Reading(counters(5100), ifindex=3)), 2.0).rows
    assert {r.name: r.delta.rx_bytes for r in rows} == {"b": 100, "total": 100}
    rows = tracker.update(snap(a=Reading(counters(3), ifindex=9), b=Reading(counters(5100), ifindex=3)), 3.0).rows
    assert {r.name: r.delta.rx_bytes for r in rows} == {"a": 0, "b": 0, "total": 0}
    rows = tracker.update(snap(a=Reading(counters(8), ifindex=9)), 4.0).rows
    assert {r.name: r.delta.rx_bytes for r in rows} == {"a": 5, "total": 5}


def test_tracker_counter_wrap_between_samples():
    tracker = RateTracker()
    tracker.update(snap(a=counters(2**32 - 100)), 0.0)
    rows = tracker.update(snap(a=counters(50)), 0.1).rows
    assert rows[0].delta.rx_bytes == 150


def test_down_interfaces_skipped_unless_listed_or_asked_for():
    everything = InterfaceSelection.parse("")
    assert everything.wants("eth0", up=True) and not everything.wants("ifb0", up=False)
    assert everything.wants("ifb0", up=False, include_down=True)
    assert InterfaceSelection.parse("ifb0").wants("ifb0", up=False)
    assert not InterfaceSelection.parse("%lo").wants("ifb0", up=False)


def test_interface_going_down_is_forgotten_and_restarts_from_zero():
    tracker = RateTracker()
    tracker.update(snap(a=Reading(counters(10), 2, True)), 0.0)
    rows = tracker.update(snap(a=Reading(counters(20), 2, False)), 1.0).rows
    assert [r.name for r in rows] == ["total"]
    rows = tracker.update(snap(a=Reading(counters(90), 2, True)), 2.0).rows
    assert rows[0].name == "a" and rows[0].delta == Delta()
    assert tracker.update(snap(a=Reading(counters(95), 2, True)), 3.0).rows[0].delta.rx_bytes == 5


def test_the_snapshot_of_the_sample_before_read_again_gives_its_rows_all_idle():
    tracker = RateTracker(InterfaceSelection.parse("%lo"))
    first = snap(lo=counters(1), a=counters(10), b=counters(20))
    tracker.update(first, 0.0)
    busy = snap(lo=counters(1), a=counters(15), b=counters(20))
    moved = tracker.update(busy, 0.1)
    assert [r.delta.rx_bytes for r in moved.rows] == [5, 0, 5]
    again = tracker.update(busy, 0.25)  # the reader's "nothing changed": the very same object
    assert again.elapsed_s == pytest.approx(0.15)
    assert [r.name for r in again.rows] == ["a", "b", "total"] and all(r.delta == Delta() for r in again.rows)
    assert again.rows[1] is moved.rows[1]  # b's idle row, as before
    third = tracker.update(busy, 0.35)
    assert third.rows is again.rows and third.elapsed_s == pytest.approx(0.1)  # nothing made for it
    # an equal but new snapshot takes the ordinary way, to the same rows
    assert tracker.update(snap(lo=counters(1), a=counters(15), b=counters(20)), 0.45).rows == again.rows
    later = tracker.update(snap(lo=counters(1), a=counters(15), b=counters(27)), 0.55)
    assert [r.delta.rx_bytes for r in later.rows] == [0, 7, 7]
