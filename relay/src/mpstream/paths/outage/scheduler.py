"""`mpstream outage schedule`: keep a scenario's switches by this machine's clock, and record
when each one really took effect.

Everything that can be done before an instant is done before it (PREPARE_AHEAD_S): the nft
process of every target is started and waits for its script. At the instant the scripts are
written to all targets in one loop, so the transactions are the only work left (an outage's
end is a timeout the kernel keeps, see `table`: no process is started for it). Each target's
record line carries the time the kernel noticed its transaction's commit (`timed_by:
commit`, see `commits`): nft exits 5-20 ms after that on an idle machine, up to 66 ms
(median 30) with 20 nodes on 2 cores. Where no notice was seen it carries nft's exit
(`timed_by: exit`), an upper bound. A switch that is already late is applied at once and its
record shows by how much: never skipped, never pretended.

A switch that brings every provider back where no outage is in force (the first phase,
"all up", at the stream's start) has no transaction to make: it is not handed to nft at its
instant, when every node starts its stream work and nft is slowest. After the instant the
table is asked again; still absent, the record gives the instant as the time the state held
and says `unchanged`; there after all (something else applied an outage meanwhile), it is
removed then and the record carries that real, late time.

With `count` in the plan, each switch line of the scheduler's own namespace also carries
the bytes each named NIC delivered to this node up to that switch (`delivered`, read once
it took effect) and up to COUNT_AHEAD_S before it (`delivered_before`): the proof that a NIC
let nothing in while it was down, which its own counters cannot give.

SIGTERM or SIGINT (e.g. `mpstream outage clear` in one of the plan's namespaces) stops the
scheduler before it starts anything more; a transaction already handed to nft is waited for
and recorded, then a `cancelled` line ends the record.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO

from mpstream.paths.outage import delivered, mib, pending, priority, table
from mpstream.paths.outage.commits import CommitWatch
from mpstream.paths.outage.plan import (
    Plan,
    PlanError,
    Switch,
    Target,
    cancelled_line,
    done_line,
    dumps,
    parse_plan,
    start_line,
    switch_line,
)
from mpstream.paths.outage.waiting import Interrupter

PREPARE_AHEAD_S = 2.0  # nft processes start this long before their instant
# The counters are read this long before a switch too: what a NIC lets in after its drop is
# gone (a burst as a provider returns) must not be counted against the phase that held it down.
COUNT_AHEAD_S = 0.2
NFT_TIMEOUT_S = 10.0  # a transaction that takes longer is recorded as failed

EXIT_PLAN = 2  # the plan cannot be kept (bad file, unknown NIC or namespace); nothing switched
EXIT_FAILED = 1  # every switch was tried, at least one was refused by nft


@dataclass
class Prepared:
    """One target of the coming switch, ready to take effect."""

    target: Target
    until: float | None = None  # when the outage ends by itself, None for a clear
    nft: subprocess.Popen | None = None
    errors: IO | None = None
    failure: str | None = None  # what went wrong while preparing
    unchanged: bool = False  # a clear where no outage is in force: nothing to hand to nft
    fired: bool = False
    unwritten: bool = False  # nft ended before it took its rules (its error says why)
    committed: float | None = None  # when the kernel's notice of its commit was seen
    returned: float | None = None  # when nft exited (or the failure was known)
    error: str | None = None

    def took_effect(self) -> tuple[float, str | None]:
        """When the target's state held, and what says so: the commit's notice or nft's exit.
        None says nothing timed a transaction: none was needed (`returned` is the instant), or
        it failed (`returned` is when that was known)."""
        if self.unchanged or self.error is not None:
            return self.returned, None
        if self.committed is not None:
            return self.committed, "commit"
        return self.returned, "exit"


class Record:
    """The record file: JSON lines, each flushed as it is written."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1)  # held open for the whole run

    def write(self, line: dict) -> None:
        self._file.write(dumps(line))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def load(path: str) -> Plan:
    try:
        with open(path) as source:
            text = source.read()
    except OSError as exc:
        raise PlanError(f"cannot read the plan: {exc.strerror}: {path}") from None
    return parse_plan(text)


def missing_parts(plan: Plan) -> list[str]:
    """The namespaces and NICs the plan names that this machine does not have."""
    namespaces = [ns for ns in plan.namespaces() if ns is not None and not table.netns_exists(ns)]
    nics = [f"{nic}{' in ' + ns if ns else ''}" for nic, ns in plan.interfaces()
            if ns not in namespaces and not table.interface_exists(nic, ns)]
    return [f"no network namespace {ns}" for ns in namespaces] + ([f"no interface {', '.join(nics)}"] if nics else [])


