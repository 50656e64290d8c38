"""NFQUEUE over nfnetlink: the few messages the emulator needs, as bytes, plus a thin socket.

Messages are built and parsed by pure functions (tested without a kernel). The queue is
bound in metadata copy mode: the kernel keeps the packet and sends only its id, so a held
packet costs userspace about 100 bytes of netlink message, whatever its size.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from mpstream.netlink import (
    NETLINK_NETFILTER,
    NFGENMSG,
    NLA_TYPE_MASK,
    NLATTR,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSG_HDR,
    SOL_NETLINK,
    align,
    attribute,
    error_code,
    request,
)

NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = NFNL_SUBSYS_QUEUE << 8 | 0
NFQNL_MSG_VERDICT = NFNL_SUBSYS_QUEUE << 8 | 1
NFQNL_MSG_CONFIG = NFNL_SUBSYS_QUEUE << 8 | 2
NFQNL_MSG_VERDICT_BATCH = NFNL_SUBSYS_QUEUE << 8 | 3

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 4  # hand over GSO packets whole: no segmentation just to hold them
NF_DROP, NF_ACCEPT = 0, 1

_HEADER = NLMSG_HDR.size + NFGENMSG.size


class NfqueueError(OSError):
    """The kernel refused a queue operation; the message says which and why."""


def message(kind: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    return request(kind, flags, seq, NFGENMSG.pack(0, 0, queue) + attrs)  # the resource id: the queue number


def verdict(queue: int, packet_id: int, accept: bool = True, batch: bool = False) -> bytes:
    """Accept or drop one packet, or (batch) every packet of the queue up to `packet_id`."""
    body = attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT if accept else NF_DROP, packet_id))
    return message(NFQNL_MSG_VERDICT_BATCH if batch else NFQNL_MSG_VERDICT, queue, body)


def bind_request(queue: int, maxlen: int, seq: int) -> bytes:
    """Bind `queue`, metadata copy mode, room for `maxlen` held packets, GSO kept whole."""
    attrs = (attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0))
             + attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
             + attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
             + attribute(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_GSO))
             + attribute(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO)))
    return message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq)


def unbind_request(queue: int, seq: int) -> bytes:
    attrs = attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_UNBIND, 0, 0))
    return message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq)


def parse(data: bytes | memoryview, size: int | None = None):
    """Yield ('packet', queue, packet_id) and ('error', seq, errno) from a received buffer.

    Errors are events here, not exceptions (as `mpstream.netlink.messages` has them): the
    socket matches them to the request they answer while packets keep arriving.
    """
    end = len(data) if size is None else size
    offset = 0
    while offset + NLMSG_HDR.size <= end:
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            return
        payload = offset + NLMSG_HDR.size
        if kind == NFQNL_MSG_PACKET:
            queue = NFGENMSG.unpack_from(data, payload)[2]
            packet_id = _packet_id(data, offset + _HEADER, offset + length)
            if packet_id is not None:
                yield "packet", queue, packet_id
        elif kind == NLMSG_ERROR:
            # The payload: the error code, then the header of the request it answers.
            request_seq = NLMSG_HDR.unpack_from(data, payload + 4)[3]
            yield "error", request_seq, -error_code(data, payload)
        offset += align(length)


def _packet_id(data, offset: int, end: int) -> int | None:
    # Once per held packet: walked inline, as `attribute_spans`'s generator made the parse
    # a third slower (3.2 instead of 2.4 us a packet, the packet header being the first).
    while offset + NLATTR.size <= end:
        size, kind = NLATTR.unpack_from(data, offset)
        if size < NLATTR.size:
            return None
        if kind & NLA_TYPE_MASK == NFQA_PACKET_HDR:
            return struct.unpack_from("!I", data, offset + NLATTR.size)[0]
        offset += align(size)
    return None


class QueueSocket:
    """One nfnetlink socket bound to several queues (all links of one router)."""

    def __init__(self, rcvbuf: int = 8 << 20):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        # A full receive buffer loses the packet message, not the packet: the kernel still
        # holds it and the next batch verdict of its queue releases it. No ENOBUFS wanted.
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.buffer = bytearray(1 << 18)
        self.early = []  # packet events read while waiting for an acknowledgement
        self._seq = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def _request(self, data: bytes, what: str) -> None:
        self.sock.sendall(data)
        while True:
            size = self.sock.recv_into(self.buffer)
            for event in parse(self.buffer, size):
                if event[0] == "packet":
                    self.early.append(event)
                elif event[1] == self._seq:
                    if event[2]:
                        hint = " (another process holds it)" if event[2] == errno.EBUSY else ""
                        raise NfqueueError(event[2], f"{what}: {os.strerror(event[2])}{hint}")
                    return

    def bind(self, queue: int, maxlen: int) -> None:
        self._seq += 1
        self._request(bind_request(queue, maxlen, self._seq), f"binding NFQUEUE {queue}")

    def unbind(self, queue: int) -> None:
        self._seq += 1
        self._request(unbind_request(queue, self._seq), f"unbinding NFQUEUE {queue}")

    def receive(self) -> int:
        """Bytes of queued messages read without blocking into self.buffer (0: none)."""
        try:
            return self.sock.recv_into(self.buffer, 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()
