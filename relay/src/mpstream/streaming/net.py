"""Sockets the protocol-independent way: getaddrinfo/getnameinfo, IPv6 and IPv4 alike, MPTCP when offered.

Addresses:
    parse_hostport("[2001:db8::1]:1935") -> ("2001:db8::1", 1935); "host:1935", "192.0.2.1",
    "::1" (a bare IPv6 literal) and rtmp:// URLs (`parse_target`) are accepted too.
    resolve(host, port, passive=False) -> [(family, sockaddr), ...] from getaddrinfo.
    format_sockaddr(sockaddr) -> "[2001:db8::1]:1935" via getnameinfo (numeric).

MPTCP (`mptcp` argument everywhere: "auto" | "on" | "off"):
    "auto" uses IPPROTO_MPTCP when the kernel offers it and plain TCP otherwise, "on"
    fails when it does not, "off" never uses it. The first socket made logs one line
    saying which it is. `mptcp_available()` answers without side effects.

asyncio:
    reader, writer = await open_connection("rtmp://[::1]:1935/live/cam", mptcp="auto")
    servers = await start_server(callback, "[::]:1935", mptcp="auto")   # like asyncio.start_server
    (a list of asyncio.Server: a name may resolve to several addresses; listeners of your own
    from create_listeners)

Inspection:
    transport_info(sock) -> {"mptcp": bool, "subflows": int, "local": str, "peer": str}
    (accepts a socket, an asyncio transport, or a StreamWriter). "mptcp" is False for an
    MPTCP socket that fell back to TCP; "subflows" counts all subflows, 1 for TCP.
    mptcp_subflow_addresses(sock) -> [("[2001:db8::2]:40000", "[2001:db8::1]:1935"), ...]
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from mpstream.streaming.rtmp.url import DEFAULT_PORT, parse_rtmp_url

log = logging.getLogger(__name__)

IPPROTO_MPTCP = getattr(socket, "IPPROTO_MPTCP", 262)
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_SUBFLOW_ADDRS = 3
_SUBFLOW_DATA = struct.Struct("=IIII")  # size_subflow_data, num_subflows, size_kernel, size_user
_SOCKADDR_STORAGE = 128
_MPTCP_INFO_FLAG_FALLBACK = 1
MPTCP_MODES = ("auto", "on", "off")

_mptcp_probe: bool | None = None
_announced = False


# ---------------------------------------------------------------- addresses

def parse_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split "host:port", "[v6]:port", "host", "v6-literal" into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"unclosed '[' in {text!r}")
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after ']' in {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""  # a name, an IPv4 literal, or a bare IPv6 literal
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port_text:
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"bad port in {text!r}")
        return host, int(port_text)
    return host, default_port


def parse_target(target: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """(host, port) of an rtmp:// URL or a HOST:PORT string."""
    if "://" in target:
        url = parse_rtmp_url(target)
        return url.host, url.port
    return parse_hostport(target, default_port)


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_sockaddr(sockaddr: Any) -> str:
    """A socket address as "host:port" / "[v6]:port", through getnameinfo (numeric)."""
    if not sockaddr:
        return "?"
    try:
        host, port = socket.getnameinfo(sockaddr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    except (OSError, TypeError):
        return str(sockaddr)
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]  # an IPv4 client on a dual-stack socket
    return format_hostport(host, int(port))


