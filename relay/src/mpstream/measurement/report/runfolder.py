"""Reading a run folder (`results/<run-id>/`) as the failover playbook writes it.

    meta.json                 run metadata (inventory, kernel, sysctls, versions ...)
    schedule.json             the planned switches (`mpstream-schedule/1`) and where each
                              switcher's record lies ("switchers": name -> relative path)
    nodes/<NODE>/switches.jsonl, routers/switches.jsonl
                              when each switch really took effect (`mpstream outage schedule`)
    timeline.json             written by the report from the two above (`mpstream-timeline/2`);
                              older runs have only a planned one: {"t0", "phases": [{"name",
                              "down", "start", "end"}]}
    nodes/<NODE>/rates.csv    `mpstream record` output (bwm-ng CSV)
    nodes/<NODE>/player.json  `mpstream play --json` summary (client nodes)
    nodes/<NODE>/edge-streams.json  an edge relay's /streams at the players' end (edge nodes)

What a node stamped by its own clock is placed on the controller's, by the offset the run
measured (`place_on_controller_clock`). Every file is optional; what is missing is reported
as a note (and, where it makes the numbers untrustworthy, as a reason for invalidity by the
report), not as an error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from mpstream.measurement.recorder.csvformat import CSVFormatError, parse_text
from mpstream.measurement.report import clocks
from mpstream.measurement.report.analysis import NodeData
from mpstream.measurement.report.edges import EDGE_STREAMS_FILE
from mpstream.measurement.report.timeline import RecordSource

log = logging.getLogger(__name__)


@dataclass
class Run:
    path: Path
    meta: dict = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)  # as found in the folder
    schedule: dict | None = None
    records: dict[str, RecordSource] = field(default_factory=dict)  # switcher -> its record
    nodes: dict[str, NodeData] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)


def _read_json(path: Path, notes: list[str]) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} could not be read: {exc}")
        return None
    if not isinstance(value, dict):
        notes.append(f"{path.name} is not a JSON object")
        return None
    return value


def _read_records(root: Path, schedule: dict, notes: list[str]) -> dict[str, RecordSource]:
    switchers = schedule.get("switchers") or {}
    if not isinstance(switchers, dict):
        notes.append("schedule.json: switchers is not an object (switcher name -> record path)")
        return {}
    records = {}
    for name, relative in switchers.items():
        path = root / str(relative)
        try:
            text = path.read_bytes().decode("utf-8", errors="replace") if path.is_file() else None
        except OSError as exc:
            notes.append(f"{relative} could not be read: {exc}")
            text = None
        records[str(name)] = RecordSource(str(relative), text)
    return records


def _read_edge_streams(node_dir: Path, notes: list[str]) -> object:
    """An edge's saved /streams (a JSON list); None where the node saved none."""
    path = node_dir / EDGE_STREAMS_FILE
    if not path.is_file():
        if (node_dir / "edge-streams.err").is_file():  # the edge tried and failed: say why
            why = (node_dir / "edge-streams.err").read_text(encoding="utf-8", errors="replace").strip()
            notes.append(f"{node_dir.name}: its relay's streams were not saved: {why.splitlines()[-1] if why else '?'}")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{node_dir.name}/{EDGE_STREAMS_FILE} could not be read: {exc}")
        return None


def load_run(path: str | Path) -> Run:
    """Everything the report needs from `path`; raises FileNotFoundError if it is no folder."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no run folder at {root}")
    run = Run(root)
    run.meta = _read_json(root / "meta.json", run.notes) or {}
    if not (root / "meta.json").is_file():
        run.notes.append("meta.json is missing: no inventory, providers are the interface names")
    run.schedule = _read_json(root / "schedule.json", run.notes)
    if run.schedule is not None:
        run.records = _read_records(root, run.schedule, run.notes)
    run.timeline = _read_json(root / "timeline.json", run.notes) or {}
    if run.schedule is None and not (root / "timeline.json").is_file():
        run.notes.append("schedule.json and timeline.json are missing: the whole recording is one phase")
    nodes_dir = root / "nodes"
    for node_dir in sorted(p for p in nodes_dir.iterdir() if p.is_dir()) if nodes_dir.is_dir() else []:
        data = NodeData()
        rates = node_dir / "rates.csv"
        if rates.is_file():
            try:
                data.rows = parse_text(rates.read_text(encoding="ascii", errors="replace"))
            except CSVFormatError as exc:
                run.notes.append(f"{node_dir.name}/rates.csv is not recorder CSV: {exc}")
        else:
            run.notes.append(f"{node_dir.name} has no rates.csv")
        data.player = _read_json(node_dir / "player.json", run.notes)
        data.edge_streams = _read_edge_streams(node_dir, run.notes)
        run.nodes[node_dir.name] = data
    if not run.nodes:
        run.notes.append("no node data under nodes/")
    place_on_controller_clock(run)
    return run


def place_on_controller_clock(run: Run) -> None:
    """Shift what each node stamped by its own clock onto the controller's, by the correction
    the run allowed for (see `clocks`); players' latencies (arrival on the player's clock
    minus sending on the publisher's) by the difference of the two corrections."""
    corrections = clocks.corrections(run.meta)
    publisher = clocks.publisher_correction(run.meta)
    for node, data in run.nodes.items():
        correction = corrections.get(node, 0.0)
        if correction:
            data.rows = [replace(row, timestamp=row.timestamp - correction) for row in data.rows]
        if not data.player:
            continue
        for key in ("started_at", "ended_at"):
            if correction and isinstance(data.player.get(key), int | float):
                data.player[key] -= correction
        if publisher is None:
            run.notes.append(f"{node}: latencies as measured, on two clocks (push nodes with different corrections)")
        elif correction != publisher:
            for key in ("latency_ms", "display_latency_ms"):
                figures = data.player.get(key) or {}
                for quantile in ("p50", "p95", "p99", "max"):
                    if isinstance(figures.get(quantile), int | float):
                        figures[quantile] = round(figures[quantile] - (correction - publisher) * 1000, 1)
