"""How one stream's media reaches its players: one shared buffer per flush for those who keep up.

Media messages are chunked once per distinct message-stream id (`rtmp.shared_media`: the
protocol's bytes, which each player's session sends by reference) and collected in a batch.
Every flush interval the batch is joined once and the same buffer is written to every
player that keeps up ("live": nothing queued, its transport taking data): one write per
player per flush and no per-player work per message. A player that cannot take the batch
(its transport full, control answers waiting) is served message by message through its
outbox (`Outbox`: bounded in time, skipping to the next keyframe) until it has caught up;
at a flush it then rejoins the live players. Players move only at a flush, after the
batch went out, so every message reaches each player exactly once and in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from mpstream.streaming.relay.outbox import ALWAYS, KEYFRAME, ORDINARY
from mpstream.streaming.rtmp import shared_media

if TYPE_CHECKING:
    from mpstream.streaming.relay.connection import RelayConnection

__all__ = ["ALWAYS", "KEYFRAME", "ORDINARY", "FanOut"]


class FanOut:
    def __init__(self, chunk_size: int, interval_s: float):
        self.chunk_size = chunk_size
        self.interval_s = interval_s
        self.live: dict[RelayConnection, int] = {}  # player -> message stream id
        self.queued: dict[RelayConnection, int] = {}  # served through their outboxes
        self._sids: tuple[int, ...] = ()  # the live players' distinct message stream ids
        self._batch: dict[int, list[bytes]] = {}  # message stream id -> chunked messages since the last flush
        self._kinds: list[int] = []  # each batched message's kind (ORDINARY, KEYFRAME, ALWAYS)
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None

    def add(self, player: RelayConnection, stream_id: int) -> None:
        """A new player starts queued (its join data is in its outbox) and goes live once caught up."""
        self.remove(player)
        self.queued[player] = stream_id

    def remove(self, player: RelayConnection) -> None:
        self.queued.pop(player, None)
        if self.live.pop(player, None) is not None:
            self._sids = tuple(set(self.live.values()))

    def hold_all(self) -> None:
        """Every player goes through its outbox from now on (they wait for a keyframe: a new publisher)."""
        self.flush()
        self.queued.update(self.live)
        self.live.clear()
        self._sids = ()

    def send(self, type_id: int, timestamp: int, body: bytes, kind: int) -> None:
        """One media message for every player."""
        chunk_size = self.chunk_size
        if self._sids:
            batch = self._batch
            for sid in self._sids:
                parts = batch.get(sid)
                if parts is None:
                    parts = batch[sid] = []
                parts.append(shared_media(type_id, sid, timestamp, body, chunk_size))
            self._kinds.append(kind)
        if self.queued:
            shared: dict[int, tuple[bytes, bool]] = {}
            now = time.monotonic()
            over: list[RelayConnection] = []
            for player, sid in self.queued.items():
                entry = shared.get(sid)
                if entry is None:
                    entry = shared[sid] = (shared_media(type_id, sid, timestamp, body, chunk_size), True)
                outbox = player.outbox
                outbox.push_media(entry, kind, now)
                if outbox.size > player.output_budget:
                    over.append(player)
            for player in over:  # after the loop: dropping a player changes self.queued
                player.drop_over_output_budget()
        if self._handle is None and (self._sids or self.queued):
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self.interval_s, self.flush) if self.interval_s else \
                loop.call_soon(self.flush)

    def flush(self) -> None:
        """The batch to every live player in one write each; queued players written and, caught up, made live."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        batch, kinds = self._batch, self._kinds
        self._batch, self._kinds = {}, []
        demoted: list[RelayConnection] = []
        if batch:
            joined = {sid: parts[0] if len(parts) == 1 else b"".join(parts) for sid, parts in batch.items()}
            for player, sid in self.live.items():
                data = joined.get(sid)
                if data is None:
                    continue
                if player.paused or player.outbox.entries or player.closed:
                    demoted.append(player)
                else:
                    player.write_shared(data)
        now = time.monotonic()
        over: list[RelayConnection] = []
        for player in demoted:
            sid = self.live.pop(player)
            self.queued[player] = sid
            outbox = player.outbox
            for part, kind in zip(batch[sid], kinds, strict=True):
                outbox.push_media((part, True), kind, now)
            if outbox.size > player.output_budget:
                over.append(player)
        if demoted:
            self._sids = tuple(set(self.live.values()))
        promoted = False
        for player in list(self.queued):
            player.flush()
            if not (player.closed or player.paused or player.outbox.entries or player.outbox.waiting_keyframe):
                self.live[player] = self.queued.pop(player)
                promoted = True
        if promoted:
            self._sids = tuple(set(self.live.values()))
        for player in over:
            if not player.closed:
                player.drop_over_output_budget()
