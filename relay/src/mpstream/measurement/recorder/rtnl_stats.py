"""RTM_GETSTATS over a plain NETLINK_ROUTE socket: 64-bit link counters at little cost.

An RTM_GETLINK dump (what `IPRoute.get_links` sends) carries every attribute of every
link, and decoding it all with pyroute2 costs milliseconds per sample. RTM_GETSTATS with
the IFLA_STATS_LINK_64 filter returns just `struct rtnl_link_stats64` per link, which one
`struct` call per link decodes. Names and up/down flags come from an RTM_GETLINK dump of
which only the header and IFLA_IFNAME are read, and only when links change.
Message building and parsing are pure; `RtnlStatsReader` does the socket I/O.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import NamedTuple

from mpstream.measurement.recorder.counters import Counters, Reading, Snapshot
from mpstream.netlink import (
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDR,
    NetlinkError,
    align,
    attribute_spans,
    messages,
    raise_for_error,
)

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWSTATS, RTM_GETSTATS = 92, 94
IFLA_STATS_LINK_64 = 1
IFLA_IFNAME = 3
IFF_UP = 0x1
RTMGRP_LINK = 0x1

IF_STATS_MSG = struct.Struct("=BBHII")  # family, pad, pad, ifindex, filter mask
IFINFOMSG = struct.Struct("=BBHiII")  # family, pad, type, ifindex, flags, change
# struct rtnl_link_stats64 begins: rx_packets tx_packets rx_bytes tx_bytes rx_errors tx_errors
LINK_STATS64_HEAD = struct.Struct("=6Q")
# What the kernel sends for our filter, read in one call: the message's length and type,
# the ifindex, the first attribute's type, then the head of rtnl_link_stats64.
STATS_MESSAGE = struct.Struct("=IH10x4xI4x2xH6Q")
_HEADER = struct.Struct("=IH")  # length, type

_new = tuple.__new__  # _new(Counters, values): a Counters from a tuple in its order, without a Python call


def getstats_request(sequence: int) -> bytes:
    """A dump request for the 64-bit link counters of every interface."""
    body = IF_STATS_MSG.pack(socket.AF_UNSPEC, 0, 0, 0, 1 << (IFLA_STATS_LINK_64 - 1))
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_GETSTATS, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


def getlink_request(sequence: int) -> bytes:
    """A dump request for every interface (we read only its name and flags)."""
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0)
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


def parse_stats_messages(data: bytes | bytearray, into: dict[int, Counters],
                         end: int | None = None) -> tuple[bool, bool]:
    """Add the counters in one received buffer (up to `end`) to `into`.

    Returns (the dump is complete, a link event was among the messages): link
    notifications arrive on the same socket as the dump's answer.
    """
    end = len(data) if end is None else end
    offset, changed = 0, False
    unpack_stats, unpack_header, whole = STATS_MESSAGE.unpack_from, _HEADER.unpack_from, STATS_MESSAGE.size
    while offset + NLMSG_HDR.size <= end:
        if offset + whole <= end:
            values = unpack_stats(data, offset)
            # the common case: the kernel's answer to our filter has exactly this layout
            if values[1] == RTM_NEWSTATS and values[3] == IFLA_STATS_LINK_64 and values[0] >= whole:
                into[values[2]] = _new(Counters, values[4:])
                offset += (values[0] + 3) & ~3  # align(), without a call per link
                continue
        length, kind = unpack_header(data, offset)
        if length < NLMSG_HDR.size:
            raise NetlinkError(0, "truncated netlink message")
        body = offset + NLMSG_HDR.size
        if kind == NLMSG_DONE:
            return True, changed
        if kind == NLMSG_ERROR:
            raise_for_error(data, body)
        elif kind in (RTM_NEWLINK, RTM_DELLINK):
            changed = True
        elif kind == RTM_NEWSTATS:
            ifindex = IF_STATS_MSG.unpack_from(data, body)[3]
            for attr_type, start, stop in attribute_spans(data, body + IF_STATS_MSG.size, offset + length):
                if attr_type == IFLA_STATS_LINK_64 and stop - start >= LINK_STATS64_HEAD.size:
                    into[ifindex] = _new(Counters, LINK_STATS64_HEAD.unpack_from(data, start))
        offset += align(length)
    return False, changed


def parse_link_messages(data: bytes | bytearray, into: dict[int, tuple[str, bool]],
                        end: int | None = None) -> tuple[bool, bool]:
    """Add `ifindex: (name, up)` of the links in one received buffer (up to `end`).

    Returns (the dump is complete, a link was removed meanwhile): a removal that overtakes
    the dump leaves a stale entry, so the caller asks again next time.
    """
    removed = False
    for kind, body, stop in messages(data, end):
        if kind == NLMSG_DONE:
            return True, removed
        if kind == RTM_DELLINK:
            removed = True
        elif kind == RTM_NEWLINK:  # the dump's answer, or a notification: both name the link
            _family, _pad, _type, ifindex, flags, _change = IFINFOMSG.unpack_from(data, body)
            for attr_type, start, value_end in attribute_spans(data, body + IFINFOMSG.size, stop):
                if attr_type == IFLA_IFNAME:
                    name = bytes(data[start:value_end]).split(b"\0", 1)[0].decode()
                    into[ifindex] = (name, bool(flags & IFF_UP))
                    break
    return False, removed


class _Part(NamedTuple):
    """One link's message in an answer: where it is, its bytes, and what was made of them."""

    offset: int
    message: bytes
    name: str
    reading: Reading


