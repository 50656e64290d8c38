"""The run's timeline from its schedule and what every switcher recorded (pure).

`schedule.json` (the controller's plan) says when each switch should take effect: switch k
(k = 0 .. n-1) starts phase k at `phases[k].start`; a last switch `end` (index n) brings every
provider back at the last phase's end. Each switcher (a node's `mpstream outage schedule`, or
the one for the testbed's provider routers) records when each of its switches really took
effect, one line per switch and target (see `switchrecord`).

A phase really starts when its switch has taken effect everywhere: at the LATEST actual time
of that switch over all switchers and targets; it ends when the next phase starts. The
phases the analysis slices traffic by are these actual ones. Where nothing recorded a switch
the planned time stands in, and that alone makes the run invalid.

Every reason for invalidity is one line that names the node (or `run`) and the figure.
Times in reasons are seconds from t0 (`+12.0 s`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpstream.measurement.report.stats import natural_key, percentile, seconds, sorted_unique
from mpstream.measurement.report.switchrecord import Record, SwitchEvent, parse_record

FORMAT = "mpstream-timeline/2"
SCHEDULE_FORMAT = "mpstream-schedule/1"
DEFAULT_TOLERANCE_S = 0.1
# a record whose planned instant differs from the schedule's by more than this got another plan
PLAN_MISMATCH_S = 0.001
LEGACY_REASON = "run: no record of when the switches took effect (planned times only)"


class ScheduleError(ValueError):
    """schedule.json cannot be used (its message names the field)."""


@dataclass(frozen=True)
class PlannedSwitch:
    index: int  # phase index; len(phases) for the final switch
    name: str
    at: float
    final: bool

    def target(self) -> str:
        """What the switch leads to, for people: phase numbers count from 1 as in report.md."""
        if self.final:
            return "the end (every provider back)"
        return f"phase {self.index + 1} '{self.name}'"

    def describe(self) -> str:
        return f"switch to {self.target()}"


@dataclass(frozen=True)
class RecordSource:
    """A switcher's record as found in the run folder (`text` None: the file is missing)."""

    path: str
    text: str | None


