"""ICMP and ICMPv6 echo requests and replies as bytes (no sockets).

IPv4 raw sockets hand over the IP header with the ICMP message; IPv6 raw sockets hand
over the ICMPv6 message alone and the kernel fills in its checksum.
"""

from __future__ import annotations

import struct

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, payload: bytes = b"mpstream-pathwatch") -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if version == 6:
        return header + payload
    message = header + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def parse_echo_reply(version: int, packet: bytes) -> tuple[int, int] | None:
    """(ident, seq) of an echo reply, None for anything else."""
    if version == 4:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, code, _sum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    if kind != ECHO_REPLY[version] or code != 0:
        return None
    return ident, seq
