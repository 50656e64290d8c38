"""Emulate a provider outage on this node with nftables, with a dead-man switch.

    mpstream outage apply --nic nic2 --for 30      # drop everything in/out of nic2
    mpstream outage apply --forwarding --for 30    # a provider router: drop all it forwards
    mpstream outage clear                          # restore (idempotent)
    mpstream outage status                         # JSON: what is down, until when

The rules live in one table, `inet mpstream_outage`, replaced atomically on each apply and
deleted on clear. `--for` starts a detached watchdog that deletes the table by itself when
the time is up, so an outage never outlives an interrupted or cut-off controller: on a
real site the dropped provider may carry the controller's own SSH connection.

`--at UNIX_TIME` waits until that wall-clock time before acting, so that every node (and
every router of the emulated testbed) switches at the same instant however long the
controller takes to reach them; a command interrupted while it waits does nothing.
`--netns NAME` acts inside another network namespace of this machine (the testbed's
provider routers) and may be repeated. A `clear` without `--at` also cancels the switches
still waiting in that namespace: restoring wins over anything scheduled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

TABLE = "mpstream_outage"
_COMMENT = re.compile(r"token=(?P<token>\w+) pid=(?P<pid>\d+) until=(?P<until>[\d.]+)")


def ruleset(nics: list[str], forwarding: bool, comment: str) -> str:
    """The nft script that (re)defines the outage table in one transaction."""
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
             f'  comment "{comment}"']
    if forwarding:
        lines.append("  chain forward { type filter hook forward priority -10; policy drop; }")
    if nics:
        names = ", ".join(f'"{nic}"' for nic in nics)
        lines += [
            f"  chain input {{ type filter hook input priority -10; policy accept; iifname {{ {names} }} drop; }}",
            f"  chain output {{ type filter hook output priority -10; policy accept; oifname {{ {names} }} drop; }}",
            f"  chain forward_nic {{ type filter hook forward priority -10; policy accept; "
            f"iifname {{ {names} }} drop; oifname {{ {names} }} drop; }}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _nft(*args: str, script: str | None = None, netns: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "nft", *args], input=script, capture_output=True, text=True)


PENDING_DIR = "/run/mpstream-outage"


def _netns_key(netns: str | None) -> int:
    """The namespace's inode: the same for `--netns NAME` and for a process inside it."""
    return os.stat(f"/run/netns/{netns}" if netns else "/proc/self/ns/net").st_ino


def wait_until(at: float | None, targets: list[str | None]) -> None:
    """Sleep until the wall-clock time `at`, registered as pending so that an immediate
    `clear` (the cleanup of an interrupted run) can cancel the switch."""
    if at is None:
        return
    # A shell starts background commands with SIGINT ignored; Ctrl-C must cancel a wait.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.makedirs(PENDING_DIR, exist_ok=True)
    marks = [os.path.join(PENDING_DIR, f"{_netns_key(ns)}.{os.getpid()}") for ns in targets]
    for mark in marks:
        open(mark, "w").close()
    try:
        while (left := at - time.time()) > 0:
            time.sleep(min(left, 1.0))
    finally:
        for mark in marks:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(mark)


def cancel_pending(netns: str | None) -> int:
    """Stop every switch still waiting for its time in this namespace; how many there were."""
    key = f"{_netns_key(netns)}."
    cancelled = 0
    for name in os.listdir(PENDING_DIR) if os.path.isdir(PENDING_DIR) else ():
        if name.startswith(key) and (pid := int(name[len(key):])) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                cancelled += 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(PENDING_DIR, name))
    return cancelled


def current(netns: str | None = None) -> dict | None:
    """The outage in force: {'token', 'pid', 'until', 'nics', 'forwarding'}, or None."""
    listed = _nft("list", "table", "inet", TABLE, netns=netns)
    if listed.returncode != 0:
        return None
    state = {"nics": [], "forwarding": False, "token": None, "pid": None, "until": None}
    match = _COMMENT.search(listed.stdout)  # nft's JSON output leaves table comments out
    if match:
        state.update(token=match["token"], pid=int(match["pid"]), until=float(match["until"]))
    state["forwarding"] = bool(re.search(r"chain forward \{", listed.stdout))
    names = re.search(r"iifname (\{ (?P<set>[^}]*) \}|(?P<one>\"[^\"]+\"))", listed.stdout)
    if names:
        state["nics"] = sorted(re.findall(r'"([^"]+)"', names["set"] or names["one"]))
    return state


def _kill_watchdog(state: dict | None) -> None:
    if state and state.get("pid"):
        try:
            os.kill(state["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def _interface_exists(nic: str, netns: str | None) -> bool:
    if netns is None:
        return os.path.exists(f"/sys/class/net/{nic}")
    return subprocess.run(["ip", "-n", netns, "link", "show", nic], capture_output=True).returncode == 0


def apply(nics: list[str], forwarding: bool, seconds: float, netns: str | None = None) -> dict:
    """Take the providers down now; the watchdog restores them after `seconds`."""
    previous = current(netns)
    token = uuid.uuid4().hex[:12]
    until = time.time() + seconds
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "mpstream.outage", "_expire", token, str(seconds), netns or ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    result = _nft("-f", "-", netns=netns,
                  script=ruleset(nics, forwarding, f"token={token} pid={watchdog.pid} until={until:.3f}"))
    if result.returncode != 0:
        watchdog.kill()
        raise SystemExit(f"mpstream outage apply: nft refused the rules: {result.stderr.strip()}")
    _kill_watchdog(previous)
    return {"changed": True, "nics": sorted(nics), "forwarding": forwarding, "until": until}


def clear(netns: str | None = None, cancel: bool = False) -> dict:
    cancelled = cancel_pending(netns) if cancel else 0
    state = current(netns)
    if state is None:
        return {"changed": bool(cancelled), "cancelled": cancelled}
    _nft("delete", "table", "inet", TABLE, netns=netns)
    _kill_watchdog(state)
    return {"changed": True, "cancelled": cancelled,
            "cleared": {"nics": state["nics"], "forwarding": state["forwarding"]}}


def expire(token: str, seconds: float, netns: str | None) -> None:
    """The watchdog: after `seconds`, delete the table unless a newer apply replaced it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(seconds)
    state = current(netns)
    if state is not None and state["token"] == token:
        _nft("delete", "table", "inet", TABLE, netns=netns)


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


def run(args) -> int:
    targets = args.netns or [None]
    if args.action == "apply":
        if not args.nic and not args.forwarding:
            raise SystemExit("mpstream outage apply: name at least one --nic, or --forwarding")
        missing = [f"{nic}{' in ' + ns if ns else ''}" for ns in targets for nic in args.nic
                   if not _interface_exists(nic, ns)]
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
            results[ns] = {"changed": False, "outage": current(ns)}
    if args.netns:
        print(json.dumps({"changed": any(r["changed"] for r in results.values()), "netns": results}))
    else:
        print(json.dumps(results[None]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_expire":
        expire(sys.argv[2], float(sys.argv[3]), sys.argv[4] or None)
