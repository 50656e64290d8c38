"""rtmp:// URLs, parsed the way ffmpeg and librtmp do: the first path segment is the app.

    parse_rtmp_url("rtmp://[2001:db8::1]:1936/live/cam?key=s")
    -> RtmpUrl(host="2001:db8::1", port=1936, app="live", stream="cam?key=s",
               tc_url="rtmp://[2001:db8::1]:1936/live")
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 1935


@dataclass(frozen=True)
class RtmpUrl:
    host: str
    port: int
    app: str
    stream: str  # the stream name with its query string (publish keys travel there)
    tc_url: str

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_rtmp_url(url: str) -> RtmpUrl:
    parts = urlsplit(url)
    if parts.scheme.lower() != "rtmp":
        raise ValueError(f"not an rtmp:// URL: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"rtmp URL without a host: {url!r}")
    port = parts.port or DEFAULT_PORT
    path = parts.path.lstrip("/")
    app, _, stream = path.partition("/")
    if parts.query:
        stream = f"{stream}?{parts.query}"
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return RtmpUrl(host, port, app, stream, f"rtmp://{hostport}/{app}")
