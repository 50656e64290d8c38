"""One pulled stream across origins: what its players get when the edge changes origin.

Pure (no sockets, no clock of its own: callers pass `now`). The edge feeds every message
of the origin it pulls from; the `Splicer` answers what to hand on to the local stream:

- from the first origin everything passes as it comes, timestamps untouched;
- after `switch()`, nothing until the new origin's first keyframe (a relay sends its GOP
  cache to a new player at once, so it comes in milliseconds). That keyframe is stamped
  one frame interval after the last timestamp delivered, and the new origin's later
  messages keep that offset: players see one continuous timeline, whatever clock each
  origin keeps;
- the new origin's sequence headers (AVC/AAC configuration) and metadata, which come
  before its keyframe, are handed on only where they differ from what players have;
- timestamps never go back: per kind, and after a splice nothing below the splice point
  (audio a few milliseconds older than the keyframe it follows).

The splice is at a keyframe, so the new origin's cached GOP starts over: what players saw
of that GOP from the old origin comes again (up to one GOP), and nothing is missing.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from mpstream import flv
from mpstream.rtmp.messages import AUDIO, DATA_AMF0, VIDEO

DEFAULT_INTERVAL_MS = 40  # 25 fps, until the stream shows its own frame interval
INTERVAL_SAMPLES = 32
MAX_INTERVAL_MS = 1000  # a larger step is a gap, not a frame interval
MASK = 0xFFFFFFFF
# The origin's own player-side data message (flags for Flash); the edge sends its own.
_ORIGIN_ONLY_DATA = ("|RtmpSampleAccess",)


@dataclass(frozen=True)
class Out:
    """One message for the local stream: AUDIO/VIDEO with an FLV tag body, or DATA_AMF0 with its values."""

    type_id: int
    timestamp: int
    body: bytes
    values: tuple = ()


@dataclass(frozen=True)
class Splice:
    """A change of origin as players saw it."""

    at: float  # the caller's clock at the splice (the new origin's first keyframe handed on)
    requested_at: float  # ... and at switch()
    gap_ms: float  # from the last message handed on from the old origin to the splice
    timestamp_ms: int  # the spliced keyframe's timestamp as players see it
    source_timestamp_ms: int  # ... and as the new origin sent it
    headers_resent: int  # sequence headers and metadata handed on again because they differ
    dropped: int  # the new origin's messages before its first keyframe
    note: tuple = ()  # the caller's words about the switch (key, value) pairs

    def as_dict(self) -> dict:
        return {"at": round(self.at, 3), "detect_to_splice_ms": round((self.at - self.requested_at) * 1000, 1),
                "gap_ms": round(self.gap_ms, 1), "timestamp_ms": self.timestamp_ms,
                "source_timestamp_ms": self.source_timestamp_ms, "headers_resent": self.headers_resent,
                "dropped_before_keyframe": self.dropped, **dict(self.note)}


class Splicer:
    def __init__(self) -> None:
        self.offset = 0  # added to the current origin's timestamps
        self.waiting = False  # after switch(): until the new origin's first keyframe
        self.last_out: int | None = None  # the newest timestamp handed on (unwrapped)
        self.last_delivery_at: float | None = None
        self.splices: list[Splice] = []
        self._last_of_kind: dict[int, int] = {}
        self._floor = 0
        self._delivered: dict[str, bytes] = {}  # "video"/"audio" header, "metadata": as players have them
        self._pending: dict[str, Out] = {}  # the new origin's, until its keyframe
        self._has_video = False
        self._deltas: deque[int] = deque(maxlen=INTERVAL_SAMPLES)
        self._previous_src: dict[int, int] = {}  # newest timestamp per kind from this origin
        self._src_reference: int | None = None  # this origin's latest timestamp, unwrapped
        self._requested_at = 0.0
        self._note: tuple = ()
        self._dropped = 0

    # ------------------------------------------------------------ origins

    def switch(self, now: float, **note: object) -> None:
        """A new origin connection starts: splice at its first keyframe (if anything was handed on before)."""
        if not self.waiting:  # (a failed attempt in between keeps the first request's time)
            self._requested_at = now
        self.waiting = self.last_out is not None
        self._pending = {}
        self._previous_src = {}
        self._src_reference = None
        self._note = tuple(note.items())
        self._dropped = 0

    def interval_ms(self) -> int:
        """The stream's frame interval: the median step between frames of the kind that paces it."""
        return round(statistics.median(self._deltas)) if self._deltas else DEFAULT_INTERVAL_MS

    # ------------------------------------------------------------ messages

    def media(self, type_id: int, timestamp: int, body: bytes, now: float) -> list[Out]:
        """An AUDIO or VIDEO message from the current origin; what to hand on (maybe nothing)."""
        timestamp = self._unwrap(timestamp)
        if type_id == VIDEO and flv.is_video_sequence_header(body):
            return self._header("video", Out(VIDEO, timestamp, body), now)
        if type_id == AUDIO and flv.is_audio_sequence_header(body):
            return self._header("audio", Out(AUDIO, timestamp, body), now)
        if type_id == VIDEO:
            self._has_video = True
        self._learn_interval(type_id, timestamp)
        out: list[Out] = []
        if self.waiting:
            starts = flv.is_keyframe(body) if type_id == VIDEO else not self._has_video
            if not starts:
                self._dropped += 1
                return out
            out = self._splice(timestamp, now)
        return out + [self._deliver(Out(type_id, timestamp, body), now)]

    def data(self, values: list, body: bytes, timestamp: int, now: float) -> list[Out]:
        """A data message (onMetaData and the like) from the current origin."""
        name = values[0] if values and isinstance(values[0], str) else ""
        timestamp = self._unwrap(timestamp)
        if name in _ORIGIN_ONLY_DATA:
            return []
        message = Out(DATA_AMF0, timestamp, body, tuple(values))
        if name == "onMetaData" or (name == "@setDataFrame" and "onMetaData" in values[1:2]):
            return self._header("metadata", message, now)
        if self.waiting:
            self._dropped += 1
            return []
        return [self._deliver(message, now)]

    # ------------------------------------------------------------ inside

    def _header(self, kind: str, message: Out, now: float) -> list[Out]:
        if self.waiting:
            self._pending[kind] = message  # the newest of each kind, for the splice
            return []
        self._delivered[kind] = message.body
        return [self._deliver(message, now)]

    def _unwrap(self, timestamp: int) -> int:
        """RTMP timestamps are 32 bits and wrap after 49 days: count on from the origin's latest one."""
        reference = self._src_reference
        if reference is not None:
            timestamp += reference - (reference & MASK)
            if timestamp - reference > 1 << 31:
                timestamp -= 1 << 32
            elif reference - timestamp > 1 << 31:
                timestamp += 1 << 32
        self._src_reference = timestamp
        return timestamp

    def _learn_interval(self, type_id: int, timestamp: int) -> None:
        previous = self._previous_src.get(type_id)
        self._previous_src[type_id] = timestamp
        paces = type_id == (VIDEO if self._has_video else AUDIO)  # video paces a stream that has it
        if paces and previous is not None and 0 < timestamp - previous <= MAX_INTERVAL_MS:
            self._deltas.append(timestamp - previous)

    def _splice(self, source_ts: int, now: float) -> list[Out]:
        assert self.last_out is not None
        base = self.last_out + self.interval_ms()
        self.offset = base - source_ts
        self._floor = base
        self.waiting = False
        out: list[Out] = []
        for kind in ("metadata", "video", "audio"):  # a decoder's order: description, then configuration
            message = self._pending.get(kind)
            if message is not None and message.body != self._delivered.get(kind):
                self._delivered[kind] = message.body
                out.append(self._deliver(Out(message.type_id, source_ts, message.body, message.values), now))
        gap = (now - self.last_delivery_at) * 1000 if self.last_delivery_at is not None else 0.0
        self.splices.append(Splice(now, self._requested_at, gap, base & MASK, source_ts, len(out), self._dropped,
                                   self._note))
        self._pending = {}
        return out

    def _deliver(self, message: Out, now: float) -> Out:
        ts = max(message.timestamp + self.offset, self._floor, self._last_of_kind.get(message.type_id, 0))
        self._last_of_kind[message.type_id] = ts
        self.last_out = ts if self.last_out is None else max(self.last_out, ts)
        self.last_delivery_at = now
        return Out(message.type_id, ts & MASK, message.body, message.values)
