"""The RTMP handshake (C0/C1/C2 and S0/S1/S2), version 3.

A client C1 with zero in its version field gets the plain handshake (S2 echoes C1).
A C1 that carries a valid Flash-style HMAC-SHA256 digest (players that check the
server's answer, e.g. ffmpeg and Flash-lineage encoders) gets S1/S2 signed the same
way, so that such clients can verify us; a C1 with neither is answered plainly.
Our own client sends a plain C1 (zero version) and accepts either answer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time

from mpstream.streaming.rtmp.errors import ProtocolError

RTMP_VERSION = 3
SIZE = 1536


def _now_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


def _packet(epoch: int) -> bytes:
    return struct.pack(">II", epoch, 0) + os.urandom(SIZE - 8)


# The digest scheme's public keys: an ASCII part and a common 32-byte tail.
_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
PLAYER_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
_PLAYER_KEY_OPEN = 30
_SERVER_KEY_OPEN = 36
DIGEST_SIZE = 32
SERVER_VERSION = bytes((4, 5, 0, 1))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_offset(packet: bytes, schema: int) -> int:
    """Where the 32-byte digest sits in a C1/S1 (schema 0: second half, schema 1: first half)."""
    base = 772 if schema == 0 else 8
    return sum(packet[base:base + 4]) % 728 + base + 4


def _digest_at(packet: bytes, offset: int, key: bytes) -> bytes:
    return _hmac(key, packet[:offset] + packet[offset + DIGEST_SIZE:])


def find_client_digest(c1: bytes) -> bytes | None:
    """The digest of a Flash-style C1, or None when it has none that verifies."""
    if c1[4:8] == b"\0\0\0\0":
        return None
    for schema in (1, 0):
        offset = digest_offset(c1, schema)
        digest = c1[offset:offset + DIGEST_SIZE]
        if hmac.compare_digest(digest, _digest_at(c1, offset, PLAYER_KEY[:_PLAYER_KEY_OPEN])):
            return digest
    return None


def signed_server_packets(client_digest: bytes, epoch: int) -> tuple[bytes, bytes]:
    """S1 carrying our digest, and S2 signed with a key derived from the client's digest."""
    s1 = bytearray(struct.pack(">I", epoch) + SERVER_VERSION + os.urandom(SIZE - 8))
    offset = digest_offset(bytes(s1), 1)
    s1[offset:offset + DIGEST_SIZE] = _digest_at(bytes(s1), offset, SERVER_KEY[:_SERVER_KEY_OPEN])
    s2 = bytearray(os.urandom(SIZE))
    key = _hmac(SERVER_KEY, client_digest)
    s2[-DIGEST_SIZE:] = _hmac(key, bytes(s2[:-DIGEST_SIZE]))
    return bytes(s1), bytes(s2)


def _check_version(version: int, who: str) -> None:
    if version != RTMP_VERSION:
        raise ProtocolError(f"{who} asked for RTMP version {version} (only plain version 3 is spoken)")


class ServerHandshake:
    """Waits for C0+C1, answers S0+S1+S2, waits for C2. `feed` returns the bytes it did not use."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._got_c1 = False
        self.done = False
        self.signed = False  # answered a Flash-style C1 with signed S1/S2
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
            client_digest = find_client_digest(c1)
            if client_digest is not None:
                s1, s2 = signed_server_packets(client_digest, 0)
                self.signed = True
            else:
                s1, s2 = _packet(0), c1[:4] + struct.pack(">I", _now_ms()) + c1[8:]
            self.outgoing += bytes((RTMP_VERSION,)) + s1 + s2
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
