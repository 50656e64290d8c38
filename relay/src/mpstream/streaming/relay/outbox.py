"""What waits to be written to one connection, bounded in time.

Entries are complete chunked messages; media entries may be dropped, control entries
(commands, status, user control) never are. When the oldest waiting media is older
than `max_lag` the player has fallen behind: its waiting media is dropped and it skips
to the next keyframe. `behind_since` says since when it has not caught up, which is what
the relay uses to disconnect a player that stays behind. `size` is what the entries
hold (with a per-entry overhead), whatever they are: the relay's output budget.
"""

from __future__ import annotations

from collections.abc import Callable

# An entry: (bytes, droppable). Fan-out builds one tuple per message and appends the same
# object to every player's outbox.
Entry = tuple[bytes, bool]

# What a media message means to a player that skips to the next keyframe.
ORDINARY = 0  # dropped while waiting
KEYFRAME = 1  # ends the wait
ALWAYS = 2  # metadata and sequence headers: decoders need them, they do not end the wait

# What one queued entry costs besides its bytes (list slot, tuple; the bytes object header).
ENTRY_OVERHEAD = 64


class Outbox:
    __slots__ = ("_clock", "behind_since", "control_size", "dropped", "entries", "max_lag", "oldest", "size",
                 "skips", "waiting_keyframe")

    def __init__(self, max_lag: float, clock: Callable[[], float]):
        self.max_lag = max_lag
        self._clock = clock
        self.entries: list[Entry] = []
        self.oldest: float | None = None  # when the oldest waiting entry was queued
        self.waiting_keyframe = False
        self.behind_since: float | None = None
        self.skips = 0
        self.dropped = 0
        self.size = 0  # all waiting bytes
        self.control_size = 0  # of which control: this connection's own (media is shared by all players)

    def push_control(self, data: bytes) -> None:
        if not self.entries:
            self.oldest = self._clock()
        self.entries.append((data, False))
        self.size += len(data) + ENTRY_OVERHEAD
        self.control_size += len(data) + ENTRY_OVERHEAD

    def push_media(self, entry: Entry, kind: int, now: float) -> bool:
        """Queue a media entry (or drop it while waiting for a keyframe). True if the outbox was empty."""
        entries = self.entries
        if entries and now - self.oldest > self.max_lag:  # type: ignore[operator]
            self._skip(now)
            entries = self.entries
        if self.waiting_keyframe:
            if kind == ORDINARY:
                self.dropped += 1
                return False
            if kind == KEYFRAME:
                self.waiting_keyframe = False
        self.size += len(entry[0]) + ENTRY_OVERHEAD
        if not entries:
            self.oldest = now
            entries.append(entry)
            return True
        entries.append(entry)
        return False

    def _skip(self, now: float) -> None:
        kept = [e for e in self.entries if not e[1]]
        self.dropped += len(self.entries) - len(kept)
        self.entries = kept
        self.size = sum(len(e[0]) + ENTRY_OVERHEAD for e in kept)
        self.oldest = now if kept else None
        self.waiting_keyframe = True
        self.skips += 1
        if self.behind_since is None:
            self.behind_since = now

    def take(self) -> bytes:
        """All waiting bytes, as one buffer (one write per flush, whatever the number of messages)."""
        entries = self.entries
        if not entries:
            return b""
        data = entries[0][0] if len(entries) == 1 else b"".join([e[0] for e in entries])
        self.entries = []
        self.oldest = None
        self.size = 0
        self.control_size = 0
        return data

    def caught_up(self) -> None:
        """Everything was handed to the kernel: the player is no longer behind."""
        if not self.waiting_keyframe:
            self.behind_since = None

    def __len__(self) -> int:
        return len(self.entries)
