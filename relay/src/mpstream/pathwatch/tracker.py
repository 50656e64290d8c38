"""Provider reachability from probe results: pure, time is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

UP, DOWN, UNKNOWN = "up", "down", "unknown"


@dataclass
class ProviderState:
    name: str
    state: str = UNKNOWN
    since: float = 0.0
    last_reply: float | None = None
    started: float = 0.0
    links_down: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Transition:
    provider: str
    old: str
    new: str
    at: float
    outage: float | None  # how long it was down, on the way back up
    reason: str


class Tracker:
    """A provider is up while some probe over it was answered within `down_after` seconds.

    One answer brings it back up (returning fast is the point); silence for `down_after`
    seconds, or a carrier loss on one of its links, takes it down.
    """

    def __init__(self, providers: list[str], down_after: float, now: float) -> None:
        if down_after <= 0:
            raise ValueError("down_after must be positive")
        self.down_after = down_after
        self.providers = {name: ProviderState(name, since=now, started=now) for name in providers}

    def restart(self, now: float) -> None:
        """Count silence from `now` (when probing really starts), not from construction."""
        for entry in self.providers.values():
            entry.started = entry.since = now

    def state(self, provider: str) -> str:
        return self.providers[provider].state

    def reply(self, provider: str, now: float) -> list[Transition]:
        """A probe over `provider` was answered."""
        entry = self.providers[provider]
        entry.last_reply = now
        if entry.links_down or entry.state == UP:
            return []
        return [self._move(entry, UP, now, "probe answered")]

    def link(self, provider: str, device: str, carrier: bool, now: float) -> list[Transition]:
        """A link of `provider` lost or regained its carrier (netlink)."""
        entry = self.providers[provider]
        if carrier:
            entry.links_down.discard(device)
            return []  # up again only once a probe gets through
        entry.links_down.add(device)
        if entry.state == DOWN:
            return []
        return [self._move(entry, DOWN, now, f"{device} lost carrier")]

    def tick(self, now: float) -> list[Transition]:
        """Providers whose probes have gone unanswered for too long."""
        transitions = []
        for entry in self.providers.values():
            heard = entry.last_reply if entry.last_reply is not None else entry.started
            if entry.state != DOWN and now - heard >= self.down_after:
                silence = now - heard
                transitions.append(self._move(entry, DOWN, now, f"no probe answered for {silence:.2f} s"))
        return transitions

    def _move(self, entry: ProviderState, new: str, now: float, reason: str) -> Transition:
        outage = now - entry.since if entry.state == DOWN and new == UP else None
        transition = Transition(entry.name, entry.state, new, now, outage, reason)
        entry.state, entry.since = new, now
        return transition
