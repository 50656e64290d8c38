"""When each queued packet of a link leaves, and which packets are lost: pure logic.

One `Link` per direction of an access link. A packet that arrives at `now` leaves at
`now + delay + jitter`, but never before the packet queued ahead of it on the same link:
release times are monotonic per link, so jitter never reorders a flow's segments (as
netem does when jitter is used with a rate). Because release order equals arrival order,
every release is a prefix of the queue, which is what one NFQUEUE batch verdict expresses.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LinkSpec:
    """One direction of a link: queue number, one-way delay and jitter in s, loss 0..1."""

    queue: int
    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0

    def __post_init__(self):
        if not 0 <= self.queue <= 65535:
            raise ValueError(f"queue {self.queue} is not a 16-bit NFQUEUE number")
        if self.delay < 0 or self.jitter < 0:
            raise ValueError(f"queue {self.queue}: delay and jitter must not be negative")
        if self.jitter > self.delay:
            raise ValueError(f"queue {self.queue}: jitter {self.jitter * 1e3:g} ms exceeds the delay "
                             f"{self.delay * 1e3:g} ms (a packet cannot leave before it came)")
        if not 0 <= self.loss < 1:
            raise ValueError(f"queue {self.queue}: loss must be at least 0 and below 100 %")

    @classmethod
    def parse(cls, text: str) -> LinkSpec:
        """QUEUE:DELAY_MS[:JITTER_MS[:LOSS_PERCENT]], e.g. '3:20:2:0.5'."""
        parts = text.split(":")
        if not 2 <= len(parts) <= 4:
            raise ValueError(f"link {text!r}: expected QUEUE:DELAY_MS[:JITTER_MS[:LOSS_PERCENT]]")
        try:
            queue = int(parts[0])
            numbers = [float(p) for p in parts[1:]] + [0.0] * (4 - len(parts))
        except ValueError:
            raise ValueError(f"link {text!r}: expected numbers, as in 3:20:2:0.5") from None
        return cls(queue, numbers[0] / 1e3, numbers[1] / 1e3, numbers[2] / 100)

    def argument(self) -> str:
        return f"{self.queue}:{self.delay * 1e3:g}:{self.jitter * 1e3:g}:{self.loss * 100:g}"


@dataclass
class Link:
    """The packets one link holds, oldest first, with their release times."""

    spec: LinkSpec
    rng: random.Random = field(default_factory=random.Random)
    held: deque = field(default_factory=deque)  # (release_time, packet_id)
    last_release: float = float("-inf")
    received: int = 0
    dropped: int = 0

    def arrive(self, packet_id: int, now: float) -> bool:
        """Queue the packet; False means it is lost (the caller drops it at once)."""
        self.received += 1
        spec = self.spec
        if spec.loss and self.rng.random() < spec.loss:
            self.dropped += 1
            return False
        release = now + spec.delay
        if spec.jitter:
            release += self.rng.uniform(-spec.jitter, spec.jitter)
        release = max(release, self.last_release)
        self.last_release = release
        self.held.append((release, packet_id))
        return True

    def next_release(self) -> float | None:
        return self.held[0][0] if self.held else None

    def release_due(self, now: float) -> int | None:
        """Forget every packet due by `now`; the id of the last one (None if none is due)."""
        held, last = self.held, None
        while held and held[0][0] <= now:
            last = held.popleft()[1]
        return last
