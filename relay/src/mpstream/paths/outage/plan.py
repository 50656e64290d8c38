"""A scenario's schedule for one node: the plan it is handed, and the lines of its record.

Pure: no clock, no nftables, no files. The plan (JSON, format `mpstream-schedule/1`) lists
switches, each at a Unix time, each with one target per network namespace:

    {"format": "mpstream-schedule/1", "run_id": "...", "expiry_s": 18.0, "lag_s": 0.0,
     "switches": [{"phase": 1, "name": "isp2 down", "at": 1764584108.0,
                   "apply": [{"netns": null, "nics": ["nic2"], "forwarding": false}]}, ...]}

A target with no NICs and no forwarding clears the outage in its namespace. `count`
(optional) names NICs of the scheduler's own namespace whose delivered bytes it reads right
after each switch (see `delivered`). `clock_offset_s` (optional, default 0) is how far this
node's clock is ahead of the controller's, which fixed the instants: the switcher waits until
its own clock shows an instant plus the offset, and records the controller's instants.
Every error names the field it is about, e.g. `switches[1].apply[0].nics[0]`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

FORMAT = "mpstream-schedule/1"
_IFNAME_MAX_BYTES = 15  # IFNAMSIZ - 1


class PlanError(ValueError):
    """The plan cannot be kept; the message names the bad field."""


@dataclass(frozen=True)
class Target:
    """What one namespace looks like after a switch."""

    netns: str | None  # None: the scheduler's own namespace
    nics: tuple[str, ...]
    forwarding: bool

    @property
    def clears(self) -> bool:
        return not self.nics and not self.forwarding


@dataclass(frozen=True)
class Switch:
    phase: int
    name: str
    at: float
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Plan:
    run_id: str
    expiry_s: float  # an applied outage removes itself this long after its planned instant
    lag_s: float  # fault injection: every switch is applied this much after its instant
    switches: tuple[Switch, ...]  # in the order of their instants
    count: tuple[str, ...] = ()  # NICs here whose delivered bytes each switch line carries
    # This node's clock minus the controller's, as the run measured it: instants in the plan
    # and the record are the controller's, the switcher waits by its own clock.
    clock_offset_s: float = 0.0

    def local(self, instant: float) -> float:
        """A controller instant on this node's clock."""
        return instant + self.clock_offset_s

    def controller(self, local: float) -> float:
        """An instant of this node's clock on the controller's."""
        return local - self.clock_offset_s

    def namespaces(self) -> list[str | None]:
        """Every namespace the plan acts in, once each, in the order they first appear."""
        return list(dict.fromkeys(t.netns for s in self.switches for t in s.targets))

    def interfaces(self) -> list[tuple[str, str | None]]:
        """Every (NIC, namespace) the plan names, once each."""
        named = [(nic, t.netns) for s in self.switches for t in s.targets for nic in t.nics]
        return list(dict.fromkeys(named + [(nic, None) for nic in self.count]))


