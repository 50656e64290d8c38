"""A token bucket of messages: how much parsing one connection may cost per second.

Pure (the clock is passed in), so that the rationing is tested without sockets:

    budget = MessageBudget(rate=2000, burst=5000, now=0.0)
    n = budget.allowance(now)       # messages that may be parsed now (None: unlimited)
    budget.spend(parsed)            # what they really were (aggregates count their parts)
"""

from __future__ import annotations


class MessageBudget:
    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate  # 0: unlimited
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def allowance(self, now: float) -> int | None:
        """Whole messages that may be parsed now; None when there is no limit."""
        if not self.rate:
            return None
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return int(self._tokens) if self._tokens > 0 else 0

    def spend(self, messages: int) -> None:
        """Take what was parsed (may go below zero: the peer then waits for the debt to refill)."""
        if self.rate:
            self._tokens -= messages

    def wait_for(self, messages: int) -> float:
        """Seconds until `messages` more may be parsed (at the last `allowance` time)."""
        if not self.rate:
            return 0.0
        missing = messages - self._tokens
        return max(0.0, missing / self.rate)
