"""RTMP flow control on the sending side: what the peer has acknowledged of what we sent.

We announce a window (Window Acknowledgement Size); the peer must then send an
Acknowledgement, the bytes it has received so far as a 32-bit counter that wraps, each
time it has received that many more (ffmpeg after half a window, librtmp after a tenth
of its Set Peer Bandwidth, our `ClientSession` after a whole one). What we wrote minus
what it acknowledged sits in socket buffers or unread in the peer: a peer that reads
keeps it near one window plus what is in flight, one that does not lets it grow with
everything we write. Pure bookkeeping, no sockets and no clock (times are passed in):

    acks = Acknowledgements(window=262144)
    acks.sent(len(data))                      # every byte written to the peer, handshake included
    acks.acknowledged(sequence)               # from its Acknowledgement messages (the session does it)
    acks.unacknowledged                       # bytes it has not confirmed
    acks.lagging_for(now, limit)              # seconds it has stayed more than `limit` bytes behind
"""

from __future__ import annotations

from mpstream.streaming.rtmp.handshake import SIZE

# C0/S0 + C1/S1 + C2/S2: sent before the chunk stream, and not counted in Acknowledgements.
HANDSHAKE_BYTES = 1 + 2 * SIZE
_WRAP = 1 << 32


class Acknowledgements:
    __slots__ = ("_lagging_since", "acks", "confirmed", "total_sent", "window")

    def __init__(self, window: int):
        if window <= 0:
            raise ValueError("the window must be positive")
        self.window = window  # the Window Acknowledgement Size we announced
        self.total_sent = 0  # bytes written to the peer, handshake included
        self.confirmed = 0  # of the chunk stream, what the peer has acknowledged (never beyond what we sent)
        self.acks = 0  # Acknowledgement messages received
        self._lagging_since: float | None = None

    @property
    def stream_sent(self) -> int:
        """Bytes of the chunk stream sent: what the peer's counter counts."""
        return max(0, self.total_sent - HANDSHAKE_BYTES)

    def sent(self, count: int) -> None:
        self.total_sent += count

    def acknowledged(self, sequence: int) -> None:
        """An Acknowledgement: `sequence` is the peer's received-bytes counter modulo 2**32.

        It is read as the value nearest to what we sent (a peer that counts the handshake, as
        librtmp does, is a little ahead: fully acknowledged, not four gigabytes behind)."""
        sent = self.stream_sent
        ahead = (sequence - sent) % _WRAP
        if ahead >= _WRAP // 2:
            ahead -= _WRAP  # behind what we sent, the usual case
        self.confirmed = max(self.confirmed, min(sent, sent + ahead))
        self.acks += 1

    @property
    def unacknowledged(self) -> int:
        """Bytes we sent that the peer has not acknowledged."""
        return self.stream_sent - self.confirmed

    def lagging_for(self, now: float, limit: int) -> float:
        """Seconds the peer has been more than `limit` bytes behind at every call, 0.0 when it is not now.

        Call it now and then (the relay's housekeeping): a peer that reads falls back under the
        limit with its next Acknowledgement and starts over."""
        if self.unacknowledged <= limit:
            self._lagging_since = None
            return 0.0
        if self._lagging_since is None:
            self._lagging_since = now
        return now - self._lagging_since
