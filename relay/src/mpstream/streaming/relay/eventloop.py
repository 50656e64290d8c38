"""The event loop the relay runs on: uvloop (libuv, its transports in C) when it is installed.

The relay spends most of its time in the loop's select and in transport writes; uvloop does
both for about half of what the pure-Python loop costs. Without it (a platform it does not
build on) the relay runs on asyncio's own loop, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, int]) -> int:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
