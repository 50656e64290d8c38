"""What a viewer sees: a player with a playback buffer, replayed over recorded arrivals.

Pure: `simulate(frames, buffer_ms, end_s)` takes the frames a player received (arrival
time since the play command, stream timestamp) and returns startup delay, stalls and
late/skipped frame counts. The model, stated once so that numbers can be checked by hand:

- The timeline is the video frames (the audio frames when there is no video). Video
  before the first keyframe cannot be decoded and is *skipped*.
- Each frame is shown for one frame interval (the median timestamp step), so the media
  held by the player ends at `newest timestamp + interval`.
- Startup: playback begins when the newest frame is `buffer_ms` ahead of the first one
  (`buffer_ms = 0`: at the first frame). `startup_s` is that moment.
- Playing, the position advances with the wall clock. When it reaches the end of the
  media held, the picture freezes: a *stall* begins. Playback resumes when the newest
  frame is again `buffer_ms` ahead of the position (rebuffering), which with TCP's burst
  after an outage is at once.
  So a 2.0 s pause in arrivals with a 1.0 s buffer is one stall of 1.0 s.
- A frame that arrives after the moment it would have been shown had playback gone on
  is *late* (a 1.0 s stall at 30 fps makes 30 frames late).
- A timestamp jump of more than `DISCONTINUITY_MS` (a publisher that reconnected, a relay
  that restarted the clock) is stitched: the frame continues right after the media held,
  so the outage shows up as lateness rather than as a silent freeze.
- A frame older than the position (it can no longer be shown) is *skipped*.
- A stall still open at `end_s` lasts until `end_s`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

VIDEO = "video"
AUDIO = "audio"

DISCONTINUITY_MS = 1000.0
DEFAULT_INTERVAL_MS = 40.0
_EPSILON_S = 1e-6  # arrivals exactly on time must not count as stalls through rounding
_MIN_INTERVAL_MS = 1.0
_MAX_INTERVAL_MS = 1000.0


@dataclass(frozen=True)
class Frame:
    """One received audio/video message."""

    arrival_s: float  # seconds since the play command
    timestamp_ms: float  # stream timestamp
    kind: str  # VIDEO or AUDIO
    size: int = 0  # body bytes
    keyframe: bool = False
    sent_s: float | None = None  # when the publisher sent it, on the same clock (None: unknown)


@dataclass(frozen=True)
class Stall:
    at_s: float  # when the picture froze, seconds since the play command
    duration_s: float
    open: bool = False  # still frozen when the measurement ended

    def as_dict(self) -> dict:
        return {"at_s": round(self.at_s, 4), "duration_s": round(self.duration_s, 4), "open": self.open}


@dataclass
class Playback:
    buffer_ms: float
    startup_s: float | None = None  # None: playback never started
    stalls: list[Stall] = field(default_factory=list)
    frames_shown: int = 0
    frames_late: int = 0
    frames_skipped: int = 0
    discontinuities: int = 0
    interval_ms: float = DEFAULT_INTERVAL_MS
    timeline: str = VIDEO
    display_latency_s: list[float] = field(default_factory=list)  # per shown frame with sent_s: shown - sent

    @property
    def stall_count(self) -> int:
        return len(self.stalls)

    @property
    def stall_total_s(self) -> float:
        return sum(s.duration_s for s in self.stalls)

    @property
    def stall_max_s(self) -> float:
        return max((s.duration_s for s in self.stalls), default=0.0)


def frame_interval_ms(timestamps: list[float]) -> float:
    """The median positive step between consecutive timestamps (one frame's display time)."""
    steps = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    if not steps:
        return DEFAULT_INTERVAL_MS
    return min(max(statistics.median(steps), _MIN_INTERVAL_MS), _MAX_INTERVAL_MS)


def timeline_frames(frames: list[Frame]) -> tuple[str, list[Frame]]:
    video = [f for f in frames if f.kind == VIDEO]
    if video:
        return VIDEO, video
    return AUDIO, [f for f in frames if f.kind == AUDIO]


def simulate(frames: list[Frame], buffer_ms: float, end_s: float | None = None) -> Playback:
    """Replay `frames` (in arrival order) through a player with a `buffer_ms` buffer."""
    kind, media = timeline_frames(frames)
    interval = frame_interval_ms([f.timestamp_ms for f in media])
    result = Playback(buffer_ms=buffer_ms, interval_ms=interval, timeline=kind)
    player = _Player(buffer_ms, interval, result)
    seen_key = kind != VIDEO
    for frame in media:
        if not seen_key:
            if not frame.keyframe:
                result.frames_skipped += 1
                continue
            seen_key = True
        player.arrive(frame)
    if end_s is None:
        end_s = media[-1].arrival_s if media else 0.0
    player.finish(end_s)
    return result


class _Player:
    """The state of the modelled player; positions are in stream milliseconds."""

    def __init__(self, buffer_ms: float, interval_ms: float, result: Playback):
        self.buffer_ms = buffer_ms
        self.interval = interval_ms
        self.result = result
        self.offset = 0.0  # added to timestamps to stitch discontinuities
        self.first_ts: float | None = None
        self.newest_ts = float("-inf")
        self.started = False
        self.playing = False
        self.position = 0.0  # the next instant of media to show
        self.clock_s = 0.0  # wall time at which `position` was computed
        self.stall_start: float | None = None
        self.pending: list[tuple[float, float | None]] = []  # (timestamp, sent_s) not yet shown

    @property
    def media_end(self) -> float:
        return self.newest_ts + self.interval

    def arrive(self, frame: Frame) -> None:
        now = frame.arrival_s
        self.advance(now)
        ts = frame.timestamp_ms + self.offset
        if self.first_ts is not None and not (
                self.newest_ts - DISCONTINUITY_MS <= ts <= self.media_end + DISCONTINUITY_MS):
            self.offset += self.media_end - ts
            ts = self.media_end
            self.result.discontinuities += 1
        if self.started and ts < self.position - self.interval / 2:
            self.result.frames_skipped += 1
            return
        if self.started and not self.playing and self.stall_start is not None:
            # Late: it arrives after the moment it would have been shown without the stall.
            if now > self.stall_start + (ts - self.position) / 1000.0:
                self.result.frames_late += 1
        if self.first_ts is None:
            self.first_ts = ts
            self.position = ts
        self.newest_ts = max(self.newest_ts, ts)
        self.pending.append((ts, frame.sent_s))
        if not self.started:
            if self.newest_ts - self.first_ts >= self.buffer_ms:
                self.started = True
                self.result.startup_s = now
                self._resume(now)
        elif not self.playing and self.newest_ts - self.position >= self.buffer_ms:
            self._resume(now)

    def _resume(self, now: float) -> None:
        if self.stall_start is not None:
            self.result.stalls.append(Stall(self.stall_start, now - self.stall_start))
            self.stall_start = None
        self.playing = True
        self.clock_s = now

    def advance(self, now: float) -> None:
        """Play from `clock_s` to `now`; freeze if the media held runs out on the way."""
        if not self.playing:
            return
        dry_at = self.clock_s + (self.media_end - self.position) / 1000.0
        if dry_at < now - _EPSILON_S:
            self._show_until(self.media_end, dry_at)
            self.position = self.media_end
            self.playing = False
            self.stall_start = dry_at
        else:
            self.position += (now - self.clock_s) * 1000.0
            self._show_until(self.position, now)
        self.clock_s = now

    def _show_until(self, position: float, now: float) -> None:
        """Count the frames whose time has come (`position` reached at wall time `now`)."""
        keep = []
        for ts, sent in self.pending:
            if ts < position:
                self.result.frames_shown += 1
                if sent is not None:
                    shown_at = now - (position - ts) / 1000.0
                    self.result.display_latency_s.append(shown_at - sent)
            else:
                keep.append((ts, sent))
        self.pending = keep

    def finish(self, end_s: float) -> None:
        self.advance(max(end_s, self.clock_s))
        if self.stall_start is not None:
            self.result.stalls.append(Stall(self.stall_start, max(0.0, end_s - self.stall_start), open=True))
            self.stall_start = None