def _number(value, field: str, minimum: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanError(f"{field}: expected a number, got {json.dumps(value)}")
    if value < minimum or (not inclusive and value == minimum):
        raise PlanError(f"{field}: must be {'at least' if inclusive else 'more than'} {minimum:g}, got {value:g}")
    return float(value)


def _string(value, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise PlanError(f"{field}: expected a non-empty string, got {json.dumps(value)}")
    return value


def _object(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise PlanError(f"{field}: expected an object, got {json.dumps(value)}")
    return value


def _list(value, field: str) -> list:
    if not isinstance(value, list) or not value:
        raise PlanError(f"{field}: expected a non-empty list, got {json.dumps(value)}")
    return value


def _required(entry: dict, key: str, field: str):
    if key not in entry:
        raise PlanError(f"{field}.{key}: missing" if field else f"{key}: missing")
    return entry[key]


def _nic(value, field: str) -> str:
    """A Linux interface name that can also be quoted in an nft script."""
    name = _string(value, field)
    if (len(name.encode()) > _IFNAME_MAX_BYTES or name in (".", "..")
            or any(c.isspace() or c in '/:"\\' for c in name)):
        raise PlanError(f"{field}: {json.dumps(name)} is not an interface name")
    return name


def _netns(value, field: str) -> str | None:
    if value is None:
        return None
    name = _string(value, field)
    if "/" in name or name in (".", "..") or "\0" in name:
        raise PlanError(f"{field}: {json.dumps(name)} is not a network namespace name")
    return name


def _target(entry, field: str) -> Target:
    entry = _object(entry, field)
    netns = _netns(_required(entry, "netns", field), f"{field}.netns")
    nics = _required(entry, "nics", field)
    if not isinstance(nics, list):
        raise PlanError(f"{field}.nics: expected a list, got {json.dumps(nics)}")
    names = tuple(_nic(nic, f"{field}.nics[{i}]") for i, nic in enumerate(nics))
    if len(set(names)) != len(names):
        raise PlanError(f"{field}.nics: names a NIC twice")
    forwarding = _required(entry, "forwarding", field)
    if not isinstance(forwarding, bool):
        raise PlanError(f"{field}.forwarding: expected true or false, got {json.dumps(forwarding)}")
    return Target(netns, names, forwarding)


def _switch(entry, field: str) -> Switch:
    entry = _object(entry, field)
    phase = _required(entry, "phase", field)
    if isinstance(phase, bool) or not isinstance(phase, int) or phase < 0:
        raise PlanError(f"{field}.phase: expected a whole number from 0, got {json.dumps(phase)}")
    name = _string(_required(entry, "name", field), f"{field}.name")
    at = _number(_required(entry, "at", field), f"{field}.at", 0, inclusive=False)
    targets = tuple(_target(t, f"{field}.apply[{i}]")
                    for i, t in enumerate(_list(_required(entry, "apply", field), f"{field}.apply")))
    seen: set[str | None] = set()
    for i, target in enumerate(targets):
        if target.netns in seen:
            raise PlanError(f"{field}.apply[{i}].netns: {json.dumps(target.netns)} has a target already in this switch")
        seen.add(target.netns)
    return Switch(phase, name, at, targets)


def parse_plan(text: str) -> Plan:
    """The plan in `text`, checked; switches in the order of their instants (a stable sort:
    switches planned for the same instant keep the plan's order)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"not JSON: {exc}") from None
    data = _object(data, "plan")
    if (found := _required(data, "format", "")) != FORMAT:
        raise PlanError(f"format: expected {json.dumps(FORMAT)}, got {json.dumps(found)}")
    run_id = _string(_required(data, "run_id", ""), "run_id")
    expiry_s = _number(_required(data, "expiry_s", ""), "expiry_s", 0, inclusive=False)
    lag_s = _number(data.get("lag_s", 0.0), "lag_s", 0)
    offset = _number(data.get("clock_offset_s", 0.0), "clock_offset_s", -math.inf)
    switches = [_switch(s, f"switches[{i}]") for i, s in enumerate(_list(_required(data, "switches", ""), "switches"))]
    return Plan(run_id, expiry_s, lag_s, tuple(sorted(switches, key=lambda s: s.at)), _count(data.get("count", [])),
                offset)


def _count(value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PlanError(f"count: expected a list of NICs, got {json.dumps(value)}")
    names = tuple(_nic(nic, f"count[{i}]") for i, nic in enumerate(value))
    if len(set(names)) != len(names):
        raise PlanError("count: names a NIC twice")
    return names


# --- the record: one JSON object per line, as things happen ---------------------------


def start_line(plan: Plan, pid: int, host: str, clock: float, realtime: bool) -> dict:
    """`realtime`: whether the switches run at real-time priority (lower latency on a busy node)."""
    return {"event": "start", "run_id": plan.run_id, "pid": pid, "host": host, "clock": clock,
            "format": FORMAT, "expiry_s": plan.expiry_s, "injected_lag_s": plan.lag_s,
            "switches": len(plan.switches), "realtime": realtime, "clock_offset_s": plan.clock_offset_s}


def switch_line(switch: Switch, target: Target, actual: float, error: str | None, unchanged: bool = False,
                timed_by: str | None = None, nft_returned: float | None = None) -> dict:
    """One target of one switch as it took effect (`actual`), or as nft refused it (`error`).
    `timed_by` says what gave `actual`: "commit", the kernel's notice of the transaction's
    commit, or "exit", nft's exit (`nft_returned`, an upper bound); `unchanged`: no
    transaction was needed, its state held already at `actual`, the instant."""
    line = {"event": "switch", "phase": switch.phase, "name": switch.name, "netns": target.netns,
            "nics": list(target.nics), "forwarding": target.forwarding, "planned": switch.at,
            "actual": actual, "lag_s": round(actual - switch.at, 6), "ok": error is None, "error": error}
    if timed_by is not None:
        line["timed_by"] = timed_by
    if nft_returned is not None:
        line["nft_returned"] = nft_returned
    if unchanged:
        line["unchanged"] = True
    return line


def done_line() -> dict:
    return {"event": "done"}


def cancelled_line(at: float, signal_name: str) -> dict:
    return {"event": "cancelled", "at": at, "signal": signal_name}


def dumps(line: dict) -> str:
    return json.dumps(line, separators=(", ", ": ")) + "\n"
