"""The relay's event loop: uvloop where installed, asyncio's own loop without it."""

from __future__ import annotations

import asyncio
import sys

from mpstream.streaming.relay import eventloop


async def loop_kind() -> int:
    await asyncio.sleep(0)
    return 1 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 0


def test_uvloop_runs_the_relay_where_it_is_installed():
    assert eventloop.loop_factory() is not None  # the controller's environment has the extra `fast`
    assert eventloop.run(loop_kind()) == 1


def test_without_uvloop_the_relay_runs_on_asyncios_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what a node without the extra sees: ImportError
    assert eventloop.loop_factory() is None
    assert eventloop.run(loop_kind()) == 0
