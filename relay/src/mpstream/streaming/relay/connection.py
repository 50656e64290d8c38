"""The asyncio adapter: one `ServerSession` per accepted socket, bytes in and out, nothing more.

Decisions (who may publish, where media goes) belong to `Relay`; this module only
moves bytes between the transport and the session, keeps per-connection counters and
enforces the per-connection budgets: messages parsed per second (`MessageBudget`: over
it, reading pauses; held back too long, the peer is dropped), bytes queued for the peer
(`max_output_bytes`) and bytes held in all (`max_connection_bytes`). Every byte written is
counted in the session's `acknowledgements`, against which the relay judges whether a
player reads (RTMP Acknowledgements, see `mpstream.streaming.rtmp.flow`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING

from mpstream.streaming import net
from mpstream.streaming.relay.budget import MessageBudget
from mpstream.streaming.relay.logs import shown
from mpstream.streaming.relay.outbox import Outbox
from mpstream.streaming.rtmp import ProtocolError, ServerSession

if TYPE_CHECKING:
    from mpstream.streaming.relay.server import Relay
    from mpstream.streaming.relay.stream import Stream

log = logging.getLogger("mpstream.relay")

_ids = itertools.count(1)


def next_connection_id() -> int:
    """A number for the relay's logs, shared by its connections and its edge pulls."""
    return next(_ids)


WRITE_HIGH_WATER = 64 * 1024
# How long reading stays paused when a peer has used up its message budget.
THROTTLE_PAUSE_S = 0.05
# A peer not held back for this long starts with a clean record (a burst now and then is fine).
THROTTLE_FORGET_S = 1.0
# A publisher's read this big may have left more in the kernel: it is not followed by a rest (see _pace).
PACED_READ_MAX = 64 * 1024


