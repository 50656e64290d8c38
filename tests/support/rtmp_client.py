"""A small asyncio RTMP peer for tests and benchmarks, built on mpstream.streaming.rtmp.ClientSession.

    peer = await RtmpPeer.open("rtmp://[::1]:1935/live/cam", "play")
    await peer.wait_for(PlayStarted)
    media = await peer.wait_for(MediaMessage, timeout=2)
    await peer.close()

A background task reads from the socket, feeds the session and keeps every event in
`peer.events` (or only counts bytes after `count_only()`, for cheap load generation).
"""

from __future__ import annotations

import asyncio
import time

from mpstream.streaming import net
from mpstream.streaming.rtmp import ClientSession, Event, parse_rtmp_url


class RtmpPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: ClientSession):
        self.reader = reader
        self.writer = writer
        self.session = session
        self.events: list[tuple[float, Event]] = []
        self.bytes_in = 0
        self.closed = asyncio.Event()
        self.error: BaseException | None = None
        self._counting = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, mode: str | None, mptcp: str = "off", **session_args) -> RtmpPeer:
        target = parse_rtmp_url(url)
        reader, writer = await net.open_connection(url, mptcp=mptcp)
        session = ClientSession(target.app, target.tc_url, auto=mode, stream=target.stream, **session_args)
        peer = cls(reader, writer, session)
        peer.flush()
        return peer

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def count_only(self) -> None:
        """Stop parsing: from now on only count received bytes."""
        self._counting = True

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                self.bytes_in += len(data)
                if self._counting:
                    continue
                now = time.monotonic()
                for event in self.session.receive_data(data):
                    self.events.append((now, event))
                self.flush()
                self._changed.set()
        except (ConnectionError, OSError) as exc:
            self.error = exc
        except Exception as exc:  # a protocol error is a test finding, keep it
            self.error = exc
        finally:
            self.closed.set()
            self._changed.set()

    def of(self, kind: type) -> list:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type, timeout: float = 5.0, count: int = 1, predicate=None):
        """The `count`-th event of `kind` (matching `predicate`), waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.of(kind) if predicate is None or predicate(e)]
            if len(found) >= count:
                return found[count - 1]
            if self.closed.is_set():
                raise ConnectionError(f"closed before {kind.__name__} ({self.error!r})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind.__name__} within {timeout} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def drain(self) -> None:
        self.flush()
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