def _float(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScheduleError(f"schedule.json: {field} must be a number (unix seconds), not {value!r}")
    return float(value)


def planned_switches(schedule: dict) -> list[PlannedSwitch]:
    """The switches the schedule plans, in order (raises ScheduleError for a malformed schedule)."""
    phases = schedule.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ScheduleError("schedule.json: phases must be a non-empty list")
    switches = []
    for index, phase in enumerate(phases):
        if not isinstance(phase, dict):
            raise ScheduleError(f"schedule.json: phases[{index}] must be an object")
        switches.append(PlannedSwitch(index, str(phase.get("name") or f"phase {index + 1}"),
                                      _float(phase.get("start"), f"phases[{index}].start"), False))
    last = len(phases) - 1
    switches.append(PlannedSwitch(len(phases), "end", _float(phases[last].get("end"), f"phases[{last}].end"), True))
    return switches


def _rel(t: float, t0: float) -> str:
    return f"{'+' if t >= t0 else '-'}{seconds(abs(t - t0))} s"


def _target(switcher: str, netns: str | None) -> str:
    return switcher if netns is None else f"{switcher} ({netns})"


@dataclass
class _Judged:
    """What one switcher's record says, against the plan."""

    entries: list[dict]
    taken: dict[int, list[float]]  # switch index -> when it took effect (ok switches only)
    lags: list[tuple[float, str, PlannedSwitch]]  # (lag, target, switch) of the transactions
    unchanged: int  # switches whose state held already: their lag says nothing of a switcher's speed
    by_commit: int  # transactions timed by the kernel's notice of their commit (the others by nft's exit)
    reasons: list[str]
    notes: list[str]


def _judge_record(switcher: str, source: RecordSource, run_id: str | None, plan: list[PlannedSwitch],
                  t0: float, tolerance: float, interrupted_at: float | None) -> _Judged:
    judged = _Judged([], {}, [], 0, 0, [], [])
    if source.text is None:
        judged.reasons.append(f"{switcher}: no record of its switches ({source.path} is missing)")
        return judged
    record = parse_record(source.text)
    if not record.started and not record.switches:
        judged.reasons.append(f"{switcher}: its record {source.path} holds no switcher start and no switch")
        return judged
    if run_id is not None and record.run_id is not None and record.run_id != run_id:
        judged.reasons.append(f"{switcher}: its record {source.path} is of run {record.run_id}, not {run_id}")
        return judged
    by_index = {s.index: s for s in plan}
    targets = {e.netns for e in record.switches} or {None}
    seen: dict[int, set[str | None]] = {}
    for event in record.switches:
        switch = by_index.get(event.phase)
        target = _target(switcher, event.netns)
        if switch is None:
            judged.reasons.append(f"{target}: its record has a switch to phase index {event.phase}, "
                                  f"which the schedule does not plan")
            continue
        seen.setdefault(switch.index, set()).add(event.netns)
        judged.entries.append(_entry(event, switch))
        if event.planned is not None and abs(event.planned - switch.at) > PLAN_MISMATCH_S:
            judged.reasons.append(f"{target}: its plan put the {switch.describe()} at {_rel(event.planned, t0)}, "
                                  f"the schedule at {_rel(switch.at, t0)}")
        if not event.ok:
            judged.reasons.append(f"{target}: the {switch.describe()} failed: {event.error or 'no error given'}")
            continue
        lag = event.actual - switch.at
        judged.taken.setdefault(switch.index, []).append(event.actual)
        if event.unchanged:
            judged.unchanged += 1
        else:
            judged.lags.append((lag, target, switch))
            judged.by_commit += event.timed_by == "commit"
        if lag > tolerance:
            judged.reasons.append(f"{target}: {switch.describe()} took effect {lag:.3f} s late "
                                  f"(tolerance {tolerance:.3f} s)")
        elif lag < -tolerance:
            judged.reasons.append(f"{target}: {switch.describe()} took effect {-lag:.3f} s early "
                                  f"(tolerance {tolerance:.3f} s)")
    # Switches after the switcher was cancelled or the run interrupted were never due: those
    # events have reasons of their own.
    stops = [t for t in (record.cancelled_at, interrupted_at) if t is not None]
    if record.cancelled and record.cancelled_at is None:
        stops.append(float("-inf"))
    cutoff = min(stops, default=None)
    cause = _cause(record, source.path)
    for netns in sorted(targets, key=lambda n: natural_key(n or "")):
        missing = [s for s in plan if netns not in seen.get(s.index, set())
                   and (cutoff is None or s.at <= cutoff)]
        if missing:
            word = "switches" if len(missing) > 1 else "switch"
            judged.reasons.append(f"{_target(switcher, netns)}: no record of the {word} to "
                                  f"{', '.join(s.target() for s in missing)}{cause}")
    not_made = [s for s in plan if all(netns not in seen.get(s.index, set()) for netns in targets)]
    if record.cancelled and not_made:
        when = "" if record.cancelled_at is None else f" at {_rel(record.cancelled_at, t0)}"
        judged.reasons.append(f"{switcher}: its switcher was cancelled{when}, before the {not_made[0].describe()} "
                              f"(planned {_rel(not_made[0].at, t0)}); {len(not_made)} switch"
                              f"{'es' if len(not_made) > 1 else ''} not made")
    if record.injected_lag_s:
        judged.notes.append(f"{switcher}: its switches were delayed on purpose by {record.injected_lag_s:g} s "
                            f"(injected lag)")
    if record.bad_lines:
        judged.notes.append(f"{switcher}: {source.path} has {len(record.bad_lines)} unreadable line(s) "
                            f"(line {record.bad_lines[0]} first)")
    if not record.finished and not not_made:
        # every switch is there, so the numbers stand; the switcher's end is still worth a look
        judged.notes.append(f"{switcher}: {source.path} records every switch but ends without 'done'"
                            + (" (its last line is cut)" if record.cut else ""))
    return judged


def _cause(record: Record, path: str) -> str:
    if record.cut:
        return f" ({path} is truncated: its last line is cut)"
    if not record.finished:
        return f" ({path} ends without 'done': the switcher stopped early)"
    return ""


def _entry(event: SwitchEvent, switch: PlannedSwitch) -> dict:
    entry = {
        "phase": switch.index, "name": event.name or switch.name, "netns": event.netns, "nics": list(event.nics),
        "forwarding": event.forwarding, "planned": switch.at, "actual": event.actual,
        "lag_s": None if event.actual is None else round(event.actual - switch.at, 6),
        "ok": event.ok, "error": event.error,
    }
    if event.mib is not None:
        entry["mib"] = dict(event.mib)
    if event.delivered is not None:
        entry["delivered"] = dict(event.delivered)
    if event.delivered_before is not None:
        entry["delivered_before"] = dict(event.delivered_before)
    if event.timed_by is not None:
        entry["timed_by"] = event.timed_by
    if event.unchanged:
        entry["unchanged"] = True
    return entry


def lag_figures(lags: list[tuple[float, str, PlannedSwitch]], unchanged: int = 0, by_commit: int = 0) -> dict:
    """p50, p99, max and count of the switch lags (transactions only), and where the worst one
    was; `unchanged`: how many switches more needed no transaction; `by_commit`: how many of
    the transactions were timed by the kernel's notice of their commit (the rest by nft's exit)."""
    values = [lag for lag, _, _ in lags]
    figures = {"p50": None, "p99": None, "max": None, "count": len(values), "worst": None, "unchanged": unchanged,
               "by_commit": by_commit}
    if values:
        worst_lag, worst_target, worst_switch = max(lags, key=lambda item: item[0])
        figures.update(p50=round(percentile(values, 50), 6), p99=round(percentile(values, 99), 6),
                       max=round(worst_lag, 6),
                       worst={"node": worst_target, "phase": worst_switch.index, "name": worst_switch.name,
                              "switch": worst_switch.describe(), "lag_s": round(worst_lag, 6)})
    return figures


def build_timeline(schedule: dict, records: dict[str, RecordSource]) -> dict:
    """The timeline (format 2) of a run; `records`: switcher name -> its record as found."""
    if schedule.get("format", SCHEDULE_FORMAT) != SCHEDULE_FORMAT:
        raise ScheduleError(f"schedule.json: format {schedule.get('format')!r} is not {SCHEDULE_FORMAT}")
    plan = planned_switches(schedule)
    t0 = _float(schedule.get("t0", plan[0].at), "t0")
    tolerance = _float(schedule.get("tolerance_s", DEFAULT_TOLERANCE_S), "tolerance_s")
    interrupted_at = schedule.get("interrupted_at")
    interrupted_at = None if interrupted_at is None else _float(interrupted_at, "interrupted_at")
    run_id = None if schedule.get("run_id") is None else str(schedule["run_id"])
    reasons: list[str] = []
    notes: list[str] = []
    taken: dict[int, list[float]] = {}
    lags: list[tuple[float, str, PlannedSwitch]] = []
    unchanged = by_commit = 0
    switches: dict[str, list[dict]] = {}
    if not records:
        reasons.append("run: the schedule names no switchers, so nothing recorded when the switches took effect")
    for switcher in sorted(records, key=natural_key):
        judged = _judge_record(switcher, records[switcher], run_id, plan, t0, tolerance, interrupted_at)
        switches[switcher] = judged.entries
        reasons += judged.reasons
        notes += judged.notes
        lags += judged.lags
        unchanged += judged.unchanged
        by_commit += judged.by_commit
        for index, times in judged.taken.items():
            taken.setdefault(index, []).extend(times)
    if interrupted_at is not None:
        during = next((s for s in reversed(plan) if s.at <= interrupted_at and not s.final), None)
        where = f", during phase {during.index + 1} '{during.name}'" if during else ", before the first phase"
        if interrupted_at < plan[-1].at:
            reasons.append(f"run: interrupted at {_rel(interrupted_at, t0)}{where} "
                           f"(the schedule ends at {_rel(plan[-1].at, t0)})")
    starts = [_actual_start(s, taken, interrupted_at) for s in plan]
    phases = []
    for k, raw in enumerate(schedule["phases"]):
        start = starts[k]
        end = starts[k + 1]
        if start is not None and end is None and interrupted_at is not None:
            end = max(start, interrupted_at)  # the clean-up restored every provider then
        if start is not None and end is not None and end < start:
            end = start  # the next switch landed before this one was complete: an empty phase
        phases.append({"name": plan[k].name, "down": list(raw.get("down") or []),
                       "planned_start": plan[k].at, "planned_end": _planned_end(raw, plan[k + 1].at),
                       "start": start, "end": end})
    return {
        "format": FORMAT, "run_id": run_id, "t0": t0, "tolerance_s": tolerance, "interrupted_at": interrupted_at,
        "phases": phases, "switches": switches, "lag_s": lag_figures(lags, unchanged, by_commit),
        "valid": not reasons, "reasons": sorted_unique(reasons), "notes": sorted_unique(notes),
    }


def _planned_end(raw: dict, next_switch: float) -> float:
    end = raw.get("end")
    return float(end) if isinstance(end, int | float) and not isinstance(end, bool) else next_switch


def _actual_start(switch: PlannedSwitch, taken: dict[int, list[float]], interrupted_at: float | None) -> float | None:
    """When the switch had taken effect everywhere; planned where nobody recorded it; None if never due."""
    if taken.get(switch.index):
        return max(taken[switch.index])
    if interrupted_at is not None and switch.at > interrupted_at:
        return None
    return switch.at


def legacy_timeline(timeline: dict) -> dict:
    """A format-1 timeline (planned phases only): usable for slicing, never a valid measurement."""
    return {**timeline, "valid": False, "reasons": [LEGACY_REASON]}


def schedule_span(timeline: dict) -> tuple[float, float] | None:
    """[t0, end] the players and recorders had to cover: to the later of planned and actual end,
    or to the interruption."""
    phases = [p for p in timeline.get("phases") or [] if p.get("start") is not None or p.get("planned_start")]
    if timeline.get("t0") is None or not phases:
        return None
    t0 = float(timeline["t0"])
    ends = [float(p[key]) for p in phases for key in ("end", "planned_end") if p.get(key) is not None]
    starts = [float(p[key]) for p in phases for key in ("start", "planned_start") if p.get(key) is not None]
    if not ends:
        return None
    start, end = min([t0] + starts), max(ends)
    if timeline.get("interrupted_at") is not None:
        end = min(end, float(timeline["interrupted_at"]))
    return (start, end) if end > start else None  # interrupted before t0: nothing was due
