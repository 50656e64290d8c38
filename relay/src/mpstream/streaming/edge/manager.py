"""Edge mode in the relay: start a pull on a stream's first player, share it, end it after the last one.

The relay calls `on_player` when a player joins a stream nobody publishes, `tick` from its
housekeeping, `stream_info`/`snapshot` for the stats API and `stop` at the end. A pull is
the stream's publisher (`Stream.start_publishing`), so players of an edge cannot tell it
from a relay with a local publisher: same GOP cache, same fan-out, same status messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mpstream.streaming.edge.pull import PULL_STREAM_ID, OriginPull
from mpstream.streaming.relay.logs import shown

if TYPE_CHECKING:
    from mpstream.streaming.relay.config import RelayConfig
    from mpstream.streaming.relay.stream import Stream

log = logging.getLogger("mpstream.relay.edge")


EndPublish = Callable[[OriginPull, int, str], None]


class EdgePulls:
    """`streams` is the relay's registry (read, never changed here); `end_publish(pull, stream_id, why)`
    is what the relay does when a publisher leaves (players told, an idle stream dropped)."""

    def __init__(self, config: RelayConfig, streams: dict[tuple[str, str], Stream], end_publish: EndPublish):
        self.config = config
        self.streams = streams
        self.end_publish = end_publish
        self.pulls: dict[tuple[str, str], OriginPull] = {}
        self.started = 0
        self.ended = 0

    def on_player(self, stream: Stream) -> None:
        """A player joined `stream`: pull it if nobody publishes it here and its app has origins."""
        if stream.publisher is not None or stream.ident in self.pulls:
            return
        origins = self.config.origins_for(stream.app)
        if not origins:
            return
        pull = OriginPull(self.config, stream, origins)
        self.pulls[stream.ident] = pull
        self.started += 1
        stream.start_publishing(pull, PULL_STREAM_ID)  # type: ignore[arg-type]
        log.info("pull #%d %s: pulling for its first player from %s", pull.id, shown(stream.key), ", ".join(origins))
        pull.start()

    def tick(self, now: float) -> None:
        """End pulls whose stream has had no players for `pull_linger_s`, forget replaced ones, and pull
        streams whose viewers lost their local publisher."""
        linger = self.config.pull_linger_s
        for ident, pull in list(self.pulls.items()):
            stream = pull.stream
            if stream.publisher is not pull:  # a local publisher took the stream over (on_busy = replace)
                del self.pulls[ident]
                pull.cancel()
                continue
            if stream.players:
                pull.idle_since = None
            elif pull.idle_since is None:
                pull.idle_since = now
            elif now - pull.idle_since >= linger:
                self._end(pull, f"no players for {linger:g} s")
        for stream in list(self.streams.values()):
            if stream.publisher is None and stream.players:
                self.on_player(stream)

    def _end(self, pull: OriginPull, why: str) -> None:
        self.pulls.pop(pull.stream.ident, None)
        self.ended += 1
        pull.drop(why)
        # What the relay does for a publisher that leaves: players told, the stream dropped if idle.
        self.end_publish(pull, PULL_STREAM_ID, why)

    async def stop(self) -> None:
        pulls = list(self.pulls.values())
        for pull in pulls:
            self._end(pull, "relay stopping")
        for pull in pulls:
            await pull.wait()

    def stream_info(self, stream: Stream) -> dict | None:
        pull = self.pulls.get(stream.ident)
        return pull.info() if pull is not None and stream.publisher is pull else None

    def snapshot(self) -> dict:
        return {
            "origins": list(self.config.origins),
            "pulls": len(self.pulls),
            "pulls_started": self.started,
            "pulls_ended": self.ended,
            "switches": sum(len(p.splicer.splices) for p in self.pulls.values()),
        }
