"""Sample times on a monotonic clock without drift: tick k is due at `start + k * interval`.

Time spent reading and writing does not push later ticks back; when the process was held
up for longer than an interval (a stopped VM, an overloaded CPU), the missed ticks are
skipped instead of fired in a burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Ticker:
    start: float
    interval: float
    index: int = 0  # the tick that is due next
    next_due: float = field(init=False)  # when it is due: `due()`, kept by `advance` for the loop

    def __post_init__(self) -> None:
        self.next_due = self.due()

    def due(self) -> float:
        return self.start + self.index * self.interval

    def advance(self, now: float) -> int:
        """Move to the next tick after one fired at `now`; returns how many ticks were skipped."""
        following = self.index + 1
        due = self.start + following * self.interval
        if now < due:  # on time, as nearly always
            self.index, self.next_due = following, due
            return 0
        earliest = math.floor((now - self.start) / self.interval) + 1
        skipped = max(0, earliest - following)
        self.index = following + skipped
        self.next_due = self.due()
        return skipped
