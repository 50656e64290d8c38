"""Echo requests in flight from one source address: sequence number to target and send time (pure)."""

from __future__ import annotations

HORIZON = 30.0  # seconds an unanswered request is remembered; sequence numbers wrap far later


class Ledger:
    def __init__(self) -> None:
        self._seq = 0
        self._sent: dict[int, tuple[str, float]] = {}  # in send order

    def sent(self, target: str, now: float) -> int:
        """The sequence number for a request to `target` sent at `now`."""
        self._seq = (self._seq + 1) & 0xFFFF
        self._sent.pop(self._seq, None)
        self._sent[self._seq] = (target, now)
        while self._sent:
            oldest = next(iter(self._sent))
            if now - self._sent[oldest][1] <= HORIZON:
                break
            del self._sent[oldest]
        return self._seq

    def answered(self, seq: int, sender: str) -> tuple[str, float] | None:
        """(target, send time) of the request a reply from `sender` answers; None if none
        (unknown, already answered, or from another address)."""
        entry = self._sent.get(seq)
        if entry is None or entry[0] != sender:
            return None
        del self._sent[seq]
        return entry

    def __len__(self) -> int:
        return len(self._sent)
