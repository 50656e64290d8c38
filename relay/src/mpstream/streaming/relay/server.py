"""The relay: listeners, the stream registry, the decisions on each session event, and housekeeping."""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import socket
import time

from mpstream.streaming import net
from mpstream.streaming.edge.manager import EdgePulls
from mpstream.streaming.relay import access, fdlimit, names
from mpstream.streaming.relay.config import RelayConfig
from mpstream.streaming.relay.connection import RelayConnection
from mpstream.streaming.relay.logs import RateLimit, Tally, shown
from mpstream.streaming.relay.stats import StatsServer
from mpstream.streaming.relay.stream import Stream
from mpstream.streaming.rtmp import (
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    StreamClosed,
    UnknownCommand,
)

log = logging.getLogger("mpstream.relay")

TICK_S = 0.25
RATE_WINDOW_S = 5.0
ACCEPT_LOG_INTERVAL_S = 10.0  # accept failures come in storms: one line per interval says how many
UNKNOWN_COMMANDS_LOGGED = 3  # per connection; the rest are counted
# The kernel's queue of connections not yet accepted, as deep as net.core.somaxconn allows: a burst
# of thousands waits there instead of having SYNs dropped (1 s, then 3 s, of retransmission).
SOMAXCONN = "/proc/sys/net/core/somaxconn"
LISTEN_BACKLOG = 4096  # when somaxconn cannot be read
# Sockets accepted per loop round: each costs an accept and a selector entry (a storm is drained fast),
# and the round ends soon enough for the clients already inside to be served in between.
ACCEPTS_PER_ROUND = 128
ACCEPT_RETRY_S = 0.05  # out of descriptors with nothing to close: accept again this soon (asyncio waits 1 s)
EVICT_AFTER_S = 1.0  # a handshake and connect take milliseconds; one that takes longer may make room
EVICT_SCAN = 64  # connections looked at for one to close (the oldest come first)


