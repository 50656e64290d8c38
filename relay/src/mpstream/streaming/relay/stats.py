"""The stats API: a tiny read-only HTTP/1.1 server on its own (loopback by default) address.

    GET /            JSON: server, streams, clients (bytes, bitrate, uptime, MPTCP, subflows)
    GET /streams     JSON: streams only        GET /clients   JSON: clients only
    GET /metrics     Prometheus text exposition
    GET /healthz     "ok"

An edge (origins configured) adds per stream "pull" (origin, switches with their times and
splice gaps, failed origin connections) and a top-level "edge" summary.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable

from mpstream.streaming import net

log = logging.getLogger("mpstream.relay.stats")

MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0
MAX_CLIENTS = 32  # at once; a storm of connections must not take the descriptors the relay needs


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(snapshot: dict) -> str:
    """The snapshot as Prometheus text format 0.0.4."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP mpstream_relay_{name} {help_text}")
        lines.append(f"# TYPE mpstream_relay_{name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"mpstream_relay_{name}{{{text}}} {value}" if text else f"mpstream_relay_{name} {value}")

    server = snapshot["server"]
    metric("uptime_seconds", "gauge", "Seconds since the relay started.", [({}, server["uptime_s"])])
    metric("connections", "gauge", "Open RTMP connections by role.",
           [({"role": role}, sum(1 for c in snapshot["clients"] if c["role"] == role))
            for role in ("handshake", "connected", "publisher", "player")])
    metric("mptcp_connections", "gauge", "Open connections that use MPTCP.",
           [({}, sum(1 for c in snapshot["clients"] if c["mptcp"]))])
    metric("events_total", "counter", "Connection events since start (refusals, timeouts, drops).",
           [({"event": k}, v) for k, v in sorted(server["counters"].items())])
    streams = snapshot["streams"]
    metric("stream_publishing", "gauge", "1 while the stream has a publisher.",
           [({"stream": s["name"]}, int(s["publishing"])) for s in streams])
    metric("stream_players", "gauge", "Players of the stream.",
           [({"stream": s["name"]}, s["players"]) for s in streams])
    metric("stream_received_bytes_total", "counter", "Media bytes received from the publisher.",
           [({"stream": s["name"]}, s["bytes_in"]) for s in streams])
    metric("stream_bitrate_bps", "gauge", "Publisher media bitrate over the last seconds.",
           [({"stream": s["name"]}, s["bitrate_bps"]) for s in streams])
    pulled = [s for s in streams if s.get("pull")]  # edge mode
    if pulled:
        metric("stream_pull_origin", "gauge", "1 for the origin an edge pulls the stream from now.",
               [({"stream": s["name"], "origin": s["pull"]["delivering_origin"] or ""}, 1) for s in pulled])
        metric("stream_pull_switches_total", "counter", "Times the edge spliced the stream onto another origin.",
               [({"stream": s["name"]}, s["pull"]["switches"]) for s in pulled])
        metric("stream_pull_failures_total", "counter", "Origin connections of the pull that ended or failed.",
               [({"stream": s["name"]}, s["pull"]["connections_failed"]) for s in pulled])
    # Per client only in the JSON (/clients): a label per connection would make a new time series
    # for every viewer that ever came, without bound. Here the relay's totals.
    clients = snapshot["clients"]
    totals = server["totals"]
    metric("sent_bytes_total", "counter", "Bytes sent to all clients since start.", [({}, totals["bytes_out"])])
    metric("received_bytes_total", "counter", "Bytes received from all clients since start.",
           [({}, totals["bytes_in"])])
    metric("keyframe_skips_total", "counter", "Times a slow player skipped to the next keyframe, since start.",
           [({}, totals["skips"])])
    metric("mptcp_subflows", "gauge", "Subflows of the open MPTCP connections.",
           [({}, sum(c["subflows"] for c in clients if c["mptcp"]))])
    return "\n".join(lines) + "\n"


class StatsServer:
    """`snapshot()` gives the relay's state (`Relay.snapshot`); `counters` is where refusals are counted."""

    def __init__(self, snapshot: Callable[[], dict], counters: collections.Counter[str]):
        self.snapshot = snapshot
        self.counters = counters
        self.servers: list[asyncio.Server] = []
        self.addresses: list[str] = []
        self.clients = 0

    async def start(self, listen: str) -> None:
        # Plain TCP: the stats API is local plumbing, not part of the multipath experiment.
        self.servers = await net.start_server(self._handle, listen, mptcp="off")
        for server in self.servers:
            for sock in server.sockets:
                self.addresses.append(net.format_sockaddr(sock.getsockname()))
        log.info("stats API on %s", ", ".join(f"http://{a}/" for a in self.addresses))

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.clients >= MAX_CLIENTS:
            self.counters["stats_requests_refused"] += 1
            writer.transport.abort()
            return
        self.clients += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            status, ctype, body = self._respond(method, path.split("?", 1)[0])
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            self.clients -= 1
            writer.close()

    def _respond(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4", prometheus(self.snapshot()).encode()
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        snapshot = self.snapshot()
        selected = {"/": snapshot, "/stats": snapshot, "/streams": snapshot["streams"],
                    "/clients": snapshot["clients"]}.get(path.rstrip("/") or "/")
        if selected is None:
            return "404 Not Found", "text/plain", b"try / /streams /clients /metrics\n"
        return "200 OK", "application/json", (json.dumps(selected, indent=1) + "\n").encode()
