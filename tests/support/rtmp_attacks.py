"""Hostile RTMP peers for the attack tests and the attack benchmark (issue 21), with blocking sockets.

Each attack runs in its own thread against a server on loopback and returns an `Outcome`
(whether the server closed the attacker, and what it saw). The same functions run against
`mpstream relay` and against nginx-rtmp, so that both face the same bytes.

    outcome = empty_messages(port, seconds=3)      # zero-length message + 1-byte chunk headers
    probe_first_frame(url)                          # seconds until a new player's first video frame
    rss_bytes(pid); cpu_seconds(pid)
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import threading
import time
from dataclasses import dataclass

from mpstream.streaming.rtmp import amf0
from mpstream.streaming.rtmp import messages as m
from mpstream.streaming.rtmp.chunk import ChunkReader, encode_message
from mpstream.streaming.rtmp.handshake import SIZE

HOST = "::1"
CHUNK = 128  # what we send with: the servers' default incoming chunk size


@dataclass
class Outcome:
    dropped: bool = False  # the server closed (or reset) the attacker's connection(s)
    sent: int = 0  # bytes the attacker got into the server
    detail: str = ""


# ---------------------------------------------------------------- a raw peer


class RawPeer:
    """A handshaken connection that sends crafted messages and reads the server's commands."""

    def __init__(self, port: int, host: str = HOST, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(bytes([3]) + bytes(SIZE))
        got = b""
        while len(got) < 1 + 2 * SIZE:
            data = self.sock.recv(1 + 2 * SIZE - len(got))
            if not data:
                raise ConnectionError("closed during the handshake")
            got += data
        self.sock.sendall(bytes(SIZE))
        self.reader = ChunkReader()
        self.sent = 0

    def send(self, data: bytes) -> bool:
        """False when the server has closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        except TimeoutError:
            return True  # the server reads slowly (paused): still connected
        self.sent += len(data)
        return True

    def connect(self, app: str = "live", tc_url: str | None = None, extra: dict | None = None) -> bytes:
        params = {"app": app, "tcUrl": tc_url if tc_url is not None else f"rtmp://localhost/{app}", **(extra or {})}
        return command("connect", 1.0, params)

    def commands(self, timeout: float = 2.0, until: str = "") -> list[m.Command]:
        """Commands the server sent within `timeout` (stops early at EOF, or at a status code starting with `until`)."""
        found: list[m.Command] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not data:
                break
            for message in self.reader.feed(data):
                if message.type_id == m.COMMAND_AMF0:
                    found.append(m.decode_command(message.type_id, message.body))
            if until and any(code.startswith(until) for code in statuses(found)):
                break
        return found

    def closed_within(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout` (what it sends is read and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(1 << 16):
                    return True
            except TimeoutError:
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def command(name: str, tid: float, obj: object = None, *args: object, stream_id: int = 0) -> bytes:
    return encode_message(3, m.COMMAND_AMF0, stream_id, 0, amf0.encode(name, tid, obj, *args), CHUNK)


def statuses(commands: list[m.Command]) -> list[str]:
    """The codes of onStatus and _error answers."""
    codes = []
    for cmd in commands:
        if cmd.name in ("onStatus", "_error") and cmd.args and isinstance(cmd.args[0], dict):
            codes.append(str(cmd.args[0].get("code", "")))
    return codes


def _sender(port: int, seconds: float, setup: bytes, chunk: bytes) -> Outcome:
    """Send `setup`, then `chunk` again and again for `seconds` or until the server closes."""
    try:
        peer = RawPeer(port)
    except OSError as exc:
        return Outcome(True, 0, f"no connection: {exc}")
    peer.sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    alive = peer.send(setup)
    while alive and time.monotonic() < deadline:
        alive = peer.send(chunk)
    dropped = not alive or peer.closed_within(0.5)
    peer.close()
    return Outcome(dropped, peer.sent)


def _parallel(count: int, target, *args) -> Outcome:
    results: list[Outcome] = []
    threads = [threading.Thread(target=lambda: results.append(target(*args))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Outcome(all(r.dropped for r in results), sum(r.sent for r in results),
                   f"{sum(r.dropped for r in results)} of {count} dropped")


# ---------------------------------------------------------------- CPU


def empty_messages(port: int, seconds: float, connections: int = 4, app: str = "live") -> Outcome:
    """A zero-length video message, then nothing but 1-byte type-3 headers: each one a whole message."""
    setup = command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://localhost/{app}"}) + command(
        "createStream", 2.0) + bytes([0x06, 0, 0, 0, 0, 0, 0, m.VIDEO, 1, 0, 0, 0])
    return _parallel(connections, _sender, port, seconds, setup, bytes([0xC6]) * 65536)


def empty_aggregates(port: int, seconds: float, connections: int = 4, app: str = "live") -> Outcome:
    """Aggregate messages of 255 empty sub-messages each."""
    part = bytes([m.VIDEO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + (11).to_bytes(4, "big")
    message = encode_message(4, m.AGGREGATE, 1, 0, part * 255, CHUNK)
    setup = command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://localhost/{app}"}) + command("createStream", 2.0)
    return _parallel(connections, _sender, port, seconds, setup, message * 16)


# ---------------------------------------------------------------- memory


def _set_chunk_size(size: int) -> bytes:
    return encode_message(2, m.SET_CHUNK_SIZE, 0, 0, size.to_bytes(4, "big"), CHUNK)


def partial_messages(port: int, seconds: float, streams: int = 60, size: int = (8 << 20) - 16) -> Outcome:
    """On each of `streams` chunk streams, a message of `size` bytes that never finishes."""
    try:
        peer = RawPeer(port)
    except OSError as exc:
        return Outcome(True, 0, f"no connection: {exc}")
    chunk = 65536
    alive = peer.send(command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://localhost/live"})
                      + _set_chunk_size(chunk))
    body = bytes(chunk)
    deadline = time.monotonic() + seconds
    for csid in range(4, 4 + streams):
        if not alive or time.monotonic() > deadline:
            break
        header = bytes([csid, 0, 0, 0]) + size.to_bytes(3, "big") + bytes([m.VIDEO, 1, 0, 0, 0])
        alive = peer.send(header + body)
        for _ in range(size // chunk - 2):
            if not alive:
                break
            alive = peer.send(bytes([0xC0 | csid]) + body)
    if alive:
        alive = not peer.closed_within(max(0.1, deadline - time.monotonic()))
    peer.close()
    return Outcome(not alive, peer.sent)


def gop_streams(port: int, seconds: float, streams: int = 16, frame: int = 100_000, app: str = "live") -> Outcome:
    """Publish `streams` streams on one connection, each a keyframe and then large inter frames only."""
    try:
        peer = RawPeer(port)
    except OSError as exc:
        return Outcome(True, 0, f"no connection: {exc}")
    chunk = 65536
    setup = command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://localhost/{app}"}) + _set_chunk_size(chunk)
    for sid in range(1, streams + 1):
        setup += encode_message(3, m.COMMAND_AMF0, 0, 0, amf0.encode("createStream", 1.0 + sid, None), chunk)
    alive = peer.send(setup)
    time.sleep(0.3)
    publish = b"".join(encode_message(3, m.COMMAND_AMF0, sid, 0, amf0.encode("publish", 0.0, None, f"gop{sid}",
                                                                               "live"), chunk)
                       for sid in range(1, streams + 1))
    alive = alive and peer.send(publish)
    key = b"\x17\x01\x00\x00\x00" + bytes(frame)
    inter = b"\x27\x01\x00\x00\x00" + bytes(frame)
    ts = 0
    for sid in range(1, streams + 1):
        alive = alive and peer.send(encode_message(6, m.VIDEO, sid, ts, key, chunk))
    deadline = time.monotonic() + seconds
    while alive and time.monotonic() < deadline:
        ts += 40
        for sid in range(1, streams + 1):
            alive = alive and peer.send(encode_message(6, m.VIDEO, sid, ts, inter, chunk))
        if not alive:
            break
        try:  # read what the server says, so that only the caches can grow
            peer.sock.setblocking(False)
            while peer.sock.recv(65536):
                pass
        except BlockingIOError:
            pass
        except OSError:
            alive = False
        finally:
            peer.sock.settimeout(0.2)
    dropped = not alive or peer.closed_within(0.5)
    peer.close()
    return Outcome(dropped, peer.sent)


def long_names_not_reading(port: int, seconds: float, plays: int = 80, name_bytes: int = 6_000_000) -> Outcome:
    """Play streams with 6 MB names and never read the answers (that echo the name)."""
    try:
        peer = RawPeer(port)
    except OSError as exc:
        return Outcome(True, 0, f"no connection: {exc}")
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    chunk = 65536
    alive = peer.send(command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://localhost/live"})
                      + _set_chunk_size(chunk)
                      + encode_message(3, m.COMMAND_AMF0, 0, 0, amf0.encode("createStream", 2.0, None), chunk))
    name = "n" * name_bytes
    deadline = time.monotonic() + seconds
    for i in range(plays):
        if not alive or time.monotonic() > deadline:
            break
        alive = peer.send(encode_message(3, m.COMMAND_AMF0, 1, 0, amf0.encode("play", 0.0, None, name + str(i)),
                                         chunk))
    if alive:
        time.sleep(max(0.0, deadline - time.monotonic()))
        alive = peer.send(command("receiveAudio", 0.0, None, True, stream_id=1))
    dropped = not alive or peer.closed_within(0.5)
    peer.close()
    return Outcome(dropped, peer.sent)


def pings_not_reading(port: int, seconds: float) -> Outcome:
    """Ping requests as fast as the server takes them; the pongs are never read."""
    ping = encode_message(2, m.USER_CONTROL, 0, 0, m.user_control(m.PING_REQUEST, 1), CHUNK)
    setup = command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://localhost/live"})

    def run() -> Outcome:
        try:
            peer = RawPeer(port)
        except OSError as exc:
            return Outcome(True, 0, f"no connection: {exc}")
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.sock.settimeout(0.2)
        deadline = time.monotonic() + seconds
        alive = peer.send(setup)
        while alive and time.monotonic() < deadline:
            alive = peer.send(ping * 2048)
        # Closed while we still wrote, or is it closed now? (reading now would drain its queue)
        dropped = not alive
        if not dropped:
            try:
                peer.sock.send(ping)
                time.sleep(0.2)
                peer.sock.send(ping)
            except OSError:
                dropped = True
        peer.close()
        return Outcome(dropped, peer.sent)
    return run()


def listen_overflows() -> int:
    """SYNs and handshakes dropped at a full listen queue in this network namespace so far (any listener)."""
    with open("/proc/net/netstat") as netstat:
        lines = netstat.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:], strict=True)).get("ListenOverflows", 0))
    return 0


def fd_storm(port: int, seconds: float, count: int = 3000) -> Outcome:
    """Open `count` connections as fast as possible and hold them for `seconds`."""
    socks: list[socket.socket] = []
    failed = 0
    overflows = listen_overflows()
    deadline = time.monotonic() + seconds
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6)
            sock.setblocking(False)
            try:
                sock.connect_ex((HOST, port))
                socks.append(sock)
            except OSError:
                failed += 1
                sock.close()
        time.sleep(max(0.0, deadline - time.monotonic()))
        closed = 0
        for sock in socks:
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for sock in socks:
            sock.close()
    return Outcome(closed > 0, 0, f"{len(socks)} opened, {closed} closed by the server, {failed} failed, "
                                  f"{listen_overflows() - overflows} dropped at a full listen queue")


def players_not_reading(port: int, seconds: float, players: int = 20, app: str = "live",
                        stream: str = "cam") -> Outcome:
    """`players` players of the stream that never read; after `seconds`, how many has the server closed?"""
    socks = []
    for _ in range(players):
        peer = RawPeer(port)
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.send(peer.connect(app) + command("createStream", 2.0) + command("play", 0.0, None, stream, -2.0,
                                                                             stream_id=1))
        socks.append(peer.sock)
    time.sleep(seconds)
    # Closed by the server: the socket left ESTABLISHED (reading would drain what waits instead).
    closed = sum(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1 for sock in socks)
    for sock in socks:
        sock.close()
    return Outcome(closed == players, 0, f"{closed} of {players} closed after {seconds:g} s")


# ---------------------------------------------------------------- names, numbers, logs


def publish_once(port: int, app: str, stream: str, tc_url: str | None = None) -> list[str]:
    """Connect to `app` and publish `stream` (query included); the status codes the server answered with."""
    peer = RawPeer(port)
    try:
        peer.send(peer.connect(app, tc_url) + command("createStream", 2.0) + command("publish", 0.0, None, stream,
                                                                                     "live", stream_id=1))
        return statuses(peer.commands(2.0, until="NetStream.Publish."))
    finally:
        peer.close()


def bad_numbers(port: int) -> list[str]:
    """The peers of issue 21's tracebacks: a tcUrl that does not parse, deleteStream(NaN) and (inf)."""
    seen = []
    peer = RawPeer(port)
    peer.send(command("connect", 1.0, {"tcUrl": "rtmp://[::1/live"}))
    seen.append("tcUrl: " + ",".join(statuses(peer.commands(1.0))))
    peer.close()
    for value in (math.nan, math.inf):
        peer = RawPeer(port)
        peer.send(peer.connect() + command("createStream", 2.0) + command("deleteStream", 0.0, None, value)
                  + command("getStreamLength", 3.0, None, "x"))
        answers = [c.name for c in peer.commands(1.0)]
        seen.append(f"deleteStream({value}): {answers}")
        peer.close()
    return seen


def log_forging(port: int, seconds: float) -> Outcome:
    """A stream name with a line break and a forged log line; then unknown commands, as many as it takes."""
    forged = "cam\n2026-12-01 00:00:00 WARNING mpstream.relay: FORGED LINE"
    try:
        publish_once(port, "live", forged)
    except OSError:
        pass
    unknown = b"".join(command("x" * 60 + str(i), 1.0) for i in range(1000))
    setup = command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://localhost/live"})
    return _sender(port, seconds, setup, unknown)


def one_write_play(port: int, stream: str, app: str = "live", timeout: float = 3.0) -> bool:
    """connect + createStream + play in a single write: does video arrive?"""
    peer = RawPeer(port)
    try:
        peer.send(peer.connect(app) + command("createStream", 2.0) + command("play", 0.0, None, stream, -2.0,
                                                                          stream_id=1))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            peer.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = peer.sock.recv(65536)
            except TimeoutError:
                return False
            if not data:
                return False
            if any(message.type_id == m.VIDEO for message in peer.reader.feed(data)):
                return True
        return False
    finally:
        peer.close()


# ---------------------------------------------------------------- measuring the victim side


def probe_first_frame(url: str, timeout: float = 5.0) -> float | None:
    """Seconds from opening a new player connection to its first video frame (None: none in `timeout`).

    Runs its own event loop, so it can be called from any thread while attacks run in others.
    """
    from mpstream.streaming.rtmp import MediaMessage, PlayStarted

    from tests.support.rtmp_client import RtmpPeer

    async def probe() -> float | None:
        start = time.monotonic()
        try:
            peer = await asyncio.wait_for(RtmpPeer.open(url, "play"), timeout)
        except (OSError, TimeoutError):
            return None
        try:
            await peer.wait_for(PlayStarted, timeout=max(0.01, timeout - (time.monotonic() - start)))
            await peer.wait_for(MediaMessage, timeout=max(0.01, timeout - (time.monotonic() - start)),
                                predicate=lambda e: e.is_video)
            return time.monotonic() - start
        except (TimeoutError, ConnectionError):
            return None
        finally:
            await peer.close()
    return asyncio.run(probe())


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssWatch:
    """The peak RSS of a process, sampled every `interval` seconds in a thread while in the `with` block."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
