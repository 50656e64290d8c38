"""The RTMP handshake (C0/C1/C2 and S0/S1/S2), plain version 3.

We send zero in the version field of C1/S1, which tells peers (ffmpeg, librtmp,
nginx-rtmp) not to expect the Flash digest scheme; we accept either from them, since
only the sizes matter for the plain handshake.
"""

from __future__ import annotations

import os
import struct
import time

from mpstream.rtmp.errors import ProtocolError

RTMP_VERSION = 3
SIZE = 1536


def _now_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


def _packet(epoch: int) -> bytes:
    return struct.pack(">II", epoch, 0) + os.urandom(SIZE - 8)


def _check_version(version: int, who: str) -> None:
    if version != RTMP_VERSION:
        raise ProtocolError(f"{who} asked for RTMP version {version} (only plain version 3 is spoken)")


class ServerHandshake:
    """Waits for C0+C1, answers S0+S1+S2, waits for C2. `feed` returns the bytes it did not use."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._got_c1 = False
        self.done = False
        self.outgoing = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if not self._got_c1:
            if self._buffer and self._buffer[0] != RTMP_VERSION:
                _check_version(self._buffer[0], "client")
            if len(self._buffer) < 1 + SIZE:
                return b""
            c1 = bytes(self._buffer[1:1 + SIZE])
            del self._buffer[:1 + SIZE]
            self._got_c1 = True
            s2 = c1[:4] + struct.pack(">I", _now_ms()) + c1[8:]
            self.outgoing += bytes((RTMP_VERSION,)) + _packet(0) + s2
        if len(self._buffer) < SIZE:
            return b""
        rest = bytes(self._buffer[SIZE:])
        self._buffer.clear()
        self.done = True
        return rest


class ClientHandshake:
    """Sends C0+C1 at once, waits for S0+S1+S2, answers C2 (an echo of S1)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.done = False
        self.outgoing = bytearray(bytes((RTMP_VERSION,)) + _packet(0))

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if self._buffer and self._buffer[0] != RTMP_VERSION:
            _check_version(self._buffer[0], "server")
        if len(self._buffer) < 1 + 2 * SIZE:
            return b""
        s1 = bytes(self._buffer[1:1 + SIZE])
        rest = bytes(self._buffer[1 + 2 * SIZE:])
        self._buffer.clear()
        self.outgoing += s1[:4] + struct.pack(">I", _now_ms()) + s1[8:]
        self.done = True
        return rest
