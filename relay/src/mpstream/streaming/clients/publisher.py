"""The publisher: send a source to an RTMP server in real time, reconnecting when the connection breaks.

A thin asyncio adapter around `rtmp.ClientSession`. The stream has one timeline for
the whole run: a tag with timestamp `ts` is due `ts` ms after the start (like
`ffmpeg -re`), whatever connection carries it. After a reconnect the publisher resends
metadata and sequence headers and goes on at the first keyframe that is not yet due,
as a live camera would: what was due while the connection was down is lost. If the
network stalls a live connection, TCP (or MPTCP) holds the backlog and the tags go out
late, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from mpstream.streaming import flv, net
from mpstream.streaming.clients import clock
from mpstream.streaming.rtmp import (
    AUDIO,
    VIDEO,
    ClientSession,
    CommandError,
    ProtocolError,
    PublishStarted,
    Status,
    parse_rtmp_url,
)

log = logging.getLogger("mpstream.publish")

READ_SIZE = 65536
# A tag due this soon after the one just sent goes out with it: one wake-up of the event loop
# instead of two (audio and video frames interleave at 23 and 33 ms). A third fewer wake-ups
# took a third off the publisher's CPU (benchmarks/node_cpu.py); a player's buffer is 50
# times longer than this.
SEND_AHEAD_S = 0.02


class Source(Protocol):
    def metadata(self) -> dict: ...

    def header_tags(self) -> list[flv.Tag]: ...

    def tags(self): ...


@dataclass
class PublishOptions:
    url: str
    mptcp: str = "auto"
    duration_s: float | None = None  # None: until the source ends (forever for loops and synthetic)
    reconnect: bool = True
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    max_attempts: int = 0  # consecutive failed connection attempts before giving up; 0: no limit
    connect_timeout_s: float = 10.0
    chunk_size: int = 4096
    length_size: int = 4  # AVC NAL length prefix of the source (for the clock SEI)


@dataclass
class PublishReport:
    url: str
    start_ms: int = 0
    connections: int = 0
    reconnects: int = 0
    tags_sent: int = 0
    tags_skipped: int = 0  # due while no connection was up
    bytes_sent: int = 0  # media payload
    error: str | None = None
    outages: list[dict] = field(default_factory=list)  # {at_s, duration_s, reason}

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class PublishError(Exception):
    """The publisher cannot (or can no longer) publish; the message is one line for the user."""


class ConnectionLost(Exception):
    pass


class Publisher:
    """`clock_start` (time.time(), time.monotonic()) shares one timeline among publishers of one source
    to several servers (redundant origins): the same tag goes out at the same moment with the same
    announced start everywhere."""

    def __init__(self, source: Source, options: PublishOptions, clock_start: tuple[float, float] | None = None):
        self.source = source
        self.options = options
        self._clock_start = clock_start
        self.url = parse_rtmp_url(options.url)
        self.report = PublishReport(options.url)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """End the run after the current tag (signal handlers call this)."""
        self._stop.set()

    async def run(self) -> PublishReport:
        opts = self.options
        start_wall, self._start_mono = self._clock_start or (time.time(), time.monotonic())
        self.report.start_ms = int(start_wall * 1000)
        deadline = None if opts.duration_s is None else self._start_mono + opts.duration_s
        tags = iter(self.source.tags())
        backoff = opts.backoff_initial_s
        failures = 0
        down_since: float | None = None
        down_reason = ""
        while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                reader, writer, session, sid = await self._connect()
            except (OSError, PublishError, ProtocolError, TimeoutError) as exc:
                failures += 1
                reason = str(exc) or type(exc).__name__
                if not opts.reconnect or (opts.max_attempts and failures >= opts.max_attempts):
                    self.report.error = reason
                    raise PublishError(reason) from exc
                down_since = down_since or time.monotonic()
                down_reason = down_reason or reason
                log.warning("publish: %s: %s; retrying in %.1f s", self.url.hostport, reason, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, opts.backoff_max_s)
                continue
            if down_since is not None:
                self._note_outage(down_since, down_reason)
                log.warning("publish: reconnected to %s after %.1f s", self.url.hostport,
                            time.monotonic() - down_since)
                down_since, down_reason = None, ""
            failures = 0
            self.report.connections += 1
            self.report.reconnects = self.report.connections - 1
            connected_at = time.monotonic()
            try:
                await self._stream(reader, writer, session, sid, tags, deadline)
                await self._finish(writer, session, sid)
                return self.report
            except (ConnectionLost, OSError, ProtocolError) as exc:
                writer.close()
                reason = str(exc) or type(exc).__name__
                if not opts.reconnect:
                    self.report.error = f"connection lost: {reason}"
                    raise PublishError(self.report.error) from exc
                down_since, down_reason = time.monotonic(), reason
                if time.monotonic() - connected_at > 10:
                    backoff = opts.backoff_initial_s  # it had been working: start over
                log.warning("publish: connection lost to %s (%s); reconnecting in %.1f s", self.url.hostport, reason,
                            backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, opts.backoff_max_s)
        if down_since is not None:
            self._note_outage(down_since, down_reason)  # stopped while the server was away
        return self.report

    def _note_outage(self, since: float, reason: str) -> None:
        self.report.outages.append({"at_s": round(since - self._start_mono, 3),
                                    "duration_s": round(time.monotonic() - since, 3), "reason": reason})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ClientSession, int]:
        opts = self.options
        reader, writer = await net.open_connection(opts.url, opts.mptcp, opts.connect_timeout_s)
        session = ClientSession(self.url.app, self.url.tc_url, auto="publish", stream=self.url.stream,
                                chunk_size=opts.chunk_size)
        try:
            sid = await asyncio.wait_for(self._until_published(reader, writer, session), opts.connect_timeout_s)
        except BaseException:
            writer.close()
            raise
        info = net.transport_info(writer)
        log.info("publish: publishing to %s (%s, %s)", opts.url,
                 f"MPTCP, {info['subflows']} subflows" if info["mptcp"] else "TCP", info["local"])
        return reader, writer, session, sid

    async def _until_published(self, reader, writer, session: ClientSession) -> int:
        writer.write(session.data_to_send())
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise PublishError(f"{self.url.hostport} closed the connection before publishing started")
            events = session.receive_data(data)
            writer.write(session.data_to_send())
            for event in events:
                if isinstance(event, PublishStarted):
                    return event.stream_id
                if isinstance(event, CommandError):
                    raise PublishError(f"{self.url.hostport} refused {event.command or 'a command'}: "
                                       f"{_describe(event.info)}")
                if isinstance(event, Status) and event.level == "error":
                    raise PublishError(f"{self.url.hostport} refused to publish: {event.code} {event.description}")

    async def _stream(self, reader, writer, session: ClientSession, sid: int, tags, deadline) -> None:
        """Send tags on time until the source, the duration or the run ends; raises ConnectionLost."""
        lost = asyncio.get_running_loop().create_future()
        reading = asyncio.create_task(self._read_server(reader, writer, session, lost))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            headers_sent = False
            resync = self.report.connections > 1  # skip to the first keyframe not yet due
            has_video = any(h.type == flv.TAG_VIDEO for h in self.source.header_tags())
            while not self._stop.is_set():
                tag = next(tags, None)
                if tag is None:
                    return
                if resync:
                    if tag.timestamp < self._now_ms() or (has_video and not _starts_gop(tag)):
                        self.report.tags_skipped += 1
                        continue
                    resync = False
                delay = self._start_mono + tag.timestamp / 1000 - time.monotonic()
                if deadline is not None and self._start_mono + tag.timestamp / 1000 >= deadline:
                    return
                if delay > SEND_AHEAD_S:
                    done, _ = await asyncio.wait({lost, stopping}, timeout=delay,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if lost in done:
                        raise ConnectionLost(lost.result())
                    if self._stop.is_set():
                        return
                if not headers_sent:
                    # Metadata and decoder configuration first, stamped like the first tag so
                    # that timestamps never run backwards.
                    session.send_metadata(sid, clock.announce(self.source.metadata(), self.report.start_ms))
                    for header in self.source.header_tags():
                        session.send_media(_type_id(header), sid, tag.timestamp, header.body)
                    headers_sent = True
                body = tag.body
                if tag.type == flv.TAG_VIDEO:
                    body = clock.stamp_keyframe(body, self.report.start_ms, self.options.length_size)
                session.send_media(_type_id(tag), sid, tag.timestamp, body)
                writer.write(session.data_to_send())
                if writer.transport.get_write_buffer_size() > 0:
                    # The socket is full (a slow or frozen path): wait, but stay stoppable.
                    draining = asyncio.ensure_future(writer.drain())
                    done, _ = await asyncio.wait({draining, lost, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if draining not in done:
                        draining.cancel()
                        with contextlib.suppress(BaseException):
                            await draining
                        if lost in done:
                            raise ConnectionLost(lost.result())
                        return
                    draining.result()
                self.report.tags_sent += 1
                self.report.bytes_sent += len(body)
        finally:
            for task in (reading, stopping):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _read_server(self, reader, writer, session: ClientSession, lost: asyncio.Future) -> None:
        """Answer pings and acknowledgements; report when the server goes away."""
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    lost.set_result("the server closed the connection")
                    return
                for event in session.receive_data(data):
                    if isinstance(event, Status) and event.level == "error":
                        lost.set_result(f"{event.code} {event.description}".strip())
                        return
                writer.write(session.data_to_send())
        except (OSError, ProtocolError) as exc:
            if not lost.done():
                lost.set_result(str(exc) or type(exc).__name__)

    async def _finish(self, writer: asyncio.StreamWriter, session: ClientSession, sid: int) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            session.unpublish(sid, self.url.stream)
            writer.write(session.data_to_send())
            await asyncio.wait_for(writer.drain(), 2)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)

    def _now_ms(self) -> int:
        return int((time.monotonic() - self._start_mono) * 1000)


def _type_id(tag: flv.Tag) -> int:
    return VIDEO if tag.type == flv.TAG_VIDEO else AUDIO


def _starts_gop(tag: flv.Tag) -> bool:
    return tag.type == flv.TAG_VIDEO and flv.is_keyframe(tag.body)


def _describe(info: object) -> str:
    if isinstance(info, dict):
        return " ".join(str(info.get(k, "")) for k in ("code", "description")).strip() or str(info)
    return str(info)