def answer_parts(answer: bytearray, snapshot: Snapshot) -> list[_Part] | None:
    """`answer` (one whole dump, NLMSG_DONE last) cut into its links' messages, each with the
    reading `snapshot` has of it; None when a message is not one link's counters of the
    expected layout or the answer does not end with its NLMSG_DONE.
    """
    by_index = {reading[1]: (name, reading) for name, reading in snapshot.items()}
    parts: list[_Part] = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(answer):
        length, kind = _HEADER.unpack_from(answer, offset)
        if kind == NLMSG_DONE:
            return parts if offset + length == len(answer) else None
        if kind != RTM_NEWSTATS or length < STATS_MESSAGE.size or length % 4:
            return None
        values = STATS_MESSAGE.unpack_from(answer, offset)
        named = by_index.get(values[2])
        if values[3] != IFLA_STATS_LINK_64 or named is None:
            return None
        parts.append(_Part(offset, bytes(answer[offset:offset + length]), *named))
        offset += length
    return None


class RtnlStatsReader:
    """Counters of every interface of the current network namespace via RTM_GETSTATS.

    One socket, subscribed to link notifications (RTNLGRP_LINK): they queue up beside the
    dumps' answers and are seen while those are read, so a sample costs one send and one
    or two receives. Interface names and up/down states are looked up (an RTM_GETLINK
    dump) only after such a notification or when an unknown ifindex shows up.

    An answer that is byte for byte the one before (the same links, no counter moved, no
    notification in between) is not parsed again: `read` returns the snapshot it made of
    it, the same object, which callers may test by identity and must not change. In an
    answer laid out like the one before, only the messages that differ are read: a link
    whose message did not change keeps its `Reading`, the same object as before.
    """

    name = "netlink"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.bind((0, RTMGRP_LINK))
        # Built once: every dump reads to its NLMSG_DONE, so no sequence number has to tell answers apart.
        self._stats_request = getstats_request(1)
        self._link_request = getlink_request(2)
        self._buffer = bytearray(65536)
        self._links: dict[int, tuple[str, bool]] = {}
        self._stale = True
        self._answer = bytearray()  # the last answer that came in one receive (empty: none to compare with)
        self._snapshot: Snapshot = {}  # made of `_answer`
        self._parts: list[_Part] | None = []  # `_answer`, message by message, but its NLMSG_DONE
        self._done = b""  # `_answer`'s NLMSG_DONE

    def _receive(self) -> int:
        while True:
            try:
                return self._sock.recv_into(self._buffer)
            except OSError as exc:
                self._lost_notifications(exc)

    def _lost_notifications(self, exc: OSError) -> None:
        if exc.errno != errno.ENOBUFS:
            raise exc
        self._stale = True  # notifications were lost: names and states may have changed

    def _refresh_links(self) -> None:
        links: dict[int, tuple[str, bool]] = {}
        self._stale = False
        self._sock.send(self._link_request)
        while True:
            done, removed = parse_link_messages(self._buffer, links, self._receive())
            self._stale |= removed
            if done:
                break
        self._links = links

    def read(self) -> Snapshot:
        # Every sample runs through here, so it calls as few Python functions as it can.
        sock, buffer, answer = self._sock, self._buffer, self._answer
        sock.send(self._stats_request)
        try:
            received = sock.recv_into(buffer)
        except OSError as exc:
            self._lost_notifications(exc)
            received = self._receive()
        if received == len(answer) and not self._stale:  # a link notification would have come first
            if buffer.startswith(answer):
                return self._snapshot
            snapshot = self._changed_messages_read()
            if snapshot is not None:
                self._answer, self._snapshot = buffer[:received], snapshot
                return snapshot
        by_index: dict[int, Counters] = {}
        done, changed = parse_stats_messages(buffer, by_index, received)
        answer = buffer[:received] if done else bytearray()  # kept before a link dump reuses the buffer
        while not done:
            done, more_changed = parse_stats_messages(buffer, by_index, self._receive())
            changed |= more_changed
        if changed:
            self._stale = True
        if self._stale or not by_index.keys() <= self._links.keys():
            self._refresh_links()
        links = self._links
        snapshot: Snapshot = {}
        for ifindex, counters in by_index.items():
            link = links.get(ifindex)
            if link is not None:  # else it appeared between the two dumps: it shows up next sample
                snapshot[link[0]] = _new(Reading, (counters, ifindex, link[1]))
        # A link left out must be looked up next time, so this answer is not one to compare with.
        self._parts = answer_parts(answer, snapshot) if len(snapshot) == len(by_index) else None
        self._answer, self._done = bytearray(), b""
        if self._parts is not None:  # the NLMSG_DONE follows the last link's message
            last = self._parts[-1] if self._parts else None
            self._answer, self._done = answer, bytes(answer[last.offset + len(last.message) if last else 0:])
        self._snapshot = snapshot
        return snapshot

    def _changed_messages_read(self) -> Snapshot | None:
        """The snapshot of an answer as long as the one before, reading only the messages that
        differ; None when one of them is not the same link's counters in the same place.

        The answer's NLMSG_DONE, the same bytes every time, is at its end: the messages before
        it are as long as the answer before's, so they are where its parts are.
        """
        buffer, parts = self._buffer, self._parts
        snapshot: Snapshot = {}
        for number, (offset, message, name, reading) in enumerate(parts):
            if not buffer.startswith(message, offset):
                values = STATS_MESSAGE.unpack_from(buffer, offset)
                ifindex = reading[1]
                if values[:4] != (len(message), RTM_NEWSTATS, ifindex, IFLA_STATS_LINK_64):
                    return None
                reading = _new(Reading, (_new(Counters, values[4:]), ifindex, reading[2]))
                parts[number] = _new(_Part, (offset, bytes(buffer[offset:offset + len(message)]), name, reading))
            snapshot[name] = reading
        done = self._done
        return snapshot if buffer.startswith(done, len(self._answer) - len(done)) else None

    def close(self) -> None:
        self._sock.close()
