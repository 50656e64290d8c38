"""Print this node's clock and what its kernel says of the clock's synchronisation (JSON).

`mpstream clock` prints one line: `time` (the node's wall clock, Unix seconds), whether an
NTP daemon (chrony, ntpd, systemd-timesyncd) keeps the kernel's clock synchronised, and the
kernel's own error bounds (adjtimex(2): `esterror_s`, the estimated error; `maxerror_s`, the
maximum error, which grows while nobody synchronises the clock). The failover role reads it
on every node at the start of a run, between two readings of the controller's clock, which
bound the node's offset to the controller (`mpstream.measurement.report.clocks`).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import time

STA_UNSYNC = 0x0040  # the kernel's clock is not synchronised (timex.status)
TIME_ERROR = 5  # adjtimex's answer when the clock is not synchronised
STATES = {0: "ok", 1: "leap second insert", 2: "leap second delete", 3: "leap second in progress",
          4: "leap second has occurred", TIME_ERROR: "not synchronised"}


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h>; only reading, so only the leading fields matter."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time", _Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
                ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long),
                ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int), ("_reserved", ctypes.c_int * 11)]


def kernel_state(answer: int, status: int, maxerror_us: int, esterror_us: int) -> dict:
    """What adjtimex's answer and fields say, in the report's words."""
    return {
        "synchronized": answer != TIME_ERROR and not status & STA_UNSYNC,
        "state": STATES.get(answer, f"unknown ({answer})"),
        "maxerror_s": maxerror_us / 1e6,
        "esterror_s": esterror_us / 1e6,
    }


def read() -> dict:
    """The node's clock now, and the kernel's view of it (modes 0: adjtimex only reads)."""
    timex = _Timex()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    answer = libc.adjtimex(ctypes.byref(timex))
    now = time.time()
    if answer < 0:
        return {"time": now, "synchronized": None, "state": f"adjtimex failed (errno {ctypes.get_errno()})"}
    return {"time": now, **kernel_state(answer, timex.status, timex.maxerror, timex.esterror)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`mpstream clock` takes no options."""


def run(args: argparse.Namespace) -> int:
    print(json.dumps(read()))
    return 0


if __name__ == "__main__":  # `python -m mpstream.measurement.clock`: the same without the command's other imports
    raise SystemExit(run(argparse.Namespace()))
