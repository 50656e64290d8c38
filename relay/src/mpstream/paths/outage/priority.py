"""Real-time scheduling for the few milliseconds around a switch.

On a busy node an ordinary process woken at the instant waits behind everything runnable:
measured on 2 loaded cores (load 35), the transaction took 35-48 ms median (up to 105 ms)
with ordinary scheduling and 9-12 ms median (max 19 ms) with the scheduler and its nft at
SCHED_FIFO. The lowest real-time priority is enough: it only has to come before ordinary
processes. Both sleep almost all the time, and the kernel's real-time throttling bounds them
anyway. Where real-time scheduling is not allowed (no CAP_SYS_NICE) the switch still
happens, only with ordinary latency.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

REALTIME = os.sched_param(1)  # the lowest SCHED_FIFO priority


def make_urgent(pid: int) -> bool:
    """Run `pid` at real-time priority; False where that is not allowed."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, REALTIME)
    except OSError:
        return False
    return True


def can_be_urgent() -> bool:
    """Whether this process may switch itself to real-time priority (tried and undone)."""
    with urgent() as allowed:
        return allowed


@contextlib.contextmanager
def urgent() -> Iterator[bool]:
    """This process at real-time priority for the block (yields whether it got it), then
    back to the policy it had."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    allowed = make_urgent(0)
    try:
        yield allowed
    finally:
        if allowed:
            os.sched_setscheduler(0, policy, param)