def prepare(plan: Plan, switch: Switch, target: Target, has_table: dict) -> Prepared:
    """Spawn what the switch of `target` needs, leaving only the transaction for its instant.
    `has_table` (namespace: whether it has an outage table) is what the earlier switches left;
    a namespace not in it yet is asked once (nft is slow to start on a busy node: not once per
    switch)."""
    prepared = Prepared(target)
    try:
        if target.netns not in has_table:
            has_table[target.netns] = table.current(target.netns, strict=True) is not None
        if target.clears and not has_table[target.netns]:
            prepared.unchanged = True
            return prepared
        if not target.clears:
            prepared.until = plan.local(switch.at + plan.expiry_s)
        prepared.errors = table.error_file()
        prepared.nft = table.start_nft(target.netns, prepared.errors)
        priority.make_urgent(prepared.nft.pid)  # it must not wait behind ordinary processes at the instant
    except OSError as exc:
        prepared.failure = f"could not prepare the switch: {exc}"
    return prepared


def script(prepared: Prepared) -> str:
    """The target's transaction, written as it starts: an outage's timeouts count from now."""
    if prepared.until is None:
        return table.clearing_ruleset()
    return table.ruleset(list(prepared.target.nics), prepared.target.forwarding, prepared.until)


def fire(prepared: Prepared) -> None:
    """Hand the script to its waiting nft: the transaction starts now."""
    prepared.fired = True
    if prepared.failure or prepared.unchanged:
        return
    try:
        prepared.nft.stdin.write(script(prepared))
        prepared.nft.stdin.close()
    except OSError:  # nft is gone (e.g. its namespace was deleted): its exit status and error tell
        prepared.unwritten = True
        with contextlib.suppress(OSError):
            prepared.nft.stdin.close()


def await_transactions(fired: list[Prepared], watches: dict[str | None, CommitWatch | None], on_returned) -> None:
    """Wait for the nft of every fired target, noting the commit notices `watches` (namespace:
    CommitWatch) bring, and calling `on_returned` as each nft returns."""
    now = time.time()
    waiting = {}
    for prepared in fired:
        if prepared.failure:
            if prepared.nft is not None:  # it ended already, or never got its rules
                prepared.nft.kill()
                prepared.nft.wait()
            prepared.returned, prepared.error = now, prepared.failure
            on_returned(prepared)
        else:
            waiting[os.pidfd_open(prepared.nft.pid)] = prepared
    listening = {watch.fileno(): watch for netns, watch in watches.items()
                 if watch is not None and any(p.target.netns == netns for p in waiting.values())}

    def note_commits(at: float, ready=None) -> None:
        by_pid = {prepared.nft.pid: prepared for prepared in waiting.values()}
        for fd, watch in listening.items():
            if ready is None or fd in ready:
                for pid in watch.committed():
                    if pid in by_pid and by_pid[pid].committed is None:
                        by_pid[pid].committed = at

    deadline = time.monotonic() + NFT_TIMEOUT_S
    try:
        while waiting:
            ready, _, _ = select.select([*waiting, *listening], [], [], max(deadline - time.monotonic(), 0))
            returned = time.time()
            if not ready:
                for prepared in waiting.values():
                    prepared.nft.kill()
                    prepared.nft.wait()
                    prepared.returned, prepared.error = returned, f"nft did not finish in {NFT_TIMEOUT_S:g} s"
                    on_returned(prepared)
                break
            exited = [fd for fd in ready if fd in waiting]
            # A notice comes before its nft's exit: with an exit at hand, every listener is read.
            note_commits(returned, None if exited else ready)
            for fd in exited:
                prepared = waiting.pop(fd)
                os.close(fd)
                prepared.returned = returned
                if prepared.nft.wait() != 0:
                    prepared.errors.seek(0)
                    prepared.error = " ".join(prepared.errors.read().split()) or f"nft exited {prepared.nft.returncode}"
                elif prepared.unwritten:
                    prepared.error = "nft ended before its rules were written"
                on_returned(prepared)
    finally:
        for fd in waiting:
            os.close(fd)


def confirm_unchanged(unchanged: list[Prepared], instant: float, on_returned) -> None:
    """After the instant, at ordinary priority: the targets that needed no transaction are
    asked again. Still without an outage table, they held their state at `instant`; one that
    has a table now (applied meanwhile by something else) has it removed at once, and the
    time that returned is recorded instead."""
    for prepared in unchanged:
        netns = prepared.target.netns
        try:
            state = table.current(netns, strict=True)
        except OSError as exc:
            prepared.returned, prepared.error = time.time(), f"could not confirm that no outage was in force: {exc}"
        else:
            if state is None:
                prepared.returned = instant
            else:
                prepared.unchanged = False
                prepared.error = table.remove(netns)
                prepared.returned = time.time()
        on_returned(prepared)


def settle(prepared: Prepared) -> None:
    """After a transaction: its error file goes."""
    if prepared.errors is not None:
        prepared.errors.close()


def discard(prepared: Prepared) -> None:
    """A target that will not switch: its nft ends without a script."""
    if prepared.nft is not None:
        try:
            prepared.nft.stdin.close()  # an empty script changes nothing
        except OSError:
            prepared.nft.kill()
        prepared.nft.wait()
    if prepared.errors is not None:
        prepared.errors.close()


