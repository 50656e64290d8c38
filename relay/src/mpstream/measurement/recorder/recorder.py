"""The sampling loop: read counters on each tick, write and flush the rows, stop when asked."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from mpstream.measurement.recorder.counters import CounterReader
from mpstream.measurement.recorder.csvformat import SampleFormatter
from mpstream.measurement.recorder.rates import RateTracker
from mpstream.measurement.recorder.schedule import Ticker

log = logging.getLogger(__name__)


class StopSignal:
    """Sleeps until a deadline or until SIGTERM/SIGINT/SIGHUP arrives.

    The signals are blocked and waited for with sigtimedwait(2): the sleep is a single
    system call, and a signal that arrives while a sample is written stays pending until
    the next sleep instead of interrupting the write.
    """

    SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})

    def __init__(self) -> None:
        self.requested = False
        self._previous_mask: set[int] | None = None

    def install(self) -> StopSignal:
        self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        return self

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; True when a stop was requested."""
        if not self.requested:
            info = signal.sigtimedwait(self.SIGNALS, max(0.0, timeout))
            if info is not None:
                log.info("received %s, stopping", signal.Signals(info.si_signo).name)
                self.requested = True
        return self.requested

    def close(self) -> None:
        if self._previous_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
            self._previous_mask = None


class RowWriter:
    """Appends a sample's rows to a file descriptor with one write(2): they reach the kernel at once.

    No userspace buffer sits in between, so there is nothing to flush and nothing to lose
    but the sample being written when the process is killed.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, text: str) -> None:
        data = text.encode("ascii")
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a nearly full pipe): the rest follows
            data = data[written:]
            written = os.write(self._fd, data)


@dataclass
class Limits:
    count: int | None = None  # samples to take (the first one, all zeros, included)
    duration_s: float | None = None
    write_first: bool = True  # bwm-ng's `-c 0` leaves out the first sample (all zeros)


def _sleep(timeout: float) -> bool:
    time.sleep(max(0.0, timeout))
    return False


def record(
    reader: CounterReader,
    tracker: RateTracker,
    out: TextIO | RowWriter,
    interval_s: float,
    limits: Limits | None = None,
    wait: Callable[[float], bool] = _sleep,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> int:
    """Sample until a limit is reached or `wait` reports a stop; returns the samples written.

    On a stop request one last sample is taken, so the file covers the traffic up to the stop.
    """

    limits = limits or Limits()
    count, duration_s = limits.count, limits.duration_s
    formatter = SampleFormatter()
    # Bound once and the sample written out in the loop: every tick runs through here.
    read, update, format_sample, write = reader.read, tracker.update, formatter.format, out.write
    flush = getattr(out, "flush", None)  # a RowWriter has no buffer to flush

    ticker = Ticker(start=monotonic(), interval=interval_s)
    advance = ticker.advance
    keep, stop, samples = limits.write_first, False, 0
    while True:
        snapshot = read()
        read_mono, read_wall = monotonic(), wall()  # the time the counters were read
        elapsed_s, rows = update(snapshot, read_mono)
        if keep:
            write(format_sample(read_wall, elapsed_s, rows))  # one write(2) per sample
            if flush is not None:
                flush()  # a killed recorder loses at most the sample being written
        keep = True
        samples += 1
        if stop or (count is not None and samples >= count):
            return samples
        skipped = advance(monotonic())
        if skipped:
            log.warning("recorder fell behind, skipped %d sample(s)", skipped)
        due = ticker.next_due
        if duration_s is not None and due - ticker.start > duration_s + 1e-9:
            return samples
        while True:  # sleep to the tick, again when woken early
            if wait(max(0.0, due - monotonic())):
                stop = True  # requested: one last sample, now
                break
            if monotonic() >= due:
                break
