"""Which probes go out each round: a fixed number per provider, whatever the number of peers.

With two or more a round, one probe of each round goes to the anchor, a peer address that answers (the tracker
picks it: the quickest of those answering), so that a working provider is heard from
every round even where many peers are gone; the others rotate over all the provider's
probes, the address families taking turns, so that every peer address is tried in turn
and a new anchor is found when the old one dies.
"""

from __future__ import annotations

from itertools import chain, zip_longest

from mpstream.paths.pathwatch.config import Probe


def interleaved(probes: list[Probe]) -> list[Probe]:
    """IPv4 and IPv6 probes taking turns; the IPv6 list starts two peers later (one where
    there are two), so that consecutive probes go to different peers where there are three
    or more."""
    v4 = [p for p in probes if p.version == 4]
    v6 = [p for p in probes if p.version == 6]
    if v4 and len(v6) > 1:
        shift = 2 if len(v6) > 2 else 1
        v6 = v6[shift:] + v6[:shift]
    return [p for p in chain.from_iterable(zip_longest(v4, v6)) if p is not None]


class Rotation:
    def __init__(self, probes: list[Probe], per_round: int | None) -> None:
        """`per_round` probes a round (None: all of them every round, the cost growing with the peers)."""
        if per_round is not None and per_round < 1:
            raise ValueError("per_round must be at least 1")
        self.order = interleaved(probes)
        self.per_round = per_round
        self._next = 0

    @property
    def size(self) -> int:
        """Probes a round."""
        return len(self.order) if self.per_round is None else min(self.per_round, len(self.order))

    def round(self, anchor: str | None = None) -> list[Probe]:
        """This round's probes: the one towards `anchor` (a target address) first, if any."""
        if self.per_round is None or self.per_round >= len(self.order):
            return list(self.order)
        # With a single probe a round, the anchor would be all there is: rotate instead.
        chosen = [p for p in self.order if p.target == anchor][:1] if self.per_round > 1 else []
        while len(chosen) < self.per_round:
            probe = self.order[self._next]
            self._next = (self._next + 1) % len(self.order)
            if probe not in chosen:
                chosen.append(probe)
        return chosen
