"""One pulled stream across origins: what its players get when the edge changes origin.

Pure (no sockets, no clock of its own: callers pass `now`). The edge feeds every message
of the origin it pulls from; the `Splicer` answers what to hand on to the local stream:

- from the first origin everything passes as it comes, timestamps untouched;
- after `switch()`, nothing until the new origin's first keyframe (a relay sends its GOP
  cache to a new player at once, so it comes in milliseconds). There the splice is made,
  one of two ways:
  - **aligned**: the keyframe is one the edge has already handed on (same bytes, same
    timestamp: both origins are fed by one publisher, e.g. `mpstream publish URL_A URL_B`).
    The new origin's messages take the old one's timeline, and those players already have
    (up to the last timestamp handed on, per kind) are skipped: nothing is repeated,
    nothing is missing, the latency stays as it was;
  - **continued**: the keyframe is newer than anything handed on, by no more than the time
    since the last message (one publisher feeds both, and the old origin had gone silent):
    it keeps its place on the timeline, and players skip what they missed instead of
    getting it late;
  - **rebased** (any other origin): the keyframe is stamped one frame interval after the
    last timestamp handed on, and the new origin's later messages keep that offset: one
    continuous timeline whatever clock each origin keeps; what players saw of the new
    origin's current GOP comes again (up to one GOP), and their delay grows by as much;
- the new origin's sequence headers (AVC/AAC configuration) and metadata, which come
  before its keyframe, are handed on only where they differ from what players have;
- timestamps never go back: per kind, and after a rebased splice nothing below the splice
  point (audio a few milliseconds older than the keyframe it follows).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass

from mpstream.streaming import flv
from mpstream.streaming.rtmp.messages import AUDIO, DATA_AMF0, VIDEO

DEFAULT_INTERVAL_MS = 40  # 25 fps, until the stream shows its own frame interval
INTERVAL_SAMPLES = 32
MAX_INTERVAL_MS = 1000  # a larger step is a gap, not a frame interval
KEYFRAMES_REMEMBERED = 8
# A keyframe this much further ahead than the time since the last message handed on is not on
# the same timeline (the origins' clocks differ): rebased instead of continued.
CONTINUE_TOLERANCE_MS = 250  # recent keyframes handed on, to recognise them from another origin
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


@dataclass
class Splice:
    """A change of origin as players saw it."""

    mode: str  # "aligned", "continued" or "rebased" (see the module's doc)
    requested_at: float  # the caller's clock at switch()
    spliced_at: float  # ... when the new origin's first keyframe came
    timestamp_ms: int  # the spliced keyframe's timestamp as players see it (or would: aligned ones had it)
    source_timestamp_ms: int  # ... and as the new origin sent it
    headers_resent: int  # sequence headers and metadata handed on again because they differ
    dropped: int  # the new origin's messages before its first keyframe
    note: tuple = ()  # the caller's words about the switch, (key, value) pairs
    skipped: int = 0  # aligned: the new origin's messages that players already had
    resumed_at: float | None = None  # the first message handed on from the new origin
    gap_ms: float | None = None  # from the last message handed on from the old origin to that one

    def as_dict(self) -> dict:
        return {"mode": self.mode, "at": round(self.spliced_at, 3),
                "detect_to_splice_ms": round((self.spliced_at - self.requested_at) * 1000, 1),
                "gap_ms": None if self.gap_ms is None else round(self.gap_ms, 1), "timestamp_ms": self.timestamp_ms,
                "source_timestamp_ms": self.source_timestamp_ms, "headers_resent": self.headers_resent,
                "dropped_before_keyframe": self.dropped, "skipped_as_delivered": self.skipped, **dict(self.note)}


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


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
        self._keyframes: OrderedDict[tuple[int, bytes], int] = OrderedDict()  # (source ts, digest) -> ts out
        self._catching_up: set[int] = set()  # aligned: kinds whose messages players may already have
        self._resume_pending = False
        self._gap_from: float | None = None  # the last delivery from the old origin, for the splice gap
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
        self._catching_up = set()
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
        raw = timestamp & MASK
        timestamp = self._unwrap(timestamp)
        if type_id == VIDEO and flv.is_video_sequence_header(body):
            return self._header("video", Out(VIDEO, timestamp, body), now)
        if type_id == AUDIO and flv.is_audio_sequence_header(body):
            return self._header("audio", Out(AUDIO, timestamp, body), now)
        if type_id == VIDEO:
            self._has_video = True
        self._learn_interval(type_id, timestamp)
        starts = flv.is_keyframe(body) if type_id == VIDEO else not self._has_video
        out: list[Out] = []
        key = (raw, _digest(body)) if starts and type_id == VIDEO else None
        if self.waiting:
            if not starts:
                self._dropped += 1
                return out
            out = self._splice(timestamp, key, now)
        delivered = self._deliver(Out(type_id, timestamp, body), now)
        if delivered is not None:
            out.append(delivered)
            if key is not None:
                self._remember(key, self._last_of_kind[VIDEO])  # (unwrapped, as players got it)
        return out

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
        delivered = self._deliver(message, now)
        return [delivered] if delivered is not None else []

    # ------------------------------------------------------------ inside

    def _header(self, kind: str, message: Out, now: float) -> list[Out]:
        if self.waiting:
            self._pending[kind] = message  # the newest of each kind, for the splice
            return []
        self._delivered[kind] = message.body
        delivered = self._deliver(message, now, catching_up=False)
        return [delivered] if delivered is not None else []

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

    def _remember(self, key: tuple[int, bytes], out_ts: int) -> None:
        self._keyframes[key] = out_ts
        self._keyframes.move_to_end(key)
        while len(self._keyframes) > KEYFRAMES_REMEMBERED:
            self._keyframes.popitem(last=False)

    def _splice(self, source_ts: int, key: tuple[int, bytes] | None, now: float) -> list[Out]:
        assert self.last_out is not None
        known = self._keyframes.get(key) if key is not None else None
        ahead = source_ts + self.offset  # the keyframe on the old origin's timeline
        elapsed = (now - self.last_delivery_at) * 1000 if self.last_delivery_at is not None else 0.0
        if known is not None:  # players have this very keyframe: go on from where they are
            mode, spliced_ts = "aligned", known
            self._catching_up = {AUDIO, VIDEO}
        elif self.last_out < ahead <= self.last_out + elapsed + CONTINUE_TOLERANCE_MS:
            # Newer than anything handed on, by no more than the time that passed: the same timeline
            # after a silence. Players skip what they missed instead of getting it late.
            mode, spliced_ts = "continued", ahead
        else:
            mode, spliced_ts = "rebased", self.last_out + self.interval_ms()
            self._floor = spliced_ts
        self.offset = spliced_ts - source_ts
        self.waiting = False
        self._gap_from = self.last_delivery_at
        out: list[Out] = []
        for kind in ("metadata", "video", "audio"):  # a decoder's order: description, then configuration
            message = self._pending.get(kind)
            if message is not None and message.body != self._delivered.get(kind):
                self._delivered[kind] = message.body
                stamped = Out(message.type_id, max(source_ts, message.timestamp), message.body, message.values)
                delivered = self._deliver(stamped, now, catching_up=False)
                if delivered is not None:
                    out.append(delivered)
        self.splices.append(Splice(mode, self._requested_at, now, spliced_ts & MASK, source_ts & MASK, len(out),
                                   self._dropped, self._note))
        self._resume_pending = True
        self._pending = {}
        return out

    def _deliver(self, message: Out, now: float, catching_up: bool = True) -> Out | None:
        type_id = message.type_id
        ts = message.timestamp + self.offset
        if catching_up and type_id in self._catching_up:
            if ts <= self._last_of_kind.get(type_id, ts - 1):
                self.splices[-1].skipped += 1  # players had it from the old origin
                return None
            self._catching_up.discard(type_id)
        ts = max(ts, self._floor, self._last_of_kind.get(type_id, 0))
        self._last_of_kind[type_id] = ts
        self.last_out = ts if self.last_out is None else max(self.last_out, ts)
        if self._resume_pending and type_id != DATA_AMF0:
            self._resume_pending = False
            splice = self.splices[-1]
            splice.resumed_at = now
            if self._gap_from is not None:
                splice.gap_ms = (now - self._gap_from) * 1000
        self.last_delivery_at = now
        return Out(type_id, ts & MASK, message.body, message.values)
