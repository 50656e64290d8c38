"""The player: play an RTMP stream for a while and record every audio/video message as it arrives.

A thin asyncio adapter around `rtmp.ClientSession`; the judgement of what a viewer saw
is the pure `playback` model, applied to the recording afterwards (and every progress
interval on the way). Times are seconds since the play command, on the monotonic clock;
the wall clock is kept once, to place the publisher's announced start on that axis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mpstream.streaming import flv, net
from mpstream.streaming.clients import clock, h264
from mpstream.streaming.clients.playback import AUDIO, VIDEO
from mpstream.streaming.rtmp import (
    ClientSession,
    CommandError,
    DataMessage,
    MediaMessage,
    PlayStarted,
    ProtocolError,
    Status,
    StreamEOF,
    parse_rtmp_url,
)

log = logging.getLogger("mpstream.play")

READ_SIZE = 65536
# After a reconnect, timestamps this far behind the newest already received are repeats
# (a relay's GOP cache); further back, the publisher has started a new timeline.
DUPLICATE_WINDOW_MS = 30_000


class PlayError(Exception):
    """The stream could not be played; the message is one line for the user."""


@dataclass(frozen=True)
class Received:
    """One audio/video message as it arrived."""

    arrival_s: float
    timestamp_ms: int
    kind: str
    size: int
    keyframe: bool
    sequence_header: bool = False


@dataclass
class Recording:
    url: str
    started_wall: float = 0.0  # time.time() at the play command
    ended_s: float = 0.0
    connected_s: float | None = None
    play_started_s: float | None = None
    frames: list[Received] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    start_ms: int | None = None  # the publisher's announced start
    start_source: str | None = None  # "metadata" or "sei"
    unpublished_s: float | None = None  # the publisher left and no media came after
    end_reason: str = ""
    error: str | None = None
    connection: dict = field(default_factory=dict)
    statuses: list[dict] = field(default_factory=list)
    reconnects: int = 0
    disconnects: list[dict] = field(default_factory=list)  # {at_s, reason}
    duplicates: int = 0  # frames a relay sent again after a reconnect (dropped)

    @property
    def media_end_s(self) -> float:
        """Where the viewer's experience ends: the publisher leaving is an end, not a stall."""
        return self.unpublished_s if self.unpublished_s is not None else self.ended_s

    @property
    def complete(self) -> bool:
        """Ran to the end of the requested duration."""
        return self.end_reason == "duration"


@dataclass
class PlayOptions:
    url: str
    duration_s: float = 100.0
    buffer_ms: int = 1000
    mptcp: str = "auto"
    connect_timeout_s: float = 10.0
    progress_s: float = 10.0
    reconnect: bool = False
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 5.0


