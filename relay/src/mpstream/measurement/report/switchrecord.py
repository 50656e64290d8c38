"""Reading one switcher's record (`mpstream outage schedule --record`): JSON lines, pure.

    {"event": "start", "run_id": ..., "pid": ..., "host": ..., "clock": ...}
    {"event": "switch", "phase": 1, "name": "isp2 down", "netns": null, "nics": ["nic2"],
     "forwarding": false, "planned": ..., "actual": ..., "lag_s": ..., "ok": true, "error": null,
     "mib": {"MPTcpExtMPJoinSynRx": 3, ...},   (optional: the node's MPTcpExt counters then)
     "delivered": {"nic1": 123456, ...},       (optional: bytes each NIC had let in by then)
     "delivered_before": {"nic1": 120000, ...},  (optional: ... shortly before the switch)
     "timed_by": "commit", "nft_returned": ...,  (optional: `actual` is the kernel's notice of the
                                                commit, or "exit": nft's exit, an upper bound)
     "unchanged": true}                        (optional: no transaction was needed, the state
                                                held already at `actual`, the instant)
    ... one line per switch and target ...
    {"event": "done"}  or  {"event": "cancelled", "at": ...}

A record can be cut short (the node died, the disk filled, the copy was interrupted): every
line that parses is used, the rest is counted, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SwitchEvent:
    """One switch at one target, as the switcher saw it."""

    phase: int
    name: str
    netns: str | None
    nics: tuple[str, ...]
    forwarding: bool
    planned: float | None
    actual: float | None  # when the change had taken effect (None: it did not)
    ok: bool
    error: str | None
    # the node's MPTcpExt counters right after the switch took effect (None: not recorded)
    mib: tuple[tuple[str, int], ...] | None = None
    # bytes each counted NIC had delivered to the node right after the switch (None: not counted)
    delivered: tuple[tuple[str, int], ...] | None = None
    # ... and shortly before it (None: not read)
    delivered_before: tuple[tuple[str, int], ...] | None = None
    unchanged: bool = False  # nothing to change: its `actual` is the instant, not a transaction's end
    # what gave `actual`: "commit" (the kernel's notice of the transaction's commit), "exit"
    # (nft's exit, an upper bound) or None (not said: records before commit notices were read)
    timed_by: str | None = None


@dataclass
class Record:
    run_id: str | None = None
    host: str | None = None
    injected_lag_s: float | None = None  # the switcher delayed every switch on purpose (a fault-injection test)
    started: bool = False
    switches: list[SwitchEvent] = field(default_factory=list)
    done: bool = False
    cancelled_at: float | None = None
    cancelled: bool = False
    bad_lines: list[int] = field(default_factory=list)  # 1-based numbers of lines that are no JSON object
    cut: bool = False  # the last line is incomplete

    @property
    def finished(self) -> bool:
        return self.done or self.cancelled


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _switch(line: dict) -> SwitchEvent | None:
    phase = line.get("phase")
    if isinstance(phase, bool) or not isinstance(phase, int):
        return None
    actual = _number(line.get("actual"))
    ok = line.get("ok") is True and actual is not None
    error = line.get("error")
    if line.get("ok") is True and actual is None:
        error = "recorded as done but without the time it took effect"
    netns = line.get("netns")
    return SwitchEvent(
        phase=phase, name=str(line.get("name") or ""), netns=str(netns) if netns is not None else None,
        nics=tuple(str(n) for n in line.get("nics") or ()), forwarding=bool(line.get("forwarding")),
        planned=_number(line.get("planned")), actual=actual, ok=ok,
        error=None if error is None else " ".join(str(error).split()),  # nft errors span lines
        mib=_counters(line.get("mib")), delivered=_counters(line.get("delivered")),
        delivered_before=_counters(line.get("delivered_before")), unchanged=line.get("unchanged") is True,
        timed_by=line.get("timed_by") if line.get("timed_by") in ("commit", "exit") else None,
    )


def _counters(value) -> tuple[tuple[str, int], ...] | None:
    """A snapshot of counters (`mib`, `delivered`, `delivered_before`) as (name, value) pairs; entries that are no
    whole number are left out."""
    if not isinstance(value, dict):
        return None
    return tuple(sorted((str(k), int(v)) for k, v in value.items()
                        if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()))


def parse_record(text: str) -> Record:
    record = Record()
    lines = text.split("\n")
    complete = text.endswith("\n")
    if complete:
        lines.pop()  # the empty string after the final newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            if number == len(lines) and not complete:
                record.cut = True
            else:
                record.bad_lines.append(number)
            continue
        event = line.get("event")
        if event == "start":
            record.started = True
            record.run_id = None if line.get("run_id") is None else str(line["run_id"])
            record.host = None if line.get("host") is None else str(line["host"])
            record.injected_lag_s = _number(line.get("injected_lag_s"))
        elif event == "switch":
            switch = _switch(line)
            if switch is None:
                record.bad_lines.append(number)
            else:
                record.switches.append(switch)
        elif event == "done":
            record.done = True
        elif event == "cancelled":
            record.cancelled = True
            record.cancelled_at = _number(line.get("at"))
    return record
