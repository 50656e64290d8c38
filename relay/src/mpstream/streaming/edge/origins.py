"""Which origin an edge pulls from next (pure: no sockets, no clock).

Origins are tried in the order given. An edge stays with the origin that works (a switch
costs its players a repeated part of a GOP) and moves to the next one in the list when it
fails, wrapping around; after every origin has failed in a row it pauses before the next
round, so that a stream nobody publishes anywhere does not spin.
"""

from __future__ import annotations

from mpstream.streaming.rtmp.url import parse_rtmp_url


def pull_url(origin: str, app: str, stream: str) -> str:
    """The URL to play `stream` from `origin` (rtmp://HOST[:PORT][/APP]; without APP the player's app)."""
    url = parse_rtmp_url(origin)
    return f"rtmp://{url.hostport}/{url.app or app}/{stream}"


class OriginRotation:
    def __init__(self, origins: tuple[str, ...] | list[str], retry_s: float):
        if not origins:
            raise ValueError("an edge needs at least one origin")
        self.origins = tuple(origins)
        self.retry_s = retry_s
        self.index = 0
        self.failed_in_row = 0  # connections in a row that delivered no media

    @property
    def current(self) -> str:
        return self.origins[self.index]

    def failed(self, delivered: bool) -> float:
        """The current origin's connection ended; move on. Returns the pause before the next attempt."""
        self.failed_in_row = 0 if delivered else self.failed_in_row + 1
        self.index = (self.index + 1) % len(self.origins)
        if self.failed_in_row >= len(self.origins):
            self.failed_in_row = 0
            return self.retry_s
        return 0.0
