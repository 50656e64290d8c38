"""Waiting for a wall-clock instant precisely, and ending the wait at once on SIGTERM/SIGINT.

A wait is a coarse sleep in steps of at most a second (a wall clock that is set meanwhile is
followed), then one short sleep that ends SPIN_S before the instant, then a look at the clock
for those last SPIN_S: the oversleep of the short sleep is absorbed without a long busy loop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

COARSE_STEP_S = 1.0  # the longest single sleep
FINAL_S = 0.02  # the coarse sleeps end this long before the instant
SPIN_S = 0.002  # this last stretch is watched on the clock rather than slept
MIN_SLEEP_S = 0.0001  # a shorter sleep is not worth its system call: the clock is watched instead


def sleep_step(left: float) -> float | None:
    """How long to sleep when `left` seconds remain: None once the instant has come, 0 to
    look at the clock again at once."""
    if left <= 0:
        return None
    if left > FINAL_S:
        return min(left - FINAL_S, COARSE_STEP_S)
    if left > SPIN_S + MIN_SLEEP_S:
        return left - SPIN_S
    return 0.0


class Interrupter:
    """SIGTERM and SIGINT turned into a flag (and a readable pipe that ends any wait), so the
    scheduler decides what to finish rather than dying between two steps."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal: int | None = None
        self.at: float | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum: int, _frame) -> None:
        if self.signal is None:
            self.signal, self.at = signum, time.time()

    @property
    def interrupted(self) -> bool:
        return self.signal is not None

    def sleep_until(self, at: float) -> bool:
        """Wait for the Unix time `at`: True when it has come, False when a signal came first."""
        while self.signal is None:
            step = sleep_step(at - time.time())
            if step is None:
                return True
            if step > 0:
                select.select([self._read], [], [], step)
                with contextlib.suppress(BlockingIOError):
                    os.read(self._read, 512)
        return False

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        os.close(self._read)
        os.close(self._write)
