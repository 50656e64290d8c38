"""Switches that wait for their time, registered so that restoring can cancel them.

A process that will switch later leaves a mark `PENDING_DIR/<namespace inode>.<pid>` for
every namespace it will act in. `mpstream outage clear` (without --at) terminates every
process marked in its namespace and waits until they are gone, so that nothing they had
started can land after the restore: restoring wins over anything scheduled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator

PENDING_DIR = "/run/mpstream-outage"
CANCEL_WAIT_S = 5.0  # how long a clear waits for the cancelled switchers to be gone


def netns_key(netns: str | None) -> int:
    """The namespace's inode: the same for `--netns NAME` and for a process inside it."""
    return os.stat(f"/run/netns/{netns}" if netns else "/proc/self/ns/net").st_ino


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot): with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@contextlib.contextmanager
def registered(targets: Iterable[str | None]) -> Iterator[None]:
    """Marks for this process in the namespaces `targets` (None: its own), removed on every exit
    but SIGKILL; a mark holds the process's start time, so that a mark left behind never gets
    another process that was given the same pid terminated."""
    os.makedirs(PENDING_DIR, exist_ok=True)
    marks = sorted({os.path.join(PENDING_DIR, f"{netns_key(ns)}.{os.getpid()}") for ns in targets})
    started = _start_time(os.getpid()) or ""
    try:
        for mark in marks:
            with open(mark, "w") as file:
                file.write(started)
        yield
    finally:
        for mark in marks:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(mark)


def wait_until(at: float | None, targets: list[str | None]) -> None:
    """Sleep until the wall-clock time `at`, registered as pending so that an immediate
    `clear` (the cleanup of an interrupted run) can cancel the switch."""
    if at is None:
        return
    # A shell starts background commands with SIGINT ignored; Ctrl-C must cancel a wait.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with registered(targets):
        while (left := at - time.time()) > 0:
            time.sleep(min(left, 1.0))


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie has finished: it only waits for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cancel_pending(netns: str | None) -> int:
    """Stop every switch still waiting for its time in this namespace; how many there were.
    Returns once they are gone (at most CANCEL_WAIT_S)."""
    key = f"{netns_key(netns)}."
    stopped = []
    for name in os.listdir(PENDING_DIR) if os.path.isdir(PENDING_DIR) else ():
        if name.startswith(key) and (pid := int(name[len(key):])) != os.getpid():
            mark = os.path.join(PENDING_DIR, name)
            try:
                with open(mark) as file:
                    started = file.read().strip()
            except FileNotFoundError:
                continue  # another clear took care of it
            if not started or started == _start_time(pid):  # empty: an older mark, without its start time
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                    stopped.append(pid)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(mark)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while any(_alive(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(stopped)
