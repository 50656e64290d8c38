"""Provider reachability from probe results: pure, time is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpstream.paths.pathwatch.rtt import RttEstimator

UP, DOWN, UNKNOWN = "up", "down", "unknown"
# How long an answer may take while nothing is known of a path's round-trip time (TCP's
# initial retransmission timeout, RFC 6298): a far path is not late before it could answer.
INITIAL_RTO = 1.0


@dataclass
class PathState:
    """One probe target of a provider."""

    peer: str
    rtt: RttEstimator = field(default_factory=RttEstimator)
    last_reply: float | None = None
    waiting_since: float | None = None  # the first probe sent after its last answer


@dataclass
class ProviderState:
    name: str
    state: str = UNKNOWN
    since: float = 0.0
    last_reply: float | None = None
    started: float = 0.0
    links_down: set[str] = field(default_factory=set)
    rtt: RttEstimator = field(default_factory=RttEstimator)  # over all its targets
    paths: dict[str, PathState] = field(default_factory=dict)
    peers: set[str] = field(default_factory=set)  # of its paths
    # target -> the first probe sent to it since the provider's last answer
    unanswered: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    provider: str
    old: str
    new: str
    at: float
    outage: float | None  # how long it was down, on the way back up
    reason: str


class Tracker:
    """A provider is up while some probe over it is answered; one answer brings it back up
    (returning fast is the point), a carrier loss on one of its links takes it down, and
    so does silence, when both hold:

    - no probe over it has been answered for its threshold,
      max(down_after, rtt_factor x (srtt + 4 rttvar)) and at most down_after_max, from the
      round-trip times of its answers (smoothed like TCP's): a 300 ms path is not declared
      down while its answers are on their way, a 1 ms one is after `down_after`;
    - since the last answer, probes to at least two different peers (one where there is
      only one) are late: unanswered for longer than that target's srtt + 4 rttvar (the
      provider's while the target never answered, INITIAL_RTO while nothing answered).
      One peer that is gone does not take a working provider down with it.
    """

    def __init__(
        self,
        providers: list[str],
        down_after: float,
        now: float,
        rtt_factor: float = 2.0,
        down_after_max: float | None = None,
    ) -> None:
        if down_after <= 0:
            raise ValueError("down_after must be positive")
        self.down_after = down_after
        self.rtt_factor = rtt_factor
        self.down_after_max = max(down_after, down_after_max if down_after_max is not None else 3.0)
        self.providers = {name: ProviderState(name, since=now, started=now) for name in providers}
        self.returned: dict[str, float] = {}  # providers back up, waiting to have their subflows re-created

    def restart(self, now: float) -> None:
        """Count silence from `now` (when probing really starts), not from construction."""
        for entry in self.providers.values():
            entry.started = entry.since = now

    def state(self, provider: str) -> str:
        return self.providers[provider].state

    def sent(self, provider: str, target: str, now: float, peer: str = "") -> None:
        """A probe over `provider` went to `target` (an address of `peer`, default itself)."""
        entry = self.providers[provider]
        path = entry.paths.get(target)
        if path is None:
            path = entry.paths[target] = PathState(peer or target)
            entry.peers.add(path.peer)
        if path.waiting_since is None:
            path.waiting_since = now
        entry.unanswered.setdefault(target, now)

    def reply(self, provider: str, now: float, target: str | None = None, rtt: float | None = None) -> list[Transition]:
        """A probe over `provider` (to `target`, answered after `rtt` seconds) was answered."""
        entry = self.providers[provider]
        entry.last_reply = now
        entry.unanswered.clear()
        if target is not None:
            path = entry.paths.get(target)
            if path is None:
                path = entry.paths[target] = PathState(target)
                entry.peers.add(path.peer)
            path.last_reply, path.waiting_since = now, None
            if rtt is not None:
                path.rtt.sample(rtt)
                entry.rtt.sample(rtt)
        if entry.links_down or entry.state == UP:
            return []
        return [self._move(entry, UP, now, "probe answered")]

    def threshold(self, provider: str) -> float:
        """Seconds of silence after which `provider` may be declared down."""
        entry = self.providers[provider]
        derived = self.rtt_factor * entry.rtt.rto()
        return min(self.down_after_max, max(self.down_after, derived))

    def srtt(self, provider: str) -> float | None:
        return self.providers[provider].rtt.srtt

    def _rto(self, entry: ProviderState, path: PathState) -> float:
        if path.rtt.known:
            return path.rtt.rto()
        return entry.rtt.rto() if entry.rtt.known else INITIAL_RTO

    def late_peers(self, provider: str, now: float) -> set[str]:
        """Peers with a probe sent since the provider's last answer and late by now."""
        entry = self.providers[provider]
        return {
            entry.paths[target].peer
            for target, sent in entry.unanswered.items()
            if now - sent >= self._rto(entry, entry.paths[target])
        }

    def anchor(self, provider: str, now: float) -> str | None:
        """The target to probe every round: the quickest of those that answer (none of
        their probes late); None while none does (then all probes rotate)."""
        entry = self.providers[provider]
        answering = [
            (path.rtt.srtt if path.rtt.known else INITIAL_RTO, target)
            for target, path in entry.paths.items()
            if path.last_reply is not None
            and (path.waiting_since is None or now - path.waiting_since < self._rto(entry, path))
        ]
        return min(answering)[1] if answering else None

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
            if entry.state == DOWN:
                continue
            heard = entry.last_reply if entry.last_reply is not None else entry.started
            silence = now - heard
            if silence < self.threshold(entry.name):
                continue
            # Two peers, or the one there is (none: probes are not reported, silence decides).
            needed = min(2, len(entry.peers))
            late = self.late_peers(entry.name, now)
            if len(late) < needed:
                continue
            transitions.append(
                self._move(
                    entry, DOWN, now, f"no probe answered for {silence:.2f} s ({len(late)} peers late)"
                )
            )
        return transitions

    def due(
        self,
        now: float,
        settle: float,
        fresh: float,
        give_up: float,
        expendable=lambda provider: False,
        self_reliant=lambda provider: False,
        rejoin_rtts: float = 0.0,
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

        Either way the peers that open subflows get `rejoin_rtts` of the provider's smoothed
        round trips on top of `settle` to re-join over it first: they see its return up to
        a probe round trip after this node, and their join is established here one and a
        half round trips after they send it. Re-created sooner, the address is removed and
        added again under those joins.
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
            wait = settle + rejoin_rtts * (entry.rtt.srtt or 0.0)
            if now - since < wait:
                continue
            if self.others_answer(name, now, fresh) or expendable(name):
                due.append(name)
                del self.returned[name]
            elif now - since >= max(give_up, wait):
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
