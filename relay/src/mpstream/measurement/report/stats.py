"""Small statistics and orderings shared by the report's modules (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0-100) by linear interpolation between closest ranks; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def natural_key(text: str) -> tuple:
    """Sort key that puts client2 before client10 (numbers compared as numbers)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text))


def sorted_unique(lines: Iterable[str]) -> list[str]:
    """Deduplicated, in natural order."""
    return sorted(set(lines), key=natural_key)


def seconds(value: float) -> str:
    """A time for people: one decimal, without a trailing `.0` (`32`, `12.5`)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def spread(values: Iterable[float | None]) -> dict:
    """Median, p95 and max of the known values (None left out); `inf` (never) sorts above every number.

    JSON has no infinity: a figure that falls on a never is null, and `never` counts them, so a
    null with `count` > 0 reads "never", a null with `count` 0 "nothing to count".
    """
    known = [float(v) for v in values if v is not None]
    figures: dict = {"count": len(known), "never": sum(1 for v in known if math.isinf(v))}
    for name, q in (("median", 50), ("p95", 95), ("max", 100)):
        value = percentile(known, q)
        figures[name] = None if value is None or math.isinf(value) or math.isnan(value) else round(value, 4)
    return figures
