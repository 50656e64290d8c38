"""The bwm-ng `-o csv -T rate` line format, written and read as pure functions.

bwm-ng 0.6.3 writes 21 `;`-separated fields per interface per sample (see its README):
the timestamp, the interface name, then for bytes, packets, errors and bits the rates
(per second) and the counts of the interval. Errors carry no total rate. Rates use two
decimals, counts are integers, the timestamp has microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

DELIMITER = ";"
TOTAL = "total"

FIELDS = (
    "unix_timestamp", "iface_name",
    "bytes_out/s", "bytes_in/s", "bytes_total/s", "bytes_in", "bytes_out",
    "packets_out/s", "packets_in/s", "packets_total/s", "packets_in", "packets_out",
    "errors_out/s", "errors_in/s", "errors_in", "errors_out",
    "bits_out/s", "bits_in/s", "bits_total/s", "bits_in", "bits_out",
)


class Delta(NamedTuple):
    """What one interface moved during one sample interval (a tuple: cheap at 10 samples/s).

    Fields in the order of `counters.Counters`: a delta is the field-wise difference.
    """

    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0

    def plus(self, other: Delta) -> Delta:
        return Delta._make(map(int.__add__, self, other))


NO_DELTA = Delta()  # the one shared "moved nothing", which writers may test by identity


@dataclass(frozen=True)
class Row:
    """One parsed line: interface `name` at `timestamp` moved `delta` in the interval before."""

    timestamp: float
    name: str
    delta: Delta
    rx_rate: float  # bytes per second, as written
    tx_rate: float


# A row but its timestamp (`%.6f;`), which all rows of a sample share.
_ROW_REST = ";".join(
    ["%s"] + ["%.2f", "%.2f", "%.2f", "%d", "%d"] * 2 + ["%.2f", "%.2f", "%d", "%d"]
    + ["%.2f", "%.2f", "%.2f", "%d", "%d"]
) + "\n"


def _row_rest(name: str, delta: Delta, elapsed_s: float) -> str:
    per_s = 1.0 / elapsed_s if elapsed_s > 0 else 0.0
    rxp, txp, rx, tx, rxe, txe = delta
    return _ROW_REST % (
        name,
        tx * per_s, rx * per_s, (tx + rx) * per_s, rx, tx,
        txp * per_s, rxp * per_s, (txp + rxp) * per_s, rxp, txp,
        txe * per_s, rxe * per_s, rxe, txe,
        8 * tx * per_s, 8 * rx * per_s, 8 * (tx + rx) * per_s, 8 * rx, 8 * tx,
    )


def format_row(timestamp: float, name: str, delta: Delta, elapsed_s: float) -> str:
    """One CSV line (with newline); rates are `delta / elapsed_s` (zero for an empty interval)."""
    return f"{timestamp:.6f};" + _row_rest(name, delta, elapsed_s)


class SampleFormatter:
    """All rows of one sample as one string, the same lines `format_row` writes.

    The timestamp is formatted once per sample, and the row of an interface that moved
    nothing (most of them, most of the time) is formatted once per interface. A sample in
    which nothing moved keeps its lines: handed the same rows list again (which its maker
    must not have changed), the formatter only puts the new timestamp before each line.
    """

    MAX_IDLE_ROWS = 1024  # names are kept while they recur; a flood of short-lived ones starts afresh

    def __init__(self) -> None:
        self._idle_rows: dict[str, str] = {}
        self._idle_sample: tuple[object, list[str]] = (None, [])  # (rows, their lines but timestamps)

    def format(self, timestamp: float, elapsed_s: float, rows: Iterable[tuple[str, Delta]]) -> str:
        """The lines of `rows` (name, delta) read at `timestamp`, each over `elapsed_s`."""
        idle_sample, rests = self._idle_sample
        if rows is not idle_sample:
            rests = self._rests(elapsed_s, rows)
        if not rests:
            return ""
        stamp = f"{timestamp:.6f};"
        return stamp + stamp.join(rests)

    def _rests(self, elapsed_s: float, rows: Iterable[tuple[str, Delta]]) -> list[str]:
        """Each line of `rows` but its timestamp; remembered when every row is idle."""
        idle_rows = self._idle_rows
        rests = []
        busy = False
        for name, delta in rows:
            if delta is not NO_DELTA and any(delta):
                rests.append(_row_rest(name, delta, elapsed_s))
                busy = True
                continue
            rest = idle_rows.get(name)
            if rest is None:
                if len(idle_rows) >= self.MAX_IDLE_ROWS:
                    idle_rows.clear()
                rest = idle_rows[name] = _row_rest(name, NO_DELTA, 0.0)
            rests.append(rest)
        if not busy:
            self._idle_sample = (rows, rests)
        return rests


class CSVFormatError(ValueError):
    """A line is not a bwm-ng rate-mode CSV line."""


def parse_line(line: str) -> Row:
    """Parse one rate-mode line (ours or bwm-ng's)."""
    parts = line.rstrip("\r\n").split(DELIMITER)
    if len(parts) < 16:
        raise CSVFormatError(f"expected {len(FIELDS)} fields, got {len(parts)}: {line!r}")
    try:
        delta = Delta(
            rx_bytes=int(parts[5]), tx_bytes=int(parts[6]),
            rx_packets=int(parts[10]), tx_packets=int(parts[11]),
            rx_errors=int(parts[14]), tx_errors=int(parts[15]),
        )
        return Row(float(parts[0]), parts[1], delta, rx_rate=float(parts[3]), tx_rate=float(parts[2]))
    except ValueError as exc:
        raise CSVFormatError(f"bad number in {line!r}") from exc


def parse_text(text: str) -> list[Row]:
    """All complete lines of a file; a torn last line (killed writer) is skipped."""
    rows = []
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(parse_line(line))
        except CSVFormatError:
            if number == len(lines) - 1 and not line.endswith("\n"):
                break
            raise
    return rows
