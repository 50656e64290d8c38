"""The asyncio adapter: one `ServerSession` per accepted socket, bytes in and out, nothing more.

Decisions (who may publish, where media goes) belong to `Relay`; this module only
moves bytes between the transport and the session and keeps per-connection counters.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from typing import TYPE_CHECKING

from mpstream import net
from mpstream.relay.outbox import Outbox
from mpstream.rtmp import ProtocolError, ServerSession

if TYPE_CHECKING:
    from mpstream.relay.server import Relay
    from mpstream.relay.stream import Stream

log = logging.getLogger("mpstream.relay")

_ids = itertools.count(1)
WRITE_HIGH_WATER = 64 * 1024


class RelayConnection(asyncio.Protocol):
    def __init__(self, relay: Relay):
        self.relay = relay
        self.id = next(_ids)
        self.transport: asyncio.Transport | None = None
        self.session = ServerSession(relay.config.limits, chunk_size=relay.config.chunk_size)
        self.outbox = Outbox(relay.config.max_player_lag_ms / 1000, time.monotonic)
        self.peer = "?"
        self.local = "?"
        self.mptcp = False
        self.opened = time.monotonic()
        self.opened_wall = time.time()
        self.last_received = self.opened
        self.bytes_in = 0
        self.bytes_out = 0
        self.paused = False
        self.closed = False
        self.publishing: dict[int, Stream] = {}  # message stream id -> stream
        self.playing: dict[int, Stream] = {}
        self.app = ""
        self.flash_ver = ""
        self._dirty = False
        self._ended: str | None = None

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = net.format_sockaddr(transport.get_extra_info("peername"))
        self.local = net.format_sockaddr(transport.get_extra_info("sockname"))
        if not self.relay.admit(self):
            transport.abort()
            self.closed = True
            return
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self.mptcp = net.mptcp_subflows(sock) is not None
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        log.info("#%d connected from %s to %s over %s", self.id, self.peer, self.local,
                 "MPTCP" if self.mptcp else "TCP")

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_received = time.monotonic()
        self.bytes_in += len(data)
        try:
            events = self.session.receive_data(data)
            for event in events:
                self.relay.on_event(self, event)
        except ProtocolError as exc:
            self.drop(f"protocol error: {exc}")
            return
        except Exception:  # a bug must cost one connection, not the relay
            log.exception("#%d from %s: internal error, closing the connection", self.id, self.peer)
            self.drop("internal error")
            return
        self.send_control()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None or self._ended is None and not self.relay.is_registered(self):
            return  # refused at admission: already logged
        self.closed = True
        self._forget()
        log.info("#%d from %s closed after %.1f s (%s; in %d B, out %d B%s)", self.id, self.peer,
                 time.monotonic() - self.opened, self._ended, self.bytes_in, self.bytes_out,
                 f"; {exc}" if exc else "")

    def _forget(self) -> None:
        if self._ended is None:
            self._ended = self.role  # what it was, before the relay unhooks it
            self.relay.forget(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.flush()

    # ------------------------------------------------------------ output

    def send_control(self) -> None:
        """Queue what the session has to say and write it now (with any media before it)."""
        data = self.session.data_to_send()
        if data:
            self.outbox.push_control(data)
            self.flush()

    def mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            self.relay.schedule_flush(self)

    def flush(self) -> None:
        self._dirty = False
        if self.closed or self.paused or self.transport is None:
            return
        data = self.outbox.take()
        if data:
            self.bytes_out += len(data)
            self.transport.write(data)
        if not self.paused:
            self.outbox.caught_up()

    def drop(self, reason: str) -> None:
        """Close at once (unsent data is discarded), with a log line saying why."""
        if self.closed:
            return
        log.warning("#%d from %s dropped: %s", self.id, self.peer, reason)
        self.closed = True
        self._forget()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close after what is queued has been written."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._forget()
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------ introspection

    @property
    def role(self) -> str:
        if self.publishing:
            return "publisher"
        if self.playing:
            return "player"
        return "connected" if self.session.connected else "handshake"

    def info(self) -> dict:
        transport = net.transport_info(self.transport) if self.transport and not self.closed else {}
        streams = [s.key for s in self.publishing.values()] + [s.key for s in self.playing.values()]
        return {
            "id": self.id,
            "peer": self.peer,
            "local": self.local,
            "role": self.role,
            "app": self.app,
            "streams": streams,
            "flash_ver": self.flash_ver,
            "connected_at": self.opened_wall,
            "uptime_s": round(time.monotonic() - self.opened, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "mptcp": bool(transport.get("mptcp", self.mptcp)),
            "subflows": transport.get("subflows", 1),
            "subflow_paths": [f"{local} -> {remote}" for local, remote in net.mptcp_subflow_addresses(
                self.transport)] if transport.get("mptcp") else [],
            "queued_messages": len(self.outbox),
            "skips": self.outbox.skips,
            "dropped_messages": self.outbox.dropped,
        }
