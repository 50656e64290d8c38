"""From counter snapshots to per-interval deltas: selection, wrap, interfaces that come and go.

Pure: `RateTracker.update` takes a snapshot with the clock it was read at and returns
the sample to write. It never does I/O and never reads a clock itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from operator import sub
from typing import NamedTuple

from mpstream.measurement.recorder.counters import Reading, Snapshot
from mpstream.measurement.recorder.csvformat import NO_DELTA, TOTAL, Delta

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


# Made without a Python-level __new__: this runs for every busy interface on every sample.
_delta = partial(tuple.__new__, Delta)


class RateRow(NamedTuple):
    """A row to write: `name` moved `delta` during the sample's interval."""

    name: str
    delta: Delta


class Sample(NamedTuple):
    """The rows of one sample (interfaces in snapshot order, then the total).

    `elapsed_s` is the interval since the sample before (0.0 for the first). It is the
    interval of every row: an interface that was in the sample before was read then, and
    one that was not has a row of zeros, to which no interval applies.
    """

    elapsed_s: float
    rows: list[RateRow]


class _Seen(NamedTuple):
    reading: Reading  # as read at the sample before
    row: RateRow  # this interface's row for a sample in which it moved nothing


_sample = partial(tuple.__new__, Sample)
IDLE_TOTAL = RateRow(TOTAL, NO_DELTA)


class RateTracker:
    """Remembers the last reading of every selected interface and turns the next into rows.

    An interface whose reading did not change since the sample before (counters, ifindex,
    state) costs a lookup and a comparison: its entry stays and its row is reused. A
    snapshot that is the very object of the sample before (a reader hands it back when
    nothing changed) costs nothing per interface: its rows are all idle ones, kept in one
    list that is handed out again (callers must not change it) until something moves.
    """

    def __init__(self, selection: InterfaceSelection | None = None, include_down: bool = False) -> None:
        self.selection = selection or InterfaceSelection()
        self.include_down = include_down
        self._seen: dict[str, _Seen] = {}
        self._last_sample_at: float | None = None
        self._wanted: dict[tuple[str, bool], bool] = {}  # (name, up) -> selected: decided once
        self._snapshot: Snapshot | None = None  # of the sample before
        self._rows: list[RateRow] = []  # of the sample before
        self._idle_rows: list[RateRow] | None = None  # of `_snapshot` read again

    def _unchanged_rows(self) -> list[RateRow]:
        """The rows of the snapshot of the sample before, read again: every one idle."""
        seen = self._seen
        self._idle_rows = [seen[row.name].row for row in self._rows[:-1]] + [IDLE_TOTAL]
        return self._idle_rows

    def update(self, snapshot: Snapshot, monotonic_s: float) -> Sample:
        """The sample of every selected interface in `snapshot`, read at `monotonic_s`.

        An interface seen for the first time (or re-created: new ifindex) gets a row of
        zeros, like bwm-ng does, so that no peak appears when it shows up. An interface
        that vanished (or, unless listed by name, went down) gets no row and is forgotten.
        """
        if snapshot is self._snapshot:  # read again, nothing moved: the rows of the sample before, all idle
            idle_rows = self._idle_rows or self._unchanged_rows()
            elapsed = monotonic_s - self._last_sample_at
            self._last_sample_at = monotonic_s
            return _sample((elapsed, idle_rows))
        rows: list[RateRow] = []
        moved: list[Delta] = []
        seen_before, wanted = self._seen, self._wanted
        for name, reading in snapshot.items():
            seen = seen_before.get(name)
            if seen is not None and seen.reading == reading:
                rows.append(seen.row)  # selected when it was stored, and nothing moved
                continue
            counters, ifindex, up = reading
            selected = wanted.get((name, up))
            if selected is None:
                selected = wanted[(name, up)] = self.selection.wants(name, up, self.include_down)
            if not selected:
                continue
            delta = NO_DELTA
            if seen is None or (ifindex is not None and seen.reading.ifindex not in (None, ifindex)):
                if seen is not None:
                    log.info("interface %s was re-created (ifindex %s -> %s)", name, seen.reading.ifindex, ifindex)
                elif self._last_sample_at is not None:
                    log.info("interface %s appeared", name)
            elif seen.reading.counters != counters:
                old = seen.reading.counters
                delta = _delta(map(sub, counters, old))
                if min(delta) < 0:  # rare: a wrap or a reset, worth a Python call per field
                    delta = _delta(map(counter_delta, counters, old))
            idle_row = seen.row if seen is not None else RateRow(name, NO_DELTA)
            seen_before[name] = _Seen(reading, idle_row)
            if delta is NO_DELTA:
                rows.append(idle_row)
            else:
                rows.append(RateRow(name, delta))
                moved.append(delta)
        if len(seen_before) > len(rows):  # forget what vanished or went down: it restarts from zero
            present = {row.name for row in rows}
            for name in [n for n in seen_before if n not in present]:
                log.info("interface %s vanished or went down", name)
                del seen_before[name]
        elapsed = 0.0 if self._last_sample_at is None else monotonic_s - self._last_sample_at
        self._last_sample_at = monotonic_s
        if not moved:
            total = NO_DELTA
        elif len(moved) == 1:
            total = moved[0]
        else:
            total = _delta(map(sum, zip(*moved, strict=True)))
        rows.append(IDLE_TOTAL if total is NO_DELTA else RateRow(TOTAL, total))
        self._snapshot, self._rows, self._idle_rows = snapshot, rows, None
        return _sample((elapsed, rows))
