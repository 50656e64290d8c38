"""Log lines a peer cannot forge or flood: peer strings escaped and cut, lines rate-limited."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_SHOWN = 120


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """A peer-supplied value as it may appear in a log line: one line, escaped, at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    extra = len(text) - limit
    if extra > 0:
        text = text[:limit]
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    if extra > 0:
        out.append(f"...(+{extra} chars)")
    return "".join(out)


class RateLimit(logging.Filter):
    """At most `per_second` records (bursts up to `burst`); the next record let through says how many were not.

    A peer that makes the relay log (unknown commands, refusals) cannot turn that into
    megabytes of log: beyond the rate lines are counted, not written.
    """

    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.per_second = per_second
        self.burst = burst
        self.suppressed = 0
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1:
            self.suppressed += 1
            return False
        self._tokens -= 1
        if self.suppressed:
            record.msg = f"{record.getMessage()} [{self.suppressed} log lines before this one were not written: " \
                         f"over the log rate limit]"
            record.args = None
            self.suppressed = 0
        return True


class Tally:
    """Events that come in storms (refused connections, accept failures): counted, and written at
    most once per `interval` seconds as one line with the counts since the last one."""

    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._contexts: dict[str, str] = {}
        self._logged_at: float | None = None

    def add(self, what: str, context: str = "") -> None:
        """Count one `what`; write the line when the interval is over (with the latest `context` of each)."""
        self._counts[what] = self._counts.get(what, 0) + 1
        self._contexts[what] = context
        self.flush()

    def flush(self, force: bool = False) -> None:
        """Write what was counted if the interval is over or `force` (call it now and then: a storm's tail)."""
        now = self._clock()
        if not self._counts or not force and self._logged_at is not None and now - self._logged_at < self.interval:
            return
        since = "" if self._logged_at is None else f" in the last {now - self._logged_at:.0f} s"
        counted = ", ".join(f"{count} {name}" + (f" ({self._contexts[name]})" if self._contexts[name] else "")
                            for name, count in self._counts.items())
        self.logger.warning("%s%s", counted, since)
        self._counts = {}
        self._contexts = {}
        self._logged_at = now
