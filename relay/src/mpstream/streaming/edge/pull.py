"""The asyncio side of a pull: one stream played from the origins in turn, fed into the local `Stream`.

An `OriginPull` is the local stream's publisher as far as the relay is concerned (it has
the few attributes the relay asks a publishing connection for: `id`, `peer`,
`last_received`, `publishing`, `drop`). It plays the stream from the current origin with
a `ClientSession` over `net` (MPTCP when the kernel offers it; getaddrinfo order, IPv6 and
IPv4), hands every message through the `Splicer`, and leaves an origin that

- closes or resets the connection, or breaks the protocol or its limits (garbage, a
  message over `max_message_size`, more unfinished input than `max_buffered_bytes`),
- refuses (an error status, a failed connect),
- does not start playing within `origin_connect_timeout_s`,
- sends no media for `origin_silence_s` (its publisher is gone, it stalls mid-message,
  or it sends anything but media), or says its publisher left,

for the next one. Players notice nothing but the splice (see `splice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mpstream.streaming import net
from mpstream.streaming.edge.origins import OriginRotation, pull_url
from mpstream.streaming.edge.splice import Out, Splicer
from mpstream.streaming.relay.connection import next_connection_id
from mpstream.streaming.relay.logs import shown
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
from mpstream.streaming.rtmp.messages import DATA_AMF0

if TYPE_CHECKING:
    from mpstream.streaming.relay.config import RelayConfig
    from mpstream.streaming.relay.stream import Stream

log = logging.getLogger("mpstream.relay.edge")

READ_SIZE = 65536
PULL_STREAM_ID = 1  # the message stream id the local Stream knows its publisher by
FAILURES_KEPT = 20  # in the stats: the latest failed origin connections
ROUNDS_LOGGED = 30  # of the rounds in a row in which every origin failed, one is logged at WARNING
_PUBLISHER_GONE = ("NetStream.Play.UnpublishNotify", "NetStream.Play.Stop")


Opener = Callable[[str, float], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class OriginPull:
    """`open_origin(url, timeout)` gives the streams to an origin (default: `net`, MPTCP per the config)."""

    def __init__(self, config: RelayConfig, stream: Stream, origins: tuple[str, ...],
                 open_origin: Opener | None = None):
        self.config = config
        self.stream = stream
        # Numbered with the relay's connections: the relay logs a publisher as "#id from peer".
        self.id = next_connection_id()
        self.peer = "-"  # the origin connected to, as host:port
        self.publishing: dict[int, Stream] = {PULL_STREAM_ID: stream}
        self.last_received = time.monotonic()
        self.rotation = OriginRotation(origins, config.origin_retry_s)
        self.splicer = Splicer()
        self.origin: str | None = None  # the URL being pulled from (None between attempts)
        self.delivering: str | None = None  # the URL whose media players got last
        self.state = "starting"
        self.transport = ""  # of the connection pulled from: TCP or MPTCP with its subflows at play start
        self.started = time.time()
        self._mono_started = time.monotonic()  # the splicer's clock; stats convert to Unix time
        self.connections = 0
        self.messages_in = 0
        self.bytes_in = 0
        self.failures: list[dict] = []
        self.connections_failed = 0
        self.rounds_failed = 0  # rounds in a row in which no origin delivered media
        self.idle_since: float | None = None  # no players since (monotonic), for the linger
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._leaving: str = "first player"  # why the origin that delivered last was left
        self._open = open_origin or self._open_with_net

    # ------------------------------------------------------------ what the relay calls

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pull #{self.id} {self.stream.key}")

    def drop(self, reason: str) -> None:
        """Stop pulling (the relay's word for ending a publisher)."""
        log.info("pull #%d %s: stopped (%s)", self.id, shown(self.stream.key), shown(reason))
        self.cancel()

    def cancel(self) -> None:
        self._stopping = True  # (checked by the loops too: a cancellation can be lost, see _receive)
        if self._task is not None:
            self._task.cancel()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def info(self) -> dict:
        splices = [s.as_dict() for s in self.splicer.splices]
        for splice in splices:
            splice["at"] = round(self.started + splice["at"] - self._mono_started, 3)  # as Unix time
        return {
            "id": self.id,
            "state": self.state,
            "origin": self.origin,
            "delivering_origin": self.delivering,
            "transport": self.transport,
            "origins": list(self.rotation.origins),
            "switches": len(splices),
            "switch_log": splices[-20:],
            "connections": self.connections,
            "connections_failed": self.connections_failed,
            "rounds_failed": self.rounds_failed,  # in a row, every origin without media
            "failures": self.failures[-FAILURES_KEPT:],
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "frame_interval_ms": self.splicer.interval_ms(),
        }

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        stream = self.stream
        while not self._stopping:
            url = pull_url(self.rotation.current, stream.app, stream.name)
            before = self.messages_in
            self.splicer.switch(time.monotonic(), origin=url, previous_origin=self.delivering,
                                reason=self._leaving)
            self.origin = url
            try:
                reason = await self._pull_from(url)
            except (OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            except ProtocolError as exc:
                reason = f"protocol error: {exc}"
            except Exception as exc:  # whatever an origin sends must not end the pull: the next one is tried
                log.exception("pull #%d %s: %s failed", self.id, shown(stream.key), url)
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self.origin = None
            if self._stopping:
                return
            delivered = self.messages_in > before
            if delivered:
                self._leaving = reason
            self.failures.append({"at": round(time.time(), 3), "origin": url, "reason": reason,
                                  "delivered_messages": self.messages_in - before})
            del self.failures[:-FAILURES_KEPT]
            self.connections_failed += 1
            pause = self.rotation.failed(delivered)
            # While no origin has the stream (its publisher not there yet), one round in ROUNDS_LOGGED is told.
            level = logging.WARNING if delivered or self.rounds_failed % ROUNDS_LOGGED == 0 else logging.DEBUG
            log.log(level, "pull #%d %s: left %s (%s); next: %s%s", self.id, shown(stream.key), url,
                    shown(reason, 200), self.rotation.current,
                    f" in {pause:g} s (every origin failed, {self.rounds_failed + 1} rounds)" if pause else "")
            self.state = "waiting"
            if delivered:
                self.rounds_failed = 0
            if pause:
                self.rounds_failed += 1
                await asyncio.sleep(pause)

    async def _pull_from(self, url: str) -> str:
        """Play from one origin until it fails; returns why it ended."""
        config = self.config
        self.state = "connecting"
        target = parse_rtmp_url(url)
        reader, writer = await self._open(url, config.origin_connect_timeout_s)
        self.connections += 1
        self.peer = target.hostport
        try:
            session = ClientSession(target.app, target.tc_url, auto="play", stream=target.stream,
                                    chunk_size=config.chunk_size, limits=config.limits,
                                    flash_ver="FMLE/3.0 (compatible; mpstream edge)")
            writer.write(session.data_to_send())
            return await self._receive(reader, writer, session, url)
        finally:
            writer.close()

    async def _open_with_net(self, url: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await net.connect_socket(url, self.config.mptcp, timeout)
        return await asyncio.open_connection(sock=sock, limit=READ_SIZE)

    async def _receive(self, reader, writer, session: ClientSession, url: str) -> str:
        reading: list[asyncio.Future] = []  # the read in flight, cancelled however the loop ends
        try:
            return await self._receive_loop(reader, writer, session, url, reading)
        finally:
            for future in reading:
                future.cancel()

    async def _receive_loop(self, reader, writer, session: ClientSession, url: str,
                            in_flight: list[asyncio.Future]) -> str:
        config = self.config
        opened = time.monotonic()
        playing_since: float | None = None
        last_media: float | None = None
        reading: asyncio.Future | None = None
        while not self._stopping:
            now = time.monotonic()
            if playing_since is None:
                left = config.origin_connect_timeout_s - (now - opened)
                if left <= 0:
                    return f"did not start playing within {config.origin_connect_timeout_s:g} s"
            else:
                left = config.origin_silence_s - (now - (last_media or playing_since))
                if left <= 0:
                    return f"no media for {config.origin_silence_s:g} s"
            # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # comes as the read completes, and the pull would go on after being stopped.
            if reading is None:
                reading = asyncio.ensure_future(reader.read(READ_SIZE))
                in_flight[:] = [reading]
            done, _ = await asyncio.wait({reading}, timeout=left)
            if not done:
                continue  # the checks above say which timer ran out
            finished, reading = reading, None
            data = finished.result()
            if not data:
                return "the origin closed the connection"
            now = time.monotonic()
            self.bytes_in += len(data)
            events = session.receive_data(data)
            out = session.data_to_send()
            if out:
                writer.write(out)
            for event in events:
                if isinstance(event, MediaMessage):
                    self.messages_in += 1
                    last_media = self.last_received = now
                    self._hand_on(self.splicer.media(event.type_id, event.timestamp, event.body, now), url)
                elif isinstance(event, DataMessage):
                    self._hand_on(self.splicer.data(event.values, event.body, event.timestamp, now), url)
                elif isinstance(event, PlayStarted):
                    playing_since = now
                    self.state = "pulling"
                    subflows = net.mptcp_subflows(writer)
                    self.transport = "TCP" if subflows is None else f"MPTCP, {subflows} subflows"
                    log.info("pull #%d %s: playing from %s (%s)", self.id, shown(self.stream.key), url,
                             self.transport)
                elif isinstance(event, Status):
                    if event.level == "error":
                        return f"refused: {event.code} {event.description}".strip()
                    if event.code in _PUBLISHER_GONE:
                        return f"its publisher left ({event.code})"
                elif isinstance(event, CommandError):
                    info = event.info if isinstance(event.info, dict) else {}
                    return f"refused {event.command or 'a command'}: {info.get('code', '')}".strip()
                elif isinstance(event, StreamEOF) and last_media is not None:
                    return "its publisher left (stream EOF)"
        return "stopped"

    def _hand_on(self, messages: list[Out], url: str) -> None:
        stream = self.stream
        if stream.publisher is not self:
            return  # replaced by a local publisher; the task is being cancelled
        if messages and self.delivering != url:
            self.delivering = url
        for message in messages:
            if message.type_id == DATA_AMF0:
                stream.on_data(list(message.values), message.body, message.timestamp)
            else:
                stream.on_media(message.type_id, message.timestamp, message.body)
