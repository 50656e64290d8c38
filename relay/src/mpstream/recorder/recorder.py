"""The sampling loop: read counters on each tick, write and flush the rows, stop when asked."""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from mpstream.recorder.counters import CounterReader
from mpstream.recorder.csvformat import format_row
from mpstream.recorder.rates import RateTracker
from mpstream.recorder.schedule import Ticker

log = logging.getLogger(__name__)


class StopSignal:
    """Sleeps until a deadline or until SIGTERM/SIGINT/SIGHUP arrives (self-pipe, no busy loop)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1

    def install(self) -> StopSignal:
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd)
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.requested = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; True when a stop was requested."""
        if not self.requested and timeout > 0:
            select.select([self._read_fd], [], [], timeout)
            try:
                os.read(self._read_fd, 512)
            except BlockingIOError:
                pass
        return self.requested

    def close(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read_fd)
        os.close(self._write_fd)


@dataclass
class Limits:
    count: int | None = None  # samples to write (the first one, all zeros, included)
    duration_s: float | None = None


def _sleep(timeout: float) -> bool:
    time.sleep(max(0.0, timeout))
    return False


def record(
    reader: CounterReader,
    tracker: RateTracker,
    out: TextIO,
    interval_s: float,
    limits: Limits | None = None,
    wait: Callable[[float], bool] = _sleep,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> int:
    """Sample until a limit is reached or `wait` reports a stop; returns the samples written.

    On a stop request one last sample is taken, so the file covers the traffic up to the stop.
    """

    def sample() -> None:
        snapshot = reader.read()
        read_mono, read_wall = monotonic(), wall()  # the time the counters were read
        for row in tracker.update(snapshot, read_mono):
            out.write(format_row(read_wall, row.name, row.delta, row.elapsed_s))
            out.flush()  # a killed recorder loses at most the sample being written

    limits = limits or Limits()
    ticker = Ticker(start=monotonic(), interval=interval_s)
    samples = 0
    while True:
        sample()
        samples += 1
        if limits.count is not None and samples >= limits.count:
            return samples
        skipped = ticker.advance(monotonic())
        if skipped:
            log.warning("recorder fell behind, skipped %d sample(s)", skipped)
        if limits.duration_s is not None and ticker.due() - ticker.start > limits.duration_s + 1e-9:
            return samples
        if _sleep_until(ticker.due(), wait, monotonic):
            sample()
            return samples + 1


def _sleep_until(deadline: float, wait: Callable[[float], bool], monotonic: Callable[[], float]) -> bool:
    """Sleep to `deadline` (again when woken early by an unrelated signal); True on a stop request."""
    while True:
        if wait(max(0.0, deadline - monotonic())):
            return True
        if monotonic() >= deadline:
            return False
