"""Figures drawn side by side in worker processes: every job runs once, paths in the jobs' order."""

from __future__ import annotations

import os
from pathlib import Path

from mpstream.measurement.report.figures import PARALLEL_FROM, draw_all


def write_pid(stem: Path, text: str) -> list[Path]:
    path = stem.with_suffix(".txt")
    path.write_text(f"{text} {os.getpid()}")
    return [path]


def test_many_figures_are_drawn_by_workers_in_order(tmp_path):
    jobs = [(write_pid, (tmp_path / f"figure{i}",), {"text": str(i)}) for i in range(PARALLEL_FROM + 2)]
    written = draw_all(jobs, workers=2)
    assert written == [tmp_path / f"figure{i}.txt" for i in range(PARALLEL_FROM + 2)]
    texts = [p.read_text().split() for p in written]
    assert [t[0] for t in texts] == [str(i) for i in range(PARALLEL_FROM + 2)]
    assert str(os.getpid()) not in {t[1] for t in texts}  # not drawn in this process


def test_a_few_figures_are_drawn_here(tmp_path):
    written = draw_all([(write_pid, (tmp_path / "only",), {"text": "x"})], workers=2)
    assert written[0].read_text() == f"x {os.getpid()}"
