"""Choosing the counter reader: netlink's RTM_GETSTATS first, pyroute2, then `/proc/net/dev`."""

from __future__ import annotations

import logging

from mpstream.measurement.recorder.counters import PROC_NET_DEV, CounterReader, ProcNetDevReader, PyRoute2Reader
from mpstream.measurement.recorder.rtnl_stats import RtnlStatsReader

log = logging.getLogger(__name__)

SOURCES = ("auto", "netlink", "pyroute2", "proc")


def open_reader(source: str = "auto") -> CounterReader:
    """The reader for `source`; `auto` tries netlink (RTM_GETSTATS), pyroute2, then /proc/net/dev."""
    if source == "proc":
        return ProcNetDevReader()
    candidates = {"auto": ("netlink", "pyroute2"), "netlink": ("netlink",), "pyroute2": ("pyroute2",)}[source]
    for candidate in candidates:
        try:
            if candidate == "netlink":
                reader: CounterReader = RtnlStatsReader()
            else:
                reader = PyRoute2Reader()
            reader.read()
            return reader
        except Exception as exc:  # ImportError, OSError, netlink errors: all mean "try the next"
            if source != "auto":
                raise
            log.warning("%s counters unavailable: %s", candidate, exc)
    log.warning("reading counters from %s", PROC_NET_DEV)
    return ProcNetDevReader()
