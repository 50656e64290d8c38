"""Draw a report's figures side by side, one process per core.

matplotlib holds the GIL while it lays out and renders, so threads would not help; a run
with 20 nodes has 20 per-node figures (each written as PNG and SVG) and drawing them one
after the other was most of the time `mpstream report` took. A few figures are drawn in
this process: starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# Below this many figures the workers' start (an interpreter and matplotlib each) costs more.
PARALLEL_FROM = 6

Job = tuple[Callable[..., list[Path]], tuple, dict]


def draw_all(jobs: list[Job], workers: int | None = None) -> list[Path]:
    """Run every (function, args, kwargs) job; the written paths in the jobs' order."""
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers <= 1 or len(jobs) < PARALLEL_FROM:
        return [path for function, args, kwargs in jobs for path in function(*args, **kwargs)]
    # spawn, not fork: the caller may have threads (a test run, an embedding program).
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in jobs]
        return [path for future in futures for path in future.result()]
