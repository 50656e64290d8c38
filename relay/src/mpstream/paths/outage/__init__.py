"""Emulate a provider outage on this node with nftables, ended by the kernel when its time is up.

    mpstream outage apply --nic nic2 --for 30      # drop everything in/out of nic2
    mpstream outage apply --forwarding --for 30    # a provider router: drop all it forwards
    mpstream outage clear                          # restore (idempotent)
    mpstream outage status                         # JSON: what is down, until when
    mpstream outage schedule --plan PLAN.json --record SWITCHES.jsonl   # a scenario's switches

The rules live in one table, `inet mpstream_outage`, replaced atomically on each apply and
deleted on clear. `--for` gives what is down a timeout in the kernel's sets: the outage ends
by itself when the time is up, so it never outlives an interrupted or cut-off controller (on
a real site the dropped provider may carry the controller's own SSH connection), and no
process has to stay behind to end it.

`--at UNIX_TIME` waits until that wall-clock time before acting, so that every node (and
every router of the emulated testbed) switches at the same instant however long the
controller takes to reach them; a command interrupted while it waits does nothing.
`--netns NAME` acts inside another network namespace of this machine (the testbed's
provider routers) and may be repeated. A `clear` without `--at` also cancels the switches
still waiting in that namespace: restoring wins over anything scheduled.

`schedule` keeps a whole scenario by this machine's clock: the plan (JSON, format
`mpstream-schedule/1`, see mpstream.paths.outage.plan) lists the switches, each at a Unix time
with one target per namespace; it runs in the foreground, applies each switch at its instant
and appends to the record (JSON lines) when each one really took effect: a `start` line, one
`switch` line per switch and target (`planned`, `actual`, `lag_s`, `ok`, `error`; `timed_by`:
`commit` when `actual` is the kernel's notice of the transaction's commit, `exit` when it is
nft's exit, `nft_returned`; `unchanged` when it had nothing to do: every provider up already),
then `done`, or `cancelled` when a clear in one of its namespaces (or SIGTERM/SIGINT) stopped it.
Every outage it applies removes itself `expiry_s` after its planned instant unless a later
switch or a clear replaced it. The plan's `lag_s` (default 0) is a fault-injection knob: every
switch is applied that many seconds late, to check that late switches are caught downstream.
Exit status: 0 all switches applied, 1 nft refused at least one (the others were still
applied), 2 the plan cannot be kept (nothing switched), 128+N stopped by signal N.
"""

from __future__ import annotations

import json

from mpstream.paths.outage.pending import PENDING_DIR, cancel_pending, wait_until
from mpstream.paths.outage.table import TABLE, apply, clear, current, holds, interface_exists, ruleset

__all__ = ["PENDING_DIR", "TABLE", "add_arguments", "apply", "cancel_pending", "clear", "current", "holds",
           "interface_exists", "ruleset", "run", "wait_until"]


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    applying = sub.add_parser("apply", help="take providers down on this node")
    applying.add_argument("--nic", action="append", default=[], help="drop all traffic of this NIC (repeatable)")
    applying.add_argument("--forwarding", action="store_true", help="drop everything this router forwards")
    applying.add_argument("--for", dest="seconds", type=float, required=True,
                          help="restore by itself this many seconds after taking effect")
    clearing = sub.add_parser("clear", help="restore every provider on this node")
    status = sub.add_parser("status", help="print the outage in force as JSON")
    for command in (applying, clearing, status):
        command.add_argument("--netns", action="append", default=[],
                             help="act inside this network namespace instead (repeatable)")
    for command in (applying, clearing):
        command.add_argument("--at", type=float, help="wait until this Unix time before acting")
    scheduling = sub.add_parser("schedule", help="apply a scenario's switches at their instants, recording each")
    scheduling.add_argument("--plan", required=True, help="the switches (JSON, format mpstream-schedule/1)")
    scheduling.add_argument("--record", required=True, help="append what really happened here (JSON lines)")


def run(args) -> int:
    if args.action == "schedule":
        from mpstream.paths.outage.scheduler import run_schedule

        return run_schedule(args.plan, args.record)
    targets = args.netns or [None]
    if args.action == "apply":
        if not args.nic and not args.forwarding:
            raise SystemExit("mpstream outage apply: name at least one --nic, or --forwarding")
        missing = [f"{nic}{' in ' + ns if ns else ''}" for ns in targets for nic in args.nic
                   if not interface_exists(nic, ns)]
        if missing:
            raise SystemExit(f"mpstream outage apply: no interface {', '.join(missing)}")
    if args.action in ("apply", "clear"):
        wait_until(args.at, targets)
    results = {}
    for ns in targets:
        if args.action == "apply":
            results[ns] = apply(args.nic, args.forwarding, args.seconds, ns)
        elif args.action == "clear":
            results[ns] = clear(ns, cancel=args.at is None)  # restoring now also cancels what waits
        else:
            state = current(ns)
            results[ns] = {"changed": False, "outage": state if holds(state) else None}
    if args.netns:
        print(json.dumps({"changed": any(r["changed"] for r in results.values()), "netns": results}))
    else:
        print(json.dumps(results[None]))
    return 0
