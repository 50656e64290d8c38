"""Smoothed round-trip time of a path, the way TCP keeps it (RFC 6298): pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RttEstimator:
    srtt: float | None = None
    rttvar: float = 0.0

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    @property
    def known(self) -> bool:
        return self.srtt is not None

    def rto(self) -> float:
        """srtt + 4 rttvar: how long an answer may take before it is late (0 while unknown)."""
        return 0.0 if self.srtt is None else self.srtt + 4 * self.rttvar
