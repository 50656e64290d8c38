"""Which application and stream names the relay accepts.

Streams are kept apart by the pair (app, stream), never by a joined string, so app
"live/x" + stream "s" and app "live" + stream "x/s" are different streams; an app with
segments ("live/x", as ffmpeg sends for rtmp://host/live/x/s) falls under the policy
of its first segment (see `RelayConfig.policy`).
"""

from __future__ import annotations


def _printable(name: str) -> bool:
    return name.isprintable() and name == name.strip()


def app_problem(app: str, max_length: int) -> str | None:
    """None when `app` is a usable application name, else what is wrong with it."""
    if not app:
        return "empty application name"
    if len(app) > max_length:
        return f"application name longer than {max_length} characters"
    if not _printable(app):
        return "application name with control characters or outer spaces"
    if any(part in ("", ".", "..") for part in app.split("/")):
        return "application name with an empty, '.' or '..' segment"
    return None


def stream_problem(name: str, max_length: int) -> str | None:
    """None when `name` is a usable stream name (without its query string), else what is wrong."""
    if not name:
        return "empty stream name"
    if len(name) > max_length:
        return f"stream name longer than {max_length} characters"
    if not _printable(name):
        return "stream name with control characters or outer spaces"
    return None
