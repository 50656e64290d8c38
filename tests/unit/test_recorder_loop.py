"""The sampling loop on a fake clock: drift-free ticks, skipped ticks, limits, stop, flushing."""

from __future__ import annotations

import io
import signal
import threading
import time

import pytest
from mpstream.measurement.recorder.counters import Counters, Reading
from mpstream.measurement.recorder.csvformat import parse_text
from mpstream.measurement.recorder.rates import RateTracker
from mpstream.measurement.recorder.recorder import Limits, StopSignal, record
from mpstream.measurement.recorder.schedule import Ticker


class FakeClock:
    def __init__(self, start=1000.0, wall_offset=1.7e9):
        self.now = start
        self.wall_offset = wall_offset

    def monotonic(self):
        return self.now

    def wall(self):
        return self.now + self.wall_offset

    def sleep(self, timeout):
        self.now += timeout
        return False


class CountingReader:
    """A NIC receiving `rate` bytes per second of the fake clock; each read costs `cost` seconds."""

    name = "fake"

    def __init__(self, clock, rate=1000.0, cost=0.0):
        self.clock, self.rate, self.cost = clock, rate, cost
        self.reads = []

    def read(self):
        self.clock.now += self.cost
        self.reads.append(self.clock.now)
        counters = Counters(rx_packets=0, tx_packets=0, rx_bytes=int(self.clock.now * self.rate), tx_bytes=0,
                            rx_errors=0, tx_errors=0)
        return {"nic1": Reading(counters, ifindex=2)}

    def close(self):
        pass


class FlushCounter(io.StringIO):
    flushes = writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)

    def flush(self):
        self.flushes += 1
        super().flush()


def test_ticker_does_not_drift_and_skips_missed_ticks():
    ticker = Ticker(start=0.0, interval=0.1)
    assert ticker.advance(0.003) == 0 and ticker.due() == pytest.approx(0.1)
    assert ticker.advance(0.1049) == 0 and ticker.due() == pytest.approx(0.2)
    assert ticker.advance(0.55) == 3 and ticker.due() == pytest.approx(0.6)
    assert ticker.next_due == ticker.due()
    assert ticker.advance(0.6) == 0 and ticker.next_due == ticker.due() == pytest.approx(0.7)


def test_reads_follow_the_monotonic_grid_despite_read_cost():
    clock = FakeClock()
    reader = CountingReader(clock, cost=0.013)
    out = FlushCounter()
    samples = record(reader, RateTracker(), out, 0.1, Limits(count=20), wait=clock.sleep,
                     monotonic=clock.monotonic, wall=clock.wall)
    assert samples == 20
    offsets = [t - 1000.0 - 0.013 for t in reader.reads]
    assert offsets == pytest.approx([0.1 * k for k in range(20)])
    rows = parse_text(out.getvalue())
    assert len(rows) == 40  # nic1 + total per sample
    assert out.writes == out.flushes == 20  # each sample in one write, flushed at once
    assert rows[-1].timestamp == pytest.approx(reader.reads[-1] + 1.7e9)
    nic1 = [r for r in rows if r.name == "nic1"]
    assert nic1[0].delta.rx_bytes == 0
    assert all(r.rx_rate == pytest.approx(1000.0, rel=0.02) for r in nic1[1:])


def test_duration_limit():
    clock = FakeClock()
    samples = record(CountingReader(clock), RateTracker(), io.StringIO(), 0.5, Limits(duration_s=2.0),
                     wait=clock.sleep, monotonic=clock.monotonic, wall=clock.wall)
    assert samples == 5  # at 0, 0.5, 1.0, 1.5, 2.0


def test_stop_request_takes_a_last_sample():
    clock = FakeClock()
    calls = []

    def wait(timeout):
        calls.append(timeout)
        if len(calls) == 3:  # woken half way through the third interval by a stop request
            clock.now += timeout / 2
            return True
        if len(calls) == 2:  # woken early by an unrelated signal: the loop sleeps again
            clock.now += timeout / 4
            return False
        clock.now += timeout
        return False

    out = io.StringIO()
    samples = record(CountingReader(clock), RateTracker(), out, 1.0, wait=wait,
                     monotonic=clock.monotonic, wall=clock.wall)
    # ticks 0 and 1, then the stop at 1.625: the last sample carries 0.625 s
    assert samples == 3 and calls[2] == pytest.approx(0.75)
    nic1 = [r for r in parse_text(out.getvalue()) if r.name == "nic1"]
    assert [r.delta.rx_bytes for r in nic1] == [0, 1000, 625]


def test_stop_signal_wakes_the_sleep_on_sigterm():
    stop = StopSignal().install()
    try:
        assert stop.wait(0.01) is False
        # To this thread: blocked here, so pending until the sleep takes it. A signal to the
        # whole process could land on another thread of the test run, which does not block it.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        started = time.monotonic()
        assert stop.wait(30.0) is True
        assert time.monotonic() - started < 5
    finally:
        stop.close()
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_leaving_out_the_first_sample_like_bwmng_count_zero():
    clock = FakeClock()
    out = io.StringIO()
    record(CountingReader(clock), RateTracker(), out, 0.5, Limits(count=3, write_first=False),
           wait=clock.sleep, monotonic=clock.monotonic, wall=clock.wall)
    nic1 = [r for r in parse_text(out.getvalue()) if r.name == "nic1"]
    assert [r.delta.rx_bytes for r in nic1] == [500, 500]
