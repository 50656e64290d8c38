"""The open-files limit against max_connections: every connection is a file descriptor.

A systemd unit without LimitNOFILE gets a soft limit of 1024, below the default
max_connections; the soft limit may be raised up to the hard one without privileges.
"""

from __future__ import annotations

import resource

# Descriptors kept for everything else: listeners, the stats API (32 at most), logs, the event
# loop, and sockets between accept and admission (up to 128 per listener and loop round are
# accepted before the oldest silent ones are closed for them).
RESERVE = 256
_CEILING = 1 << 20  # what we ask for when the hard limit is unlimited


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else _CEILING


def connection_capacity(open_files: int, reserve: int = RESERVE) -> int:
    """Connections that fit under `open_files` descriptors with `reserve` kept back (at least 1)."""
    return max(1, open_files - reserve)
