"""From counter snapshots to per-interval deltas: selection, wrap, interfaces that come and go.

Pure: `RateTracker.update` takes a snapshot with the clocks it was read at and returns
the rows to write. It never does I/O and never reads a clock itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from operator import sub
from typing import NamedTuple

from mpstream.recorder.counters import Counters, Snapshot
from mpstream.recorder.csvformat import TOTAL, Delta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InterfaceSelection:
    """bwm-ng's `-I` list: empty = all, `a,b` = only these, `%a,b` = all but these."""

    names: frozenset[str] = frozenset()
    exclude: bool = False

    @classmethod
    def parse(cls, spec: str | None) -> InterfaceSelection:
        spec = (spec or "").strip()
        exclude = spec.startswith("%")
        names = frozenset(n.strip() for n in spec.lstrip("%").split(",") if n.strip())
        return cls(names, exclude)

    def __contains__(self, name: str) -> bool:
        if not self.names:
            return True
        return (name in self.names) != self.exclude

    def wants(self, name: str, up: bool, include_down: bool = False) -> bool:
        """Like bwm-ng: a listed interface always, others only while up (or with `include_down`)."""
        if self.names and not self.exclude:
            return name in self.names
        return (up or include_down) and name in self


def counter_delta(new: int, old: int) -> int:
    """Increase of a counter from `old` to `new`, across a 32- or 64-bit wrap.

    A counter that went down by more than a wrap can explain was reset (the device was
    re-created or its driver reset it): what it counts now is what it moved since then.
    """
    if new >= old:
        return new - old
    for width in (32, 64):
        if old < 2**width:
            wrapped = new + 2**width - old
            if wrapped < 2 ** (width - 1):
                return wrapped
    return new


# Tuples made without a Python-level __new__: these run for every interface on every sample.
_delta = partial(tuple.__new__, Delta)
_NOTHING = Delta()


class RateRow(NamedTuple):
    """A row to write: `name` moved `delta` during the `elapsed_s` before the read."""

    name: str
    delta: Delta
    elapsed_s: float


class _Seen(NamedTuple):
    ifindex: int | None
    counters: Counters
    read_at: float  # monotonic seconds


_row = partial(tuple.__new__, RateRow)
_seen = partial(tuple.__new__, _Seen)


class RateTracker:
    """Remembers the last reading of every selected interface and turns the next into rows."""

    def __init__(self, selection: InterfaceSelection | None = None, include_down: bool = False) -> None:
        self.selection = selection or InterfaceSelection()
        self.include_down = include_down
        self._seen: dict[str, _Seen] = {}
        self._last_sample_at: float | None = None
        self._wanted: dict[tuple[str, bool], bool] = {}  # (name, up) -> selected: decided once

    def update(self, snapshot: Snapshot, monotonic_s: float) -> list[RateRow]:
        """Rows for every selected interface in `snapshot` (in its order), then the total.

        An interface seen for the first time (or re-created: new ifindex) gets a row of
        zeros, like bwm-ng does, so that no peak appears when it shows up. An interface
        that vanished (or, unless listed by name, went down) gets no row and is forgotten.
        """
        rows: list[RateRow] = []
        seen_before, wanted = self._seen, self._wanted
        for name, (counters, ifindex, up) in snapshot.items():
            selected = wanted.get((name, up))
            if selected is None:
                selected = wanted[(name, up)] = self.selection.wants(name, up, self.include_down)
            if not selected:
                continue
            seen = seen_before.get(name)
            if seen is None or (ifindex is not None and seen.ifindex not in (None, ifindex)):
                if seen is not None:
                    log.info("interface %s was re-created (ifindex %s -> %s)", name, seen.ifindex, ifindex)
                elif self._last_sample_at is not None:
                    log.info("interface %s appeared", name)
                delta, elapsed = _NOTHING, 0.0
            else:
                delta = _delta(map(sub, counters, seen.counters))
                if min(delta) < 0:  # rare: a wrap or a reset, worth a Python call per field
                    delta = _delta(map(counter_delta, counters, seen.counters))
                elapsed = monotonic_s - seen.read_at
            seen_before[name] = _seen((ifindex, counters, monotonic_s))
            rows.append(_row((name, delta, elapsed)))
        if len(self._seen) > len(rows):  # forget what vanished or went down: it restarts from zero
            present = {row.name for row in rows}
            for name in [n for n in self._seen if n not in present]:
                log.info("interface %s vanished or went down", name)
                del self._seen[name]
        sample_elapsed = 0.0 if self._last_sample_at is None else monotonic_s - self._last_sample_at
        self._last_sample_at = monotonic_s
        total = _delta(map(sum, zip(*[row.delta for row in rows], strict=True))) if rows else _NOTHING
        rows.append(_row((TOTAL, total, sample_elapsed)))
        return rows
