"""The outage table in nftables: its rules, the outage in force, apply, clear and the watchdog.

The rules live in one table, `inet mpstream_outage`, replaced atomically on each apply and
deleted on clear. Its comment names the watchdog (`token=... pid=... until=...`): a detached
process that deletes the table when the time is up unless a newer apply replaced it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from mpstream.paths.outage.delivered import TABLE as DELIVERED_TABLE
from mpstream.paths.outage.pending import cancel_pending

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


def clearing_ruleset() -> str:
    """The nft script that removes the outage table, whether or not there is one."""
    return f"table inet {TABLE}\ndelete table inet {TABLE}\n"


def new_token() -> str:
    return uuid.uuid4().hex[:12]


def watchdog_comment(token: str, pid: int, until: float) -> str:
    return f"token={token} pid={pid} until={until:.3f}"


def _nft(*args: str, script: str | None = None, netns: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    # nft's errors in English whatever the node's locale: `current(strict=True)` reads them.
    return subprocess.run([*prefix, "nft", *args], input=script, capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C"})


def start_nft(netns: str | None, errors) -> subprocess.Popen:
    """An `nft -f -` that is ready and waits for its script on stdin: the process start (and the
    namespace switch) happen now, the transaction only once the script is written and stdin
    closed. Closing stdin without a script changes nothing. Its own session: a signal to the
    caller's process group must not cut a transaction short; the caller decides."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.Popen([*prefix, "nft", "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=errors, text=True, start_new_session=True)


def spawn_watchdog(token: str, seconds: float, netns: str | None, until: float | None = None) -> subprocess.Popen:
    """The detached process that deletes the table `seconds` from now (or at the Unix time
    `until`) if the table still carries `token`."""
    args = [sys.executable, "-m", "mpstream.paths.outage", "_expire", token, str(seconds), netns or ""]
    if until is not None:
        args.append(repr(until))
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def error_file():
    """Where an nft's error text goes: a file, so that a long message never blocks its exit."""
    return tempfile.TemporaryFile(mode="w+")


def current(netns: str | None = None, strict: bool = False) -> dict | None:
    """The outage in force: {'token', 'pid', 'until', 'nics', 'forwarding'}, or None. `strict`:
    None only when nft says there is no outage table; any other failure (nft missing, the
    namespace gone) raises OSError, for a caller that skips work on the strength of None."""
    listed = _nft("list", "table", "inet", TABLE, netns=netns)
    if listed.returncode != 0:
        if strict and not listed.stderr.startswith("Error: No such file or directory"):
            raise OSError(f"nft cannot list the outage table: {' '.join(listed.stderr.split()) or listed.returncode}")
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


def remove(netns: str | None = None) -> str | None:
    """Delete the outage table now, whether or not there is one (its watchdog is the caller's):
    None, or nft's error."""
    result = _nft("-f", "-", netns=netns, script=clearing_ruleset())
    return None if result.returncode == 0 else " ".join(result.stderr.split()) or f"nft exited {result.returncode}"


def kill_watchdog(state: dict | None) -> None:
    if state and state.get("pid"):
        try:
            os.kill(state["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def interface_exists(nic: str, netns: str | None) -> bool:
    if netns is None:
        return os.path.exists(f"/sys/class/net/{nic}")
    return subprocess.run(["ip", "-n", netns, "link", "show", nic], capture_output=True).returncode == 0


def netns_exists(netns: str) -> bool:
    return os.path.exists(f"/run/netns/{netns}")


def apply(nics: list[str], forwarding: bool, seconds: float, netns: str | None = None) -> dict:
    """Take the providers down now; the watchdog restores them after `seconds`."""
    previous = current(netns)
    token = new_token()
    until = time.time() + seconds
    watchdog = spawn_watchdog(token, seconds, netns)
    script = ruleset(nics, forwarding, watchdog_comment(token, watchdog.pid, until))
    result = _nft("-f", "-", netns=netns, script=script)
    if result.returncode != 0:
        watchdog.kill()
        raise SystemExit(f"mpstream outage apply: nft refused the rules: {result.stderr.strip()}")
    kill_watchdog(previous)
    return {"changed": True, "nics": sorted(nics), "forwarding": forwarding, "until": until}


def clear(netns: str | None = None, cancel: bool = False) -> dict:
    cancelled = cancel_pending(netns) if cancel else 0
    # A switcher removes its counting table as it ends; one killed outright leaves it here.
    counting_left = _nft("delete", "table", "inet", DELIVERED_TABLE, netns=netns).returncode == 0
    state = current(netns)
    if state is None:
        return {"changed": bool(cancelled) or counting_left, "cancelled": cancelled}
    remove(netns)
    kill_watchdog(state)
    return {"changed": True, "cancelled": cancelled,
            "cleared": {"nics": state["nics"], "forwarding": state["forwarding"]}}


def expire(token: str, seconds: float, netns: str | None, until: float | None = None) -> None:
    """The watchdog: after `seconds` (or at the Unix time `until`), delete the table unless a
    newer apply replaced it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if until is None:
        time.sleep(seconds)
    else:
        while (left := until - time.time()) > 0:
            time.sleep(min(left, 1.0))  # short steps follow a wall clock that is set meanwhile
    state = current(netns)
    if state is not None and state["token"] == token:
        remove(netns)