class Player:
    def __init__(self, options: PlayOptions, progress: Callable[[Recording, float], None] | None = None):
        self.options = options
        self.url = parse_rtmp_url(options.url)
        self.recording = Recording(options.url)
        self.progress = progress
        self._stop = asyncio.Event()
        self._length_size = h264.LENGTH_SIZE
        self._newest: dict[str, int] = {}  # newest timestamp received, per kind
        self._seen_before: dict[str, int] = {}  # newest timestamps before the last reconnect

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> Recording:
        """Play until the duration ends, the server closes, or `stop()`; raises PlayError if nothing played.

        With `reconnect`, a lost connection (or a server not there yet) is retried with
        backoff until the duration ends; the time without a connection is an outage the
        playback model sees as a stall.
        """
        rec = self.recording
        rec.started_wall = time.time()
        self._t0 = time.monotonic()
        self._next_progress = self.options.progress_s
        stopping = asyncio.create_task(self._stop.wait())
        backoff = self.options.backoff_initial_s
        try:
            while True:
                attempt_at = self._now()
                connected = await self._play_once(stopping)
                if rec.end_reason in ("duration", "interrupted", "refused") or not self.options.reconnect:
                    break
                remaining = self.options.duration_s - self._now()
                if remaining <= 0:
                    rec.end_reason = "duration"
                    break
                if connected and self._now() - attempt_at > 10:
                    backoff = self.options.backoff_initial_s  # it had been working: start over
                rec.disconnects.append({"at_s": round(self._now(), 3), "reason": rec.error or rec.end_reason})
                log.warning("play: %s; reconnecting in %.1f s", rec.error or rec.end_reason, backoff)
                done, _ = await asyncio.wait({stopping}, timeout=min(backoff, remaining))
                if done:
                    rec.end_reason = "interrupted"
                    break
                backoff = min(backoff * 2, self.options.backoff_max_s)
        finally:
            stopping.cancel()
            rec.ended_s = self._now()
        if rec.error and not rec.frames and rec.end_reason != "duration":
            raise PlayError(rec.error)
        return rec

    async def _play_once(self, stopping: asyncio.Task) -> bool:
        """One connection, played until it ends; False if it could not be made."""
        rec = self.recording
        opts = self.options
        timeout = max(0.1, min(opts.connect_timeout_s, opts.duration_s - self._now()))
        try:
            reader, writer = await net.open_connection(opts.url, opts.mptcp, timeout)
        except OSError as exc:
            rec.error = str(exc)
            rec.end_reason = "connect failed"
            return False
        if rec.connected_s is None:
            rec.connected_s = self._now()
            rec.connection = net.transport_info(writer)
        else:
            rec.reconnects += 1
            rec.error = None
            self._seen_before = dict(self._newest)  # what the relay may send again (its GOP cache)
            log.warning("play: reconnected to %s", self.url.hostport)
        session = ClientSession(self.url.app, self.url.tc_url, auto="play", stream=self.url.stream,
                                buffer_ms=opts.buffer_ms)
        writer.write(session.data_to_send())
        try:
            await self._receive(reader, writer, session, stopping)
        finally:
            with contextlib.suppress(Exception):
                rec.connection = {**rec.connection, **_live_fields(net.transport_info(writer))}
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)
        return True

    def _now(self) -> float:
        return time.monotonic() - self._t0

    async def _receive(self, reader, writer, session: ClientSession, stopping: asyncio.Task) -> None:
        reading: list[asyncio.Future] = []  # the read in flight, cancelled however the loop ends
        try:
            await self._loop(reader, writer, session, stopping, reading)
        finally:
            for task in reading:
                task.cancel()

    async def _loop(self, reader, writer, session: ClientSession, stopping: asyncio.Task,
                    in_flight: list[asyncio.Future]) -> None:
        rec = self.recording
        opts = self.options
        reading: asyncio.Future | None = None
        while True:
            remaining = opts.duration_s - self._now()
            if remaining <= 0:
                rec.end_reason = "duration"
                return
            if self.progress and self._now() >= self._next_progress:
                self.progress(rec, self._now())
                self._next_progress += opts.progress_s
            wait = min(remaining, max(0.01, self._next_progress - self._now()))
            if reading is None:
                reading = asyncio.ensure_future(reader.read(READ_SIZE))
                in_flight[:] = [reading]
            done, _ = await asyncio.wait({reading, stopping}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                rec.end_reason = "interrupted"
                return
            if reading not in done:
                continue  # progress time or the end of the duration; the read stays pending
            finished, reading = reading, None
            try:
                data = finished.result()
            except OSError as exc:
                rec.end_reason = "connection lost"
                rec.error = f"connection to {self.url.hostport} lost: {exc}"
                return
            arrival = self._now()
            if not data:
                rec.end_reason = "connection closed"
                rec.error = f"{self.url.hostport} closed the connection" + (
                    "" if rec.play_started_s is not None else
                    f" before playing started (does it serve app {self.url.app!r}?)")
                return
            try:
                events = session.receive_data(data)
            except ProtocolError as exc:
                rec.end_reason = "protocol error"
                rec.error = f"{self.url.hostport} sent something that is not RTMP: {exc}"
                return
            out = session.data_to_send()
            if out:
                writer.write(out)
            for event in events:
                if self._handle(event, arrival):
                    return

    def _handle(self, event, arrival: float) -> bool:
        """Take one session event; True ends the run."""
        rec = self.recording
        if isinstance(event, MediaMessage):
            self._record(event, arrival)
        elif isinstance(event, DataMessage):
            values = event.values
            if any(v == "onMetaData" for v in values[:2]):
                meta = next((v for v in values if isinstance(v, dict)), {})
                rec.metadata = _jsonable(meta)
                start = clock.start_from_metadata(values)
                if start is not None:
                    rec.start_ms, rec.start_source = start, "metadata"
        elif isinstance(event, PlayStarted):
            rec.play_started_s = arrival
            log.info("play: playing %s (%s)", self.options.url,
                     f"MPTCP, {rec.connection.get('subflows')} subflows" if rec.connection.get("mptcp") else "TCP")
        elif isinstance(event, Status):
            rec.statuses.append({"at_s": round(arrival, 3), "level": event.level, "code": event.code})
            if event.level == "error":
                rec.end_reason = "refused"
                rec.error = f"{self.url.hostport} refused to play {self.url.stream!r}: " \
                            f"{event.code} {event.description}".strip()
                return True
            if event.code in ("NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify"):
                log.info("play: %s", event.code)
            if event.code in ("NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"):
                rec.unpublished_s = rec.unpublished_s or arrival
        elif isinstance(event, CommandError):
            rec.end_reason = "refused"
            info = event.info if isinstance(event.info, dict) else {}
            rec.error = f"{self.url.hostport} refused {event.command or 'a command'}: " \
                        f"{info.get('code', '')} {info.get('description', '')}".strip()
            return True
        elif isinstance(event, StreamEOF):
            log.info("play: the server ended stream %d", event.stream_id)
            rec.unpublished_s = rec.unpublished_s or arrival
        return False

    def _record(self, event: MediaMessage, arrival: float) -> None:
        body = event.body
        rec = self.recording
        if not body:  # relays send empty messages around stream starts; they carry no media
            return
        rec.unpublished_s = None  # media again: the publisher is back (a reconnect is an outage)
        kind = VIDEO if event.is_video else AUDIO
        before = self._seen_before.get(kind)
        if before is not None and before - DUPLICATE_WINDOW_MS < event.timestamp <= before:
            rec.duplicates += 1  # already received on the previous connection
            return
        if event.timestamp > self._newest.get(kind, -1):
            self._newest[kind] = event.timestamp
        if event.is_video:
            header = flv.is_video_sequence_header(body)
            if header and len(body) > 9:
                self._length_size = h264.length_size_of(body[5:])
            key = flv.is_keyframe(body)
            if key and not header and rec.start_source != "metadata":
                start = clock.start_from_keyframe(body, self._length_size)
                if start is not None:
                    rec.start_ms, rec.start_source = start, "sei"
            rec.frames.append(Received(arrival, event.timestamp, VIDEO, len(body), key and not header, header))
        elif event.is_audio:
            header = flv.is_audio_sequence_header(body)
            rec.frames.append(Received(arrival, event.timestamp, AUDIO, len(body), False, header))


def _live_fields(info: dict) -> dict:
    """What may change during the run (MPTCP subflows come and go)."""
    return {"subflows_at_end": info.get("subflows")}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