class Relay:
    """Publish once, play many. `await start()`, then `await stop()` (or run until cancelled)."""

    def __init__(self, config: RelayConfig):
        self.config = config
        self.connections: set[RelayConnection] = set()
        self.streams: dict[tuple[str, str], Stream] = {}
        self.max_connections = config.max_connections  # lowered at start to fit the open-files limit
        self.open_files_limit = 0
        self._listeners: list[socket.socket] = []
        self.listening: list[str] = []
        self.started = time.time()
        self.counters: collections.Counter[str] = collections.Counter()
        # What closed connections sent, received and skipped: with the open ones, the relay's totals.
        self.closed_totals = {"bytes_out": 0, "bytes_in": 0, "skips": 0}
        self.http = None
        self.edge = EdgePulls(config, self.streams, self._end_publish) if config.origins or any(
            policy.origins for policy in (config.apps or {}).values()) else None  # edge mode (mpstream.streaming.edge)
        self._ticker: asyncio.Task | None = None
        self._rates: dict[object, collections.deque] = {}  # stream/connection -> (time, bytes) samples
        self._log_limit: RateLimit | None = None
        self._storms = Tally(log, ACCEPT_LOG_INTERVAL_S)
        # Admitted connections without an accepted connect, oldest first: at the connection limit
        # the oldest one makes room, so that a storm of idle sockets cannot lock viewers out.
        self._unconnected: dict[RelayConnection, None] = {}
        # Accepted sockets that have not sent anything yet, oldest first, with when they came: no
        # transport or session until they speak, so a storm of idle sockets costs little to take
        # and to close (see _accept). They count against max_connections.
        self._lobby: dict[socket.socket, float] = {}

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.config.log_lines_per_s:
            self._log_limit = RateLimit(self.config.log_lines_per_s, 10 * self.config.log_lines_per_s)
            log.addFilter(self._log_limit)
        self._check_open_files()
        loop = asyncio.get_running_loop()
        backlog = listen_queue_limit()
        for listen in self.config.listen:
            for sock in net.create_listeners(listen, self.config.mptcp, backlog=backlog):
                self._listeners.append(sock)
                loop.add_reader(sock.fileno(), self._accept, sock)
                address = net.format_sockaddr(sock.getsockname())
                self.listening.append(address)
                log.info("listening for RTMP on %s (%s, queue of %d)", address,
                         "MPTCP" if sock.proto == net.IPPROTO_MPTCP else "TCP", backlog)
        if self.config.http:
            self.http = StatsServer(self.snapshot, self.counters)
            await self.http.start(self.config.http)
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        log.info("stopping: %d connections, %d streams", len(self.connections), len(self.streams))
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners = []
        for sock in list(self._lobby):
            self._close_waiting(sock)
        if self._ticker:
            self._ticker.cancel()
        if self.edge:
            await self.edge.stop()
        if self.http:
            await self.http.stop()
        for stream in self.streams.values():
            stream.fan_out.flush()
        for connection in list(self.connections):
            for sid in list(connection.playing):
                connection.session.stream_eof(sid)
            connection.send_control()
            connection.close()
        await asyncio.sleep(0)
        self._storms.flush(force=True)
        if self._log_limit is not None:
            log.removeFilter(self._log_limit)

    def _check_open_files(self) -> None:
        """Every connection is a descriptor: fit max_connections under the (raised) open-files limit."""
        self.open_files_limit = fdlimit.raise_open_files_limit()
        capacity = fdlimit.connection_capacity(self.open_files_limit)
        if self.max_connections > capacity:
            log.warning("max_connections %d lowered to %d: the open-files limit is %d (raise LimitNOFILE)",
                        self.max_connections, capacity, self.open_files_limit)
            self.max_connections = capacity

    # ------------------------------------------------------------ connections

    def _accept(self, listener: socket.socket) -> None:
        """Take a batch of what waits in the kernel's queue. A new socket waits in the lobby, without
        transport or session, until it sends something (then `_promote`): a storm of sockets that never
        speak costs an accept and a close each, so the queue drains fast and a viewer behind them in
        it is not held up (nor its SYN dropped at a full queue, which costs it a second)."""
        now = time.monotonic()
        for _ in range(min(ACCEPTS_PER_ROUND, max(1, self.max_connections // 4))):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("accepting a connection failed: %s", exc)
                    return
                self.counters["accept_failures"] += 1
                self._storms.add("failed accepts", f"{exc}; {len(self.connections)} connections, "
                                                   f"{len(self._lobby)} silent sockets, open-files limit "
                                                   f"{self.open_files_limit}")
                if self._make_room(now):
                    continue
                self._pause_accepting(listener)
                return
            if self._in_use() >= self.max_connections and not self._make_room(now):
                self.counters["refused_connections"] += 1
                self._storms.add("connections refused", f"max_connections {self.max_connections} reached")
                sock.close()
                continue
            sock.setblocking(False)
            self._lobby[sock] = now
            asyncio.get_running_loop().add_reader(sock.fileno(), self._promote, sock)

    def _pause_accepting(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(listener.fileno())

        def resume() -> None:
            if listener in self._listeners:
                loop.add_reader(listener.fileno(), self._accept, listener)
        loop.call_later(ACCEPT_RETRY_S, resume)

    def _promote(self, sock: socket.socket) -> None:
        """The socket has something to say (or has closed): give it a transport and a session."""
        if self._lobby.pop(sock, None) is None:
            return
        asyncio.get_running_loop().remove_reader(sock.fileno())
        asyncio.get_running_loop().create_task(self._open(sock))

    async def _open(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: RelayConnection(self), sock)
        except OSError as exc:  # gone before its transport was made
            log.debug("a connection closed before it was opened: %s", exc)
            sock.close()

    def _close_waiting(self, sock: socket.socket) -> None:
        self._lobby.pop(sock, None)
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()

    def _in_use(self) -> int:
        return len(self.connections) + len(self._lobby)

    def _make_room(self, now: float) -> bool:
        """At the connection limit: close the oldest silent socket, else the oldest connection without
        its connect (see `_eviction_candidate`); False when every place is taken by a connected peer."""
        if self._lobby:
            self._close_waiting(next(iter(self._lobby)))
        else:
            oldest = self._eviction_candidate(now)
            if oldest is None:
                return False
            oldest.drop("closed to make room: connection limit reached before its connect", quiet=True)
        self.counters["evicted_connections"] += 1
        self._storms.add("unfinished handshakes closed for new connections",
                         f"max_connections {self.max_connections} reached")
        return True

    def admit(self, connection: RelayConnection) -> bool:
        if self._in_use() >= self.max_connections and not self._make_room(time.monotonic()):
            self.counters["refused_connections"] += 1
            self._storms.add("connections refused", f"max_connections {self.max_connections} reached")
            return False
        self.connections.add(connection)
        self._unconnected[connection] = None
        self.counters["connections"] += 1
        return True

    def _eviction_candidate(self, now: float) -> RelayConnection | None:
        """The connection to close for a new one: the oldest that has sent nothing yet, else the oldest
        that has not finished its handshake and connect in EVICT_AFTER_S (a client in the middle of its
        handshake, a new viewer, is left alone)."""
        for index, connection in enumerate(self._unconnected):
            if connection.bytes_in == 0 or now - connection.opened > EVICT_AFTER_S:
                return connection
            if index >= EVICT_SCAN:
                break
        return None

    def is_registered(self, connection: RelayConnection) -> bool:
        return connection in self.connections

    def forget(self, connection: RelayConnection) -> None:
        """The connection is gone: end what it published, leave what it played."""
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self._unconnected.pop(connection, None)
        closed = self.closed_totals
        closed["bytes_out"] += connection.bytes_out
        closed["bytes_in"] += connection.bytes_in
        closed["skips"] += connection.outbox.skips
        for sid in list(connection.publishing):
            self._end_publish(connection, sid, "connection closed")
        for sid in list(connection.playing):
            self._end_play(connection, sid)
        self._rates.pop(connection, None)

    # ------------------------------------------------------------ session events

    def on_event(self, connection: RelayConnection, event: object) -> None:
        if isinstance(event, MediaMessage):
            stream = connection.publishing.get(event.stream_id)
            if stream is not None:
                stream.on_media(event.type_id, event.timestamp, event.body)
            else:
                self.counters["stray_media_messages"] += 1
        elif isinstance(event, DataMessage):
            stream = connection.publishing.get(event.stream_id)
            if stream is not None:
                stream.on_data(event.values, event.body, event.timestamp)
        elif isinstance(event, ConnectRequest):
            self._on_connect(connection, event)
        elif isinstance(event, PublishRequest):
            self._on_publish(connection, event)
        elif isinstance(event, PlayRequest):
            self._on_play(connection, event)
        elif isinstance(event, StreamClosed):
            self._on_stream_closed(connection, event)
        elif isinstance(event, UnknownCommand):
            self.counters["unknown_commands"] += 1
            connection.unknown_commands += 1
            if connection.unknown_commands <= UNKNOWN_COMMANDS_LOGGED:
                log.info("#%d from %s: unknown command '%s' answered with _error%s", connection.id, connection.peer,
                         shown(event.command.name, 64), " (further ones from this connection are not logged)"
                         if connection.unknown_commands == UNKNOWN_COMMANDS_LOGGED else "")

    def _on_connect(self, connection: RelayConnection, event: ConnectRequest) -> None:
        flash_ver = event.params.get("flashVer", "")
        connection.flash_ver = flash_ver[:100] if isinstance(flash_ver, str) else ""
        reason = names.app_problem(event.app, self.config.limits.max_name_length) or access.check_connect(
            self.config, event.app)
        if reason:
            self.counters["refused_connects"] += 1
            log.warning("#%d from %s: connect to '%s' refused: %s", connection.id, connection.peer, shown(event.app),
                        shown(reason))
            connection.session.reject_connect(event, reason)
            connection.send_control()
            connection.close()
            return
        connection.session.accept_connect(event)
        connection.app = event.app
        self._unconnected.pop(connection, None)
        log.info("#%d connected from %s to %s over %s: app='%s' tcUrl='%s' flashVer='%s'", connection.id,
                 connection.peer, connection.local, connection.transport_name, shown(event.app), shown(event.tc_url),
                 shown(connection.flash_ver))

    def _stream(self, app: str, name: str) -> Stream:
        key = (app, name)
        stream = self.streams.get(key)
        if stream is None:
            config = self.config
            stream = self.streams[key] = Stream(app, name, config.chunk_size, config.gop_cache,
                                                config.max_gop_bytes, config.flush_interval_ms / 1000)
        return stream

    def _on_publish(self, connection: RelayConnection, event: PublishRequest) -> None:
        app = connection.app
        reason = names.stream_problem(event.name, self.config.limits.max_name_length) or access.check_publish(
            self.config, app, event.name, event.query, connection.peer)
        if reason:
            self.counters["refused_publishes"] += 1
            log.warning("#%d from %s: publish %s/%s refused: %s", connection.id, connection.peer, shown(app),
                        shown(event.name), shown(reason))
            connection.session.reject_publish(event, reason, code="NetStream.Publish.Unauthorized")
            connection.send_control()
            connection.close()
            return
        if event.stream_id in connection.publishing or event.stream_id in connection.playing:
            connection.session.reject_publish(event, "this stream is already in use on this connection")
            return
        stream = self._stream(app, event.name)
        current = stream.publisher
        if current is not None and current is not connection:
            silent = time.monotonic() - current.last_received
            # A live connection keeps its name through a stall (MPTCP failover stalls for seconds);
            # only the policy, or the stream's key after a stall (a reconnecting encoder), takes it.
            owner = access.publish_key_required(self.config, app, event.name) and \
                silent > self.config.stale_publisher_s
            if self.config.on_busy == "refuse" and not owner:
                self.counters["refused_publishes"] += 1
                log.warning("#%d from %s: publish %s refused: #%d from %s is publishing it (silent for %.1f s)",
                            connection.id, connection.peer, shown(stream.key), current.id, current.peer, silent)
                connection.session.reject_publish(event, "the stream is already being published")
                connection.send_control()
                connection.close()
                return
            log.warning("#%d from %s replaces #%d from %s as publisher of %s (%s; silent for %.1f s)", connection.id,
                        connection.peer, current.id, current.peer, shown(stream.key),
                        "on_busy = replace" if self.config.on_busy == "replace" else "it has the publish key",
                        silent)
            self._end_publish(current, stream.publisher_stream_id, "replaced by a new publisher")
            current.drop(f"replaced as publisher of {shown(stream.key)} by #{connection.id}")
        connection.session.accept_publish(event)
        connection.send_control()
        connection.publishing[event.stream_id] = stream
        stream.start_publishing(connection, event.stream_id)
        self.counters["publishes"] += 1
        log.info("#%d from %s publishes %s (%s, %d players waiting)", connection.id, connection.peer,
                 shown(stream.key), shown(event.publish_type), len(stream.players))

    def _on_play(self, connection: RelayConnection, event: PlayRequest) -> None:
        app = connection.app
        reason = names.stream_problem(event.name, self.config.limits.max_name_length) or access.check_play(
            self.config, app, event.name, connection.peer)
        if reason:
            self.counters["refused_plays"] += 1
            log.warning("#%d from %s: play %s/%s refused: %s", connection.id, connection.peer, shown(app),
                        shown(event.name), shown(reason))
            connection.session.reject_play(event, reason, code="NetStream.Play.Failed")
            connection.send_control()
            connection.close()
            return
        if event.stream_id in connection.publishing:
            connection.session.reject_play(event, "this stream is publishing on this connection",
                                           code="NetStream.Play.Failed")
            return
        if event.stream_id in connection.playing:
            self._end_play(connection, event.stream_id)
        stream = self._stream(app, event.name)
        connection.session.accept_play(event)
        connection.send_control()  # the status goes out before the first media
        connection.playing[event.stream_id] = stream
        stream.add_player(connection, event.stream_id)
        if self.edge and stream.publisher is None:
            self.edge.on_player(stream)  # nobody publishes it here: pull it from an origin
        self.counters["plays"] += 1
        log.info("#%d from %s plays %s (%s)", connection.id, connection.peer, shown(stream.key),
                 "live" if stream.publisher else "waiting for a publisher")

    def _on_stream_closed(self, connection: RelayConnection, event: StreamClosed) -> None:
        if event.command == "FCUnpublish":
            for sid, stream in list(connection.publishing.items()):
                if stream.name == event.name:
                    self._end_publish(connection, sid, "FCUnpublish")
            return
        if event.stream_id in connection.publishing:
            self._end_publish(connection, event.stream_id, event.command)
        if event.stream_id in connection.playing:
            self._end_play(connection, event.stream_id)
            log.info("#%d from %s stopped playing (%s)", connection.id, connection.peer, event.command)

    def _end_publish(self, connection: RelayConnection, sid: int | None, why: str) -> None:
        stream = connection.publishing.pop(sid, None) if sid is not None else None
        if stream is None or stream.publisher is not connection:
            return
        stream.stop_publishing()
        log.info("#%d from %s stopped publishing %s (%s; %d messages, %d bytes, %d players)", connection.id,
                 connection.peer, shown(stream.key), why, stream.messages_in, stream.bytes_in, len(stream.players))
        self._drop_if_idle(stream)

    def _end_play(self, connection: RelayConnection, sid: int) -> None:
        stream = connection.playing.pop(sid, None)
        if stream is not None:
            stream.remove_player(connection)
            self._drop_if_idle(stream)

    def _drop_if_idle(self, stream: Stream) -> None:
        if stream.idle and self.streams.get(stream.ident) is stream:
            del self.streams[stream.ident]
            self._rates.pop(stream, None)

    # ------------------------------------------------------------ housekeeping

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._housekeeping(time.monotonic())
            except Exception:
                log.exception("housekeeping failed")

    def _housekeeping(self, now: float) -> None:
        config = self.config
        while self._lobby:  # oldest first: the first one young enough ends the scan
            sock, since = next(iter(self._lobby.items()))
            if now - since <= config.handshake_timeout_s:
                break
            self.counters["handshake_timeouts"] += 1
            self._storms.add(f"dropped: no handshake and connect within {config.handshake_timeout_s:g} s")
            self._close_waiting(sock)
        for connection in list(self.connections):
            if not connection.session.connected:
                if now - connection.opened > config.handshake_timeout_s:
                    # Counted, one line per interval: idle sockets come in storms.
                    self.counters["handshake_timeouts"] += 1
                    self._storms.add(f"dropped: no handshake and connect within {config.handshake_timeout_s:g} s")
                    connection.drop("handshake timeout", quiet=True)
                continue
            quiet = now - connection.last_received
            if not connection.playing and quiet > config.idle_timeout_s:
                self.counters["idle_timeouts"] += 1
                connection.drop(f"nothing received for {quiet:.0f} s")
                continue
            stuck = connection.paused_since
            if stuck is not None and now - stuck > config.disconnect_after_ms / 1000:
                self.counters["slow_players_dropped"] += 1
                connection.drop(f"took nothing we wrote for {now - stuck:.1f} s", reset=True)
                continue
            if connection.output_bytes() > connection.output_budget:
                connection.drop_over_output_budget()
                continue
            lagging = connection.lagging_for(now) if connection.playing else 0.0
            if lagging > config.disconnect_after_ms / 1000:
                self.counters["slow_players_dropped"] += 1
                acks = connection.session.acknowledgements
                connection.drop(f"does not read: {acks.unacknowledged} bytes sent and not acknowledged, more than "
                                f"{config.max_unacknowledged_windows} windows of {acks.window} for {lagging:.1f} s "
                                f"({acks.acks} acknowledgements in all)", reset=True)
                continue
            behind = connection.outbox.behind_since
            if behind is not None and now - behind > config.disconnect_after_ms / 1000:
                self.counters["slow_players_dropped"] += 1
                connection.drop(f"player stayed behind for {now - behind:.1f} s ({connection.outbox.skips} skips "
                                f"to keyframes, {connection.outbox.dropped} messages dropped)", reset=True)
                continue
            self._sample(connection, now, connection.bytes_in + connection.bytes_out)
        for stream in self.streams.values():
            self._sample(stream, now, stream.bytes_in)
        self._enforce_total_budget()
        if self.edge:
            self.edge.tick(now)
        self._storms.flush()

    def _enforce_total_budget(self) -> None:
        """All connections together over max_total_bytes: drop the greediest until under, one line each."""
        held = {connection: connection.held_bytes() for connection in self.connections}
        total = sum(held.values())
        limit = self.config.max_total_bytes
        for connection in sorted(held, key=held.__getitem__, reverse=True):
            if total <= limit:
                break
            self.counters["over_budget_dropped"] += 1
            connection.drop(f"the relay holds {total} bytes, over max_total_bytes {limit}; this connection "
                            f"holds the most ({held[connection]} bytes)")
            total -= held[connection]

    def _sample(self, key: object, now: float, value: int) -> None:
        samples = self._rates.get(key)
        if samples is None:
            samples = self._rates[key] = collections.deque()
        samples.append((now, value))
        while samples and now - samples[0][0] > RATE_WINDOW_S:
            samples.popleft()

    def rate_bps(self, key: object) -> float:
        """Bits per second over the last few seconds."""
        samples = self._rates.get(key)
        if not samples or len(samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        return 8 * (v1 - v0) / (t1 - t0) if t1 > t0 else 0.0

    # ------------------------------------------------------------ stats

    def snapshot(self) -> dict:
        streams = []
        for stream in self.streams.values():
            streams.append({
                "name": stream.key,
                "app": stream.app,
                "stream": stream.name,
                "publishing": stream.publisher is not None,
                "publisher": stream.publisher.id if stream.publisher else None,
                "players": len(stream.players),
                "published_for_s": round(time.time() - stream.published_at, 3)
                if stream.published_at and stream.publisher else 0.0,
                "publish_count": stream.publish_count,
                "bytes_in": stream.bytes_in,
                "messages_in": stream.messages_in,
                "video_frames": stream.video_frames,
                "keyframes": stream.keyframes,
                "bitrate_bps": round(self.rate_bps(stream)),
                "gop_cache_messages": len(stream.gop),
                "pull": self.edge.stream_info(stream) if self.edge else None,  # edge mode: origin, switches
            })
        clients = []
        for connection in self.connections:
            info = connection.info()
            info["bitrate_bps"] = round(self.rate_bps(connection))
            clients.append(info)
        return {
            "server": {
                "version": _version(),
                "uptime_s": round(time.time() - self.started, 3),
                "listen": self.listening,
                "mptcp_mode": self.config.mptcp,
                "mptcp_available": net.mptcp_available(),
                "connections": len(self.connections),
                "silent_sockets": len(self._lobby),  # accepted, nothing received yet
                "counters": dict(self.counters),
                "totals": self.totals(),
            },
            "streams": streams,
            "clients": sorted(clients, key=lambda c: c["id"]),
            "edge": self.edge.snapshot() if self.edge else None,
        }


    def totals(self) -> dict:
        """Bytes sent and received and keyframe skips since start, closed connections included."""
        totals = dict(self.closed_totals)
        for connection in self.connections:
            totals["bytes_out"] += connection.bytes_out
            totals["bytes_in"] += connection.bytes_in
            totals["skips"] += connection.outbox.skips
        return totals


def _version() -> str:
    from mpstream import __version__

    return __version__


def listen_queue_limit() -> int:
    """The deepest listen queue the kernel grants (net.core.somaxconn; a larger backlog is cut to it)."""
    try:
        with open(SOMAXCONN) as handle:
            return max(1, int(handle.read()))
    except (OSError, ValueError):
        return LISTEN_BACKLOG
