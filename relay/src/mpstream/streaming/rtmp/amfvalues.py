"""The Python values AMF0 and AMF3 share: `UNDEFINED`, `Date`, and how deep a value may nest."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_DEPTH = 32


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class Date:
    """Milliseconds since the epoch, and the (ignored by everyone) timezone offset."""

    milliseconds: float
    timezone: int = 0