def resolve(host: str, port: int, passive: bool = False) -> list[tuple[int, Any]]:
    """(family, sockaddr) for every stream address of host, in getaddrinfo's order."""
    flags = socket.AI_PASSIVE if passive else 0
    if host in ("", "*"):
        host = None  # type: ignore[assignment]
    seen = []
    for family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP, flags):
        if (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    return seen


# ---------------------------------------------------------------- MPTCP

def mptcp_available() -> bool:
    """Whether the kernel hands out IPPROTO_MPTCP sockets (probed once)."""
    global _mptcp_probe
    if _mptcp_probe is None:
        for family in (socket.AF_INET6, socket.AF_INET):
            try:
                socket.socket(family, socket.SOCK_STREAM, IPPROTO_MPTCP).close()
                _mptcp_probe = True
                break
            except OSError:
                continue
        else:
            _mptcp_probe = False
    return _mptcp_probe


def _check_mode(mptcp: str) -> None:
    if mptcp not in MPTCP_MODES:
        raise ValueError(f"mptcp must be one of {MPTCP_MODES}, not {mptcp!r}")


def _announce(use_mptcp: bool, mptcp: str) -> None:
    global _announced
    if _announced:
        return
    _announced = True
    if use_mptcp:
        log.info("transport: MPTCP (IPPROTO_MPTCP sockets, mode %s)", mptcp)
    elif mptcp == "off":
        log.info("transport: plain TCP (MPTCP switched off)")
    else:
        log.info("transport: plain TCP (the kernel does not offer MPTCP)")


def create_socket(family: int, mptcp: str = "auto") -> socket.socket:
    """A stream socket of `family`, MPTCP or TCP according to `mptcp`."""
    _check_mode(mptcp)
    use = mptcp != "off" and mptcp_available()
    if mptcp == "on" and not use:
        raise OSError("MPTCP was required but the kernel does not offer IPPROTO_MPTCP")
    _announce(use, mptcp)
    if use:
        try:
            return socket.socket(family, socket.SOCK_STREAM, IPPROTO_MPTCP)
        except OSError:
            if mptcp == "on":
                raise
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)


def create_listeners(listen: str, mptcp: str = "auto", backlog: int = 512,
                     default_port: int = DEFAULT_PORT) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for "HOST:PORT" ("[::]" is dual-stack)."""
    host, port = parse_hostport(listen, default_port)
    try:
        return _listeners(host, port, mptcp, backlog)
    except OSError as exc:
        if host != "::" or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, socket.EAI_ADDRFAMILY):
            raise
        log.warning("no IPv6 on this host (%s): listening on 0.0.0.0:%d instead of [::]:%d", exc, port, port)
        return _listeners("0.0.0.0", port, mptcp, backlog)


def _listeners(host: str, port: int, mptcp: str, backlog: int) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    dual_stack_wildcard = False
    try:
        for family, sockaddr in resolve(host, port, passive=True):
            if family == socket.AF_INET and sockaddr[0] == "0.0.0.0" and dual_stack_wildcard:
                continue  # already served by the IPv6 wildcard socket
            sock = create_socket(family, mptcp)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    wildcard = sockaddr[0] == "::"
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if wildcard else 1)
                    dual_stack_wildcard = dual_stack_wildcard or wildcard
                sock.bind(sockaddr)
                sock.listen(backlog)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(f"{format_hostport(host, port)}: no address to listen on")
    return sockets


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, sockaddr: Any) -> None:
    # Not loop.sock_connect: it re-resolves the address with the socket's protocol, and
    # getaddrinfo does not know IPPROTO_MPTCP.
    err = sock.connect_ex(sockaddr)
    if err == 0:
        return
    if err not in (errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(err, os.strerror(err))
    writable = loop.create_future()
    loop.add_writer(sock.fileno(), lambda: writable.done() or writable.set_result(None))
    try:
        await writable
    finally:
        loop.remove_writer(sock.fileno())
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def connect_socket(target: str, mptcp: str = "auto", timeout: float = 10.0,
                         default_port: int = DEFAULT_PORT) -> socket.socket:
    """A connected non-blocking socket to an rtmp:// URL or HOST:PORT, trying each address in turn."""
    host, port = parse_target(target, default_port)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    errors: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        sock = create_socket(family, mptcp)
        sock.setblocking(False)
        if family == socket.AF_INET6:
            # One IP version per connection, the URL's: a dual-stack socket would let MPTCP
            # add IPv4 subflows too (the peer announces both), doubling the subflows that
            # die, and hold data, when a provider fails.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            await asyncio.wait_for(_connect(loop, sock, sockaddr), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except (TimeoutError, OSError) as exc:
            sock.close()
            errors.append(f"{format_sockaddr(sockaddr)}: {exc or 'timeout'}")
    raise OSError(f"cannot connect to {format_hostport(host, port)}: " + "; ".join(errors or ["no address"]))


