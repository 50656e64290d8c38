"""`runs.csv`: one row per run x client, for pandas, R or a spreadsheet (pure text out).

Columns: `batch`, `run`, `valid`, `client`, `started`, `stall_count`, `stall_s`, `startup_s`,
`handover_to_phase<N>_s` for every phase change (N: the phase it leads to, counted from 1 as
in report.md), `down_share_phase<N>` for every phase with a provider down (that provider's
share of what the client received), and `reasons` (why the run is invalid, `; `-separated).
Empty: not known; `inf`: never (a player that never started, a handover that did not happen
within its phase). Invalid runs are in the file, marked `valid` False: filter on it.
`pandas.read_csv(path)` reads it without options.
"""

from __future__ import annotations

import csv
import io
import math

from mpstream.measurement.report.runfigures import ClientFigures

FIXED = ("batch", "run", "valid", "client", "started", "stall_count", "stall_s", "startup_s")


def handover_column(index: int) -> str:
    return f"handover_to_phase{index + 1}_s"


def down_share_column(index: int) -> str:
    return f"down_share_phase{index + 1}"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "inf" if math.isinf(value) else repr(round(value, 6))
    return str(value)


def runs_csv(rows: list[tuple[str, ClientFigures, list[str]]]) -> str:
    """`rows`: (batch or item label, the figures, the run's reasons)."""
    changes = sorted({k for _, f, _ in rows for k in f.handover_s})
    downs = sorted({k for _, f, _ in rows for k in f.down_share})
    header = list(FIXED) + [handover_column(k) for k in changes] + [down_share_column(k) for k in downs] + ["reasons"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for batch, f, reasons in rows:
        writer.writerow([_cell(v) for v in (
            batch, f.run, f.valid, f.client, f.started, f.stall_count, f.stall_s, f.startup_s,
            *(f.handover_s.get(k) for k in changes), *(f.down_share.get(k) for k in downs), "; ".join(reasons))])
    return out.getvalue()