def switch_at(plan: Plan, switch: Switch, record: Record, interrupter: Interrupter,
              has_table: dict, watches: dict) -> list[Prepared] | None:
    """Prepare the switch, wait for its instant (plus the injected lag) and apply it; the
    targets handed to nft (each recorded), or None if a signal came before any was."""
    due = plan.local(switch.at + plan.lag_s)
    if not interrupter.sleep_until(due - PREPARE_AHEAD_S):
        return None
    prepared: list[Prepared] = []
    try:
        for target in switch.targets:
            if interrupter.interrupted:
                return None
            prepared.append(prepare(plan, switch, target, has_table))
        for watch in watches.values():
            if watch is not None:
                watch.committed()  # what was committed before this switch is none of its business
        counting = bool(plan.count) and any(ready.target.netns is None for ready in prepared)
        counted_before = None
        if counting:
            if not interrupter.sleep_until(due - COUNT_AHEAD_S):
                return None
            # Never at the switch's cost: a reading not back by its instant is left out.
            counted_before = delivered.read(timeout=due - time.time())
        with priority.urgent():
            if not interrupter.sleep_until(due):
                return None
            fired = []
            for ready in prepared:  # no waiting in this loop: all targets switch together
                if interrupter.interrupted:
                    break
                fire(ready)
                fired.append(ready)

            def returned(done: Prepared) -> None:
                actual, timed_by = done.took_effect()
                line = switch_line(switch, done.target, plan.controller(actual), done.error, done.unchanged,
                                   timed_by, None if timed_by is None else plan.controller(done.returned))
                if done.target.netns is None and (counters := mib.read()):
                    line["mib"] = counters  # what MPTCP had done when the switch took effect
                if done.target.netns is None and counted_before is not None:
                    line["delivered_before"] = counted_before  # bytes each NIC let in until just before it
                if done.target.netns is None and counting and (counted := delivered.read(NFT_TIMEOUT_S)) is not None:
                    line["delivered"] = counted  # bytes each NIC let in up to the switch
                record.write(line)
                settle(done)
                if done.error is None:
                    has_table[done.target.netns] = not done.target.clears

            await_transactions([ready for ready in fired if not ready.unchanged], watches, returned)
        confirm_unchanged([ready for ready in fired if ready.unchanged], due, returned)
        return fired
    finally:
        for left in prepared:
            if not left.fired:
                discard(left)


def open_watches(namespaces: list[str | None]) -> dict[str | None, CommitWatch | None]:
    """A listener to the commits of each namespace; None where none can be opened (its
    switches are then timed by nft's exit)."""
    watches = {}
    for netns in namespaces:
        try:
            watches[netns] = CommitWatch(netns)
        except (OSError, ImportError):  # ImportError: a named namespace needs pyroute2
            watches[netns] = None
    return watches


def keep(plan: Plan, record: Record, interrupter: Interrupter) -> bool:
    """Apply every switch at its instant until the plan ends or a signal comes; False if nft
    refused any target."""
    all_ok = True
    has_table: dict[str | None, bool] = {}
    watches = open_watches(plan.namespaces())
    try:
        for switch in plan.switches:
            fired = switch_at(plan, switch, record, interrupter, has_table, watches)
            if fired is None:
                break
            all_ok &= all(done.error is None for done in fired)
            if interrupter.interrupted:
                break
    finally:
        for watch in watches.values():
            if watch is not None:
                watch.close()
    return all_ok


def run_schedule(plan_path: str, record_path: str) -> int:
    interrupter = Interrupter()  # first: a cancel that comes during the checks is not lost
    try:
        try:
            plan = load(plan_path)
        except PlanError as exc:
            print(f"mpstream outage schedule: {plan_path}: {exc}", file=sys.stderr)
            return EXIT_PLAN
        if missing := missing_parts(plan):
            print(f"mpstream outage schedule: {'; '.join(missing)}", file=sys.stderr)
            return EXIT_PLAN
        try:
            record = Record(record_path)
        except OSError as exc:
            print(f"mpstream outage schedule: cannot write the record: {exc.strerror}: {record_path}",
                  file=sys.stderr)
            return EXIT_PLAN
        try:
            with pending.registered(plan.namespaces()):
                start = start_line(plan, os.getpid(), socket.gethostname(), time.time(),
                                   realtime=priority.can_be_urgent())
                if plan.count and (refused := delivered.install(list(plan.count))):
                    start["delivered_error"] = refused  # the run goes on; the report says it cannot tell
                record.write(start)
                all_ok = keep(plan, record, interrupter)
                if interrupter.interrupted:
                    cancelled = plan.controller(interrupter.at)
                    record.write(cancelled_line(cancelled, signal.Signals(interrupter.signal).name))
                    return 128 + interrupter.signal
                record.write(done_line())
                return 0 if all_ok else EXIT_FAILED
        finally:
            record.close()
            if plan.count:
                delivered.remove()
    finally:
        interrupter.close()
