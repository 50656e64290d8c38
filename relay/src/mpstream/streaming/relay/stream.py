"""One live stream: its publisher, its players, and what a late joiner needs (GOP cache).

What the publisher sends goes to the players through `FanOut` (one shared buffer per flush
for the players that keep up).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mpstream.streaming import flv
from mpstream.streaming.relay.fanout import FanOut
from mpstream.streaming.relay.outbox import ALWAYS, ENTRY_OVERHEAD, KEYFRAME, ORDINARY
from mpstream.streaming.rtmp import amf0, shared_media
from mpstream.streaming.rtmp import messages as m

if TYPE_CHECKING:
    from mpstream.streaming.relay.connection import RelayConnection


class Stream:
    def __init__(self, app: str, name: str, chunk_size: int, gop_cache: bool, max_gop_bytes: int,
                 flush_interval_s: float = 0.0):
        self.app = app
        self.name = name
        self.chunk_size = chunk_size
        self.gop_cache = gop_cache
        self.max_gop_bytes = max_gop_bytes
        self.publisher: RelayConnection | None = None
        self.publisher_stream_id = 0
        self.players: dict[RelayConnection, int] = {}  # connection -> its message stream id
        self.fan_out = FanOut(chunk_size, flush_interval_s)
        self.metadata: bytes | None = None  # AMF0 body: "onMetaData", {...}
        self.video_header: bytes | None = None
        self.audio_header: bytes | None = None
        self.gop: list[tuple[int, int, bytes]] = []  # (type, timestamp, body) from the latest keyframe
        self._gop_bytes = 0
        self.created = time.time()
        self.published_at: float | None = None
        self.publish_count = 0
        self.bytes_in = 0
        self.messages_in = 0
        self.video_frames = 0
        self.keyframes = 0
        self.last_timestamp: int | None = None  # as sent to players
        self._offset = 0
        self._rebase = False

    @property
    def ident(self) -> tuple[str, str]:
        """What tells streams apart: app and name as a pair (a joined string would let them collide)."""
        return (self.app, self.name)

    @property
    def key(self) -> str:
        """For people (logs, stats): app/name."""
        return f"{self.app}/{self.name}"

    @property
    def held_bytes(self) -> int:
        """What the stream keeps for late joiners (GOP cache, metadata, sequence headers)."""
        held = self._gop_bytes
        for kept in (self.metadata, self.video_header, self.audio_header):
            if kept is not None:
                held += len(kept)
        return held

    @property
    def has_video(self) -> bool:
        return self.video_header is not None or self.video_frames > 0

    @property
    def idle(self) -> bool:
        return self.publisher is None and not self.players

    # ------------------------------------------------------------ publisher side

    def start_publishing(self, connection: RelayConnection, stream_id: int) -> None:
        self.publisher = connection
        self.publisher_stream_id = stream_id
        self.published_at = time.time()
        self.publish_count += 1
        self._clear_cache()
        # A returning publisher starts its clock again; players keep a monotonic timeline.
        self._rebase = self.last_timestamp is not None
        self.fan_out.hold_all()  # every player waits for the new publisher's first keyframe
        for player, sid in self.players.items():
            player.outbox.waiting_keyframe = True
            player.session.stream_begin(sid)
            player.session.send_status(sid, "NetStream.Play.PublishNotify", f"{self.name} is now published.",
                                       details=self.name)
            player.send_control()

    def stop_publishing(self) -> None:
        self.publisher = None
        self._clear_cache()
        self.fan_out.flush()  # the last media before the end-of-stream notice
        for player, sid in self.players.items():
            player.session.stream_eof(sid)
            player.session.send_status(sid, "NetStream.Play.UnpublishNotify", f"{self.name} is now unpublished.",
                                       details=self.name)
            player.send_control()

    def _clear_cache(self) -> None:
        self.metadata = self.video_header = self.audio_header = None
        self.gop = []
        self._gop_bytes = 0

    def on_data(self, values: list, body: bytes, timestamp: int) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
            body = amf0.encode(*values)
        if values and values[0] == "onMetaData":
            self.metadata = body
        self._fan_out(m.DATA_AMF0, self._timeline(timestamp), body, ALWAYS)

    def on_media(self, type_id: int, timestamp: int, body: bytes) -> None:
        self.bytes_in += len(body)
        self.messages_in += 1
        ts = self._timeline(timestamp)
        if type_id == m.VIDEO:
            if flv.is_video_sequence_header(body):
                self.video_header = body
                kind = ALWAYS
            else:
                self.video_frames += 1
                starts = flv.is_keyframe(body)
                kind = KEYFRAME if starts else ORDINARY
                if starts:
                    self.keyframes += 1
                    if self.gop_cache:
                        self.gop = []
                        self._gop_bytes = 0
                if self.gop_cache and (starts or self.gop):
                    self._cache(type_id, ts, body)
        else:
            kind = ORDINARY if self.has_video else KEYFRAME  # audio-only: every frame is a start
            if flv.is_audio_sequence_header(body):
                self.audio_header = body
                kind = ALWAYS
            elif self.gop:
                self._cache(type_id, ts, body)
        self._fan_out(type_id, ts, body, kind)

    def _cache(self, type_id: int, ts: int, body: bytes) -> None:
        self.gop.append((type_id, ts, body))
        self._gop_bytes += len(body) + ENTRY_OVERHEAD  # tiny frames must not make a cheap huge list
        if self._gop_bytes > self.max_gop_bytes:  # keyframes too rare to cache: late joiners wait
            self.gop = []
            self._gop_bytes = 0

    def _timeline(self, timestamp: int) -> int:
        if self._rebase:
            self._rebase = False
            self._offset = (self.last_timestamp + 1 - timestamp) & 0xFFFFFFFF  # type: ignore[operator]
        ts = (timestamp + self._offset) & 0xFFFFFFFF
        self.last_timestamp = ts
        return ts

    def _fan_out(self, type_id: int, ts: int, body: bytes, kind: int) -> None:
        if self.players:
            self.fan_out.send(type_id, ts, body, kind)

    # ------------------------------------------------------------ player side

    def add_player(self, connection: RelayConnection, stream_id: int) -> None:
        self.players[connection] = stream_id
        self.fan_out.add(connection, stream_id)
        outbox = connection.outbox
        outbox.waiting_keyframe = True  # until the cached keyframe below, or the next live one
        if self.publisher is None:
            return
        if not self.has_video:
            outbox.waiting_keyframe = False
        # What a decoder needs first, stamped with the time of the first cached frame.
        start = self.gop[0][1] if self.gop else (self.last_timestamp or 0)
        now = time.monotonic()
        join: list[tuple[int, int, bytes, int]] = []
        if self.metadata is not None:
            join.append((m.DATA_AMF0, start, self.metadata, ALWAYS))
        if self.video_header is not None:
            join.append((m.VIDEO, start, self.video_header, ALWAYS))
        if self.audio_header is not None:
            join.append((m.AUDIO, start, self.audio_header, ALWAYS))
        for index, (type_id, ts, body) in enumerate(self.gop):
            join.append((type_id, ts, body, KEYFRAME if index == 0 else ORDINARY))
        for type_id, ts, body, kind in join:
            outbox.push_media((shared_media(type_id, stream_id, ts, body, self.chunk_size), True), kind, now)
        connection.flush()  # a joiner should not wait for the next merged write

    def remove_player(self, connection: RelayConnection) -> None:
        self.players.pop(connection, None)
        self.fan_out.remove(connection)