async def open_connection(target: str, mptcp: str = "auto", timeout: float = 10.0,
                          limit: int = 1 << 20) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams to an rtmp:// URL or HOST:PORT over MPTCP or TCP (see module doc)."""
    sock = await connect_socket(target, mptcp, timeout)
    return await asyncio.open_connection(sock=sock, limit=limit)


async def start_server(client_connected_cb: Callable, listen: str, mptcp: str = "auto",
                       backlog: int = 512, **kwargs: Any) -> list[asyncio.Server]:
    """asyncio.start_server on every address of "HOST:PORT"."""
    servers = []
    for sock in create_listeners(listen, mptcp, backlog):
        servers.append(await asyncio.start_server(client_connected_cb, sock=sock, **kwargs))
    return servers


# ---------------------------------------------------------------- inspection

def _raw_socket(obj: Any) -> Any:
    if hasattr(obj, "get_extra_info"):  # transport or StreamWriter
        return obj.get_extra_info("socket")
    return obj


def mptcp_subflows(sock: Any) -> int | None:
    """Subflows of an MPTCP connection, or None when it is not (or no longer) MPTCP."""
    sock = _raw_socket(sock)
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except (OSError, AttributeError):
        return None
    if len(raw) < 12:
        return None
    flags = struct.unpack_from("=I", raw, 8)[0]
    if flags & _MPTCP_INFO_FLAG_FALLBACK:
        return None
    if len(raw) > 80 and raw[80]:
        return raw[80]  # mptcpi_subflows_total (kernel 6.10+), the initial subflow included
    return raw[0] + 1  # mptcpi_subflows counts the additional ones


def _parse_sockaddr(raw: bytes) -> str:
    family = struct.unpack_from("=H", raw)[0]
    port = struct.unpack_from(">H", raw, 2)[0]
    if family == socket.AF_INET:
        return format_hostport(socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
    if family == socket.AF_INET6:
        if raw[8:20] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped: say it as IPv4, like format_sockaddr
            return format_hostport(socket.inet_ntop(socket.AF_INET, raw[20:24]), port)
        return format_hostport(socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    return "?"


def mptcp_subflow_addresses(sock: Any, max_subflows: int = 16) -> list[tuple[str, str]]:
    """(local, remote) of every subflow of an MPTCP socket; [] for TCP or when the kernel cannot say.

    MPTCP_SUBFLOW_ADDRS wants a filled-in header in the buffer it writes to, which
    socket.getsockopt cannot pass, hence the direct libc call.
    """
    sock = _raw_socket(sock)
    if sock is None or mptcp_subflows(sock) is None:
        return []
    import ctypes

    entry = 2 * _SOCKADDR_STORAGE
    size = _SUBFLOW_DATA.size + max_subflows * entry
    buf = ctypes.create_string_buffer(size)
    _SUBFLOW_DATA.pack_into(buf, 0, _SUBFLOW_DATA.size, 0, 0, entry)
    length = ctypes.c_uint32(size)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.getsockopt(sock.fileno(), SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, buf, ctypes.byref(length)) != 0:
        return []
    _, count, size_kernel, _ = _SUBFLOW_DATA.unpack_from(buf, 0)
    step = min(size_kernel, entry) or entry
    paths = []
    for index in range(min(count, max_subflows)):
        offset = _SUBFLOW_DATA.size + index * step
        raw = buf.raw[offset:offset + entry]
        paths.append((_parse_sockaddr(raw[:_SOCKADDR_STORAGE]), _parse_sockaddr(raw[_SOCKADDR_STORAGE:])))
    return paths


def transport_info(obj: Any) -> dict:
    """{"mptcp": bool, "subflows": int, "local": str, "peer": str} of a socket/transport/writer."""
    sock = _raw_socket(obj)
    info: dict = {"mptcp": False, "subflows": 0, "local": "?", "peer": "?"}
    if sock is None:
        return info
    try:
        info["local"] = format_sockaddr(sock.getsockname())
        info["peer"] = format_sockaddr(sock.getpeername())
    except OSError:
        pass
    subflows = mptcp_subflows(sock)
    info["mptcp"] = subflows is not None
    info["subflows"] = subflows if subflows is not None else 1
    return info
