"""Whether this machine's clocks were disturbed while a timing test ran.

Two things outside the code under test make its instants wrong: the wall clock stepped
(a virtual machine restored from a snapshot has its clock set forward: a CI run once saw
every switch of a schedule 18 s "late" at once) and the whole machine frozen. A lag
measured across either is the machine's. A timing test runs once more then, and only
then: the second run's verdict stands whatever happens to the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

STEP_S = 0.05  # the wall clock moved this much against the monotonic one: stepped
FREEZE_S = 0.5  # a thread that sleeps 10 ms woke this late: the machine stood still
TICK_S = 0.01


class ClockWatch:
    """While entered: the largest gap between a thread's short sleeps, and on exit how far
    the wall clock moved against the monotonic one."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self.longest_gap_s = 0.0
        self.stepped_s = 0.0
        self._offset = 0.0

    def __enter__(self) -> ClockWatch:
        self._offset = time.time() - time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.stepped_s = (time.time() - time.monotonic()) - self._offset

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            self.longest_gap_s = max(self.longest_gap_s, now - last - TICK_S)
            last = now

    def disturbance(self) -> str | None:
        if abs(self.stepped_s) >= STEP_S:
            return f"the wall clock stepped by {self.stepped_s:+.3f} s"
        if self.longest_gap_s >= FREEZE_S:
            return f"the machine stood still for {self.longest_gap_s:.2f} s"
        return None


def again_if_the_clock_was_disturbed(scenario: Callable[[Path], None], folder: Path) -> None:
    """Run `scenario` (which asserts) with a folder of its own; when it fails while the
    clock was disturbed, say so and run it once more in a fresh folder."""
    first = folder / "first"
    first.mkdir(parents=True)
    watch = ClockWatch()
    try:
        with watch:
            scenario(first)
        return
    except AssertionError:
        why = watch.disturbance()
        if why is None:
            raise
    print(f"{why} during the run: measured again")
    second = folder / "second"
    second.mkdir()
    scenario(second)
