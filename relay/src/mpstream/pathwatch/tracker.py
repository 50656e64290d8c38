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
        self.returned: dict[str, float] = {}  # providers back up, waiting to have their subflows re-created

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

    def due(
        self,
        now: float,
        settle: float,
        fresh: float,
        give_up: float,
        expendable=lambda provider: False,
        self_reliant=lambda provider: False,
    ) -> tuple[list[str], list[str]]:
        """(providers whose subflows to re-create now, providers given up on).

        Where this node opens the provider's subflows itself (`self_reliant(provider)`:
        its endpoints there are `subflow` ones, not `signal`), re-creating them needs
        nobody's announcement, only a path, which the provider's return is: due at once.

        Otherwise re-creating tears down its subflows and relies on another path to
        carry the announcements that bring them back. So a returned provider is due once
        it has stayed up for `settle` seconds while some other provider answered within
        the last `fresh` seconds - or while it has no live subflows at all
        (`expendable(provider)`: nothing to lose, e.g. they all timed out in the outage).
        When it comes back alone (the other provider failing at the same time, phase 3
        of the paper) with subflows still alive, those backed-off subflows are the only
        path left: after `give_up` seconds it is left to their retransmission timers
        (which `net.ipv4.tcp_rto_max_ms` bounds) and to the peers that open subflows.
        """
        due, dropped = [], []
        for name, since in list(self.returned.items()):
            entry = self.providers[name]
            if entry.state != UP:
                del self.returned[name]
                continue
            if self_reliant(name):
                due.append(name)
                del self.returned[name]
                continue
            if now - since < settle:
                continue
            if self.others_answer(name, now, fresh) or expendable(name):
                due.append(name)
                del self.returned[name]
            elif now - since >= give_up:
                dropped.append(name)
                del self.returned[name]
        return due, dropped

    def others_answer(self, name: str, now: float, fresh: float) -> bool:
        """Whether a provider other than `name` is up and answered within `fresh` seconds."""
        return any(
            other.name != name
            and other.state == UP
            and other.last_reply is not None
            and now - other.last_reply <= fresh
            for other in self.providers.values()
        )

    def _move(self, entry: ProviderState, new: str, now: float, reason: str) -> Transition:
        if entry.state == DOWN and new == UP:
            self.returned[entry.name] = now
        outage = now - entry.since if entry.state == DOWN and new == UP else None
        transition = Transition(entry.name, entry.state, new, now, outage, reason)
        entry.state, entry.since = new, now
        return transition
