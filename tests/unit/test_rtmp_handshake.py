"""The server handshake: plain echo for plain clients, signed S1/S2 for digest (Flash-style) clients."""

import hashlib
import hmac
import os

import pytest
from mpstream.streaming.rtmp import ClientSession, HandshakeComplete, ProtocolError, ServerSession
from mpstream.streaming.rtmp import handshake as hs


def flash_c1(schema: int) -> bytes:
    c1 = bytearray(b"\0\0\0\0" + bytes((9, 0, 124, 2)) + os.urandom(hs.SIZE - 8))
    offset = hs.digest_offset(bytes(c1), schema)
    body = bytes(c1[:offset] + c1[offset + 32:])
    c1[offset:offset + 32] = hmac.new(hs.PLAYER_KEY[:30], body, hashlib.sha256).digest()
    return bytes(c1)


def answer(c1: bytes) -> tuple[bytes, bytes, ServerSession]:
    server = ServerSession()
    server.receive_data(bytes([3]) + c1)
    out = server.data_to_send()
    assert len(out) == 1 + 2 * hs.SIZE and out[0] == 3
    return out[1:1 + hs.SIZE], out[1 + hs.SIZE:], server


@pytest.mark.parametrize("schema", [0, 1])
def test_digest_client_gets_signed_answer_it_can_verify(schema):
    c1 = flash_c1(schema)
    s1, s2, server = answer(c1)
    assert server._handshake.signed
    # what a verifying client does: S1's digest with the server key's open part...
    offset = hs.digest_offset(s1, 1)
    expected = hmac.new(hs.SERVER_KEY[:36], s1[:offset] + s1[offset + 32:], hashlib.sha256).digest()
    assert s1[offset:offset + 32] == expected and s1[4] >= 3
    # ...and S2 signed with a key derived from its own C1 digest
    client_offset = hs.digest_offset(c1, schema)
    key = hmac.new(hs.SERVER_KEY, c1[client_offset:client_offset + 32], hashlib.sha256).digest()
    assert s2[-32:] == hmac.new(key, s2[:-32], hashlib.sha256).digest()


@pytest.mark.parametrize("version", [b"\0\0\0\0", bytes((9, 0, 124, 2))])
def test_plain_or_unverifiable_c1_gets_an_echo(version):
    c1 = b"\0\0\0\7" + version + os.urandom(hs.SIZE - 8)
    s1, s2, server = answer(c1)
    assert not server._handshake.signed
    assert s1[4:8] == b"\0\0\0\0"  # tells the client not to look for a digest
    assert s2[:4] == c1[:4] and s2[8:] == c1[8:]


def test_handshake_completes_on_c2_and_keeps_trailing_bytes():
    server = ServerSession()
    client = ClientSession("live", "rtmp://h/live")
    server.receive_data(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[0], HandshakeComplete)
    c2_and_connect = client.data_to_send()
    events = server.receive_data(c2_and_connect)  # C2 and the connect command in one segment
    assert [type(e).__name__ for e in events] == ["HandshakeComplete", "ConnectRequest"]


def test_wrong_server_version_is_refused_by_the_client():
    client = ClientSession("live", "rtmp://h/live")
    with pytest.raises(ProtocolError):
        client.receive_data(b"\x06" + bytes(10))