class RelayConnection(asyncio.Protocol):
    def __init__(self, relay: Relay):
        self.relay = relay
        self.id = next_connection_id()
        self.transport: asyncio.Transport | None = None
        config = relay.config
        self.session = ServerSession(config.limits, chunk_size=config.chunk_size,
                                     window_ack_size=config.ack_window_bytes)
        self.outbox = Outbox(config.max_player_lag_ms / 1000, time.monotonic)
        self.output_budget = config.max_output_bytes
        self.peer = "?"
        self.local = "?"
        self.mptcp = False
        self.opened = time.monotonic()
        self.opened_wall = time.time()
        self.last_received = self.opened
        self.bytes_in = 0
        self.bytes_out = 0
        self.paused = False
        self.paused_since: float | None = None  # since when the peer has not taken what we write
        self.budget = MessageBudget(config.max_messages_per_s, config.message_burst, self.opened)
        self.throttled_since: float | None = None  # since when the message budget holds it back
        self.last_throttled = 0.0
        self.unknown_commands = 0
        self._reading_paused = False
        self.closed = False
        self.publishing: dict[int, Stream] = {}  # message stream id -> stream
        self.playing: dict[int, Stream] = {}
        self.app = ""
        self.flash_ver = ""
        self._quiet = False  # dropped in a storm: counted, not logged one by one
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
        # At INFO only once it says connect (Relay): a storm of bare sockets must not fill the log.
        log.debug("#%d connected from %s to %s over %s", self.id, self.peer, self.local, self.transport_name)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = time.monotonic()
        received = len(data)
        if received:
            self.last_received = now
            self.bytes_in += received
        session = self.session
        try:
            while True:
                before = session.messages_received
                events = session.receive_data(data, self.budget.allowance(now))
                self.budget.spend(session.messages_received - before)
                data = b""
                for event in events:
                    if self.closed:
                        return
                    self.relay.on_event(self, event)
                if self.closed:
                    return
                if not session.stalled:
                    break
                if session.holding():
                    break  # a request still waits for its answer
                if self.budget.allowance(now) == 0:
                    self._throttle(now)
                    break
        except ProtocolError as exc:
            self.drop(f"protocol error: {exc}")
            return
        except Exception:  # a bug must cost one connection, not the relay
            log.exception("#%d from %s: internal error, closing the connection", self.id, self.peer)
            self.drop("internal error")
            return
        self.send_control()
        held = self.held_bytes()
        if held > self.relay.config.max_connection_bytes:
            self.relay.counters["over_budget_dropped"] += 1
            self.drop(f"holds {held} bytes, over max_connection_bytes {self.relay.config.max_connection_bytes}")
            return
        if self.publishing and received:
            self._pace(received)

    def _pace(self, received: int) -> None:
        """A publisher's read goes to the players at once; then its socket rests for a flush interval.

        What it sends meanwhile waits in the kernel and comes in with the next read: the relay wakes
        once per interval for a publisher instead of once per message, and the players get each
        message no later than the flush timer would have sent it (sooner when it comes after a rest).
        A big read may have left more waiting: reading goes on at once.
        """
        for stream in self.publishing.values():
            stream.fan_out.flush()
        interval = self.relay.config.flush_interval_ms / 1000
        if interval and received < PACED_READ_MAX and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(interval, self._resume_reading)

    def _throttle(self, now: float) -> None:
        """Over the message budget: stop reading for a moment; held back too long, drop the peer."""
        if self.throttled_since is None or now - self.last_throttled > THROTTLE_FORGET_S:
            self.throttled_since = now
            self.relay.counters["throttled_connections"] += 1
        self.last_throttled = now
        if now - self.throttled_since > self.relay.config.max_throttled_s:
            self.relay.counters["over_budget_dropped"] += 1
            self.drop(f"over its message budget ({self.relay.config.max_messages_per_s:g} messages/s) "
                      f"for {now - self.throttled_since:.1f} s ({self.session.messages_received} messages)")
            return
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        # Paused at least a moment (each resumption parses a batch, not one message), and short
        # enough that a peer in debt still counts as held back at the next check.
        pause = min(THROTTLE_FORGET_S / 2, max(THROTTLE_PAUSE_S, self.budget.wait_for(1)))
        asyncio.get_running_loop().call_later(pause, self._resume_reading)

    def _resume_reading(self) -> None:
        if self.closed or self.transport is None:
            return
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        self.data_received(b"")  # what waits in the session's buffer

    def held_bytes(self) -> int:
        """Memory this connection alone makes the relay hold: its input, its control answers, what the
        transport buffers for it, its streams' caches. (Queued media is shared by all players of a
        stream and bounded per player by `output_budget` instead.)"""
        held = self.session.buffered + self.outbox.control_size
        if self.transport is not None and not self.closed:
            held += self.transport.get_write_buffer_size()
        for stream in self.publishing.values():
            held += stream.held_bytes
        return held

    def output_bytes(self) -> int:
        """What waits to be written to the peer (our queue and the transport's buffer)."""
        size = self.outbox.size
        if self.transport is not None and not self.closed:
            size += self.transport.get_write_buffer_size()
        return size

    def lagging_for(self, now: float) -> float:
        """Seconds the peer has stayed more than max_unacknowledged_windows behind in its acknowledgements."""
        acks = self.session.acknowledgements
        return acks.lagging_for(now, self.relay.config.max_unacknowledged_windows * acks.window)

    def drop_over_output_budget(self) -> None:
        self.relay.counters["over_budget_dropped"] += 1
        self.drop(f"does not read: {self.output_bytes()} bytes queued for it, over max_output_bytes "
                  f"{self.output_budget}", reset=True)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None or self._ended is None and not self.relay.is_registered(self):
            return  # refused at admission: already logged
        self.closed = True
        self._forget()
        if self._quiet:
            return
        level = logging.INFO if self._ended != "handshake" else logging.DEBUG  # (a bare socket: see above)
        log.log(level, "#%d from %s closed after %.1f s (%s; in %d B, out %d B%s)", self.id, self.peer,
                 time.monotonic() - self.opened, self._ended, self.bytes_in, self.bytes_out,
                 f"; {exc}" if exc else "")

    def _forget(self) -> None:
        if self._ended is None:
            self._ended = self.role  # what it was, before the relay unhooks it
            self.relay.forget(self)

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self.paused = False
        self.paused_since = None
        self.flush()

    # ------------------------------------------------------------ output

    def send_control(self) -> None:
        """Queue what the session has to say and write it now (with any media before it)."""
        data = self.session.data_to_send()
        if data:
            self.outbox.push_control(data)
            if self.outbox.size > self.output_budget:  # answers (pongs, errors) it never reads count too
                self.drop_over_output_budget()
                return
            self.flush()

    def flush(self) -> None:
        if self.closed or self.paused or self.transport is None:
            return
        data = self.outbox.take()
        if data:
            self.session.send_raw(data)
            self._transmit()
        if not self.paused:
            self.outbox.caught_up()

    def write_shared(self, data: bytes) -> None:
        """Media bytes shared with other players, sent as they are (nothing of ours is queued)."""
        self.session.send_raw(data)
        self._transmit()

    def _transmit(self) -> None:
        """What the session has to send, to the transport: every byte we write leaves this way."""
        data = self.session.data_to_send()
        self.bytes_out += len(data)
        self.session.acknowledgements.sent(len(data))
        self.transport.write(data)  # type: ignore[union-attr]

    def drop(self, reason: str, quiet: bool = False, reset: bool = False) -> None:
        """Close at once (unsent data is discarded), with a log line saying why (unless counted elsewhere).

        With `reset`, for a peer that does not read: what the kernel still holds for it is discarded
        too and the peer gets a reset. (A plain close queues the FIN behind data that a closed window
        never lets out: the peer would stay connected, and the kernel would keep its buffer for minutes.)
        """
        if self.closed:
            return
        self._quiet = quiet
        if not quiet:
            log.warning("#%d from %s dropped: %s", self.id, self.peer, shown(reason, 300))
        self.closed = True
        self._forget()
        if self.transport is not None:
            if reset:
                try:
                    self.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                                       struct.pack("ii", 1, 0))
                except (OSError, AttributeError):
                    pass
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
    def transport_name(self) -> str:
        return "MPTCP" if self.mptcp else "TCP"

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
            "queued_bytes": self.outbox.size,
            # Sent and not yet acknowledged by the peer (RTMP Acknowledgements, every ack_window bytes).
            "unacknowledged_bytes": self.session.acknowledgements.unacknowledged,
            "ack_window": self.session.acknowledgements.window,
            "acknowledgements": self.session.acknowledgements.acks,
            "held_bytes": self.held_bytes() if not self.closed else 0,
            "skips": self.outbox.skips,
            "dropped_messages": self.outbox.dropped,
        }
