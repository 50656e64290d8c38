"""The outage table in nftables: its rules, the outage in force, apply and clear.

The rules live in one table, `inet mpstream_outage`, replaced atomically on each apply and
deleted on clear. What is down is held in sets whose elements carry a timeout (`nics`: the
NICs whose traffic is dropped; `forwarding`: the IP protocols a provider router stops
forwarding): the kernel drops only until an element expires, so an outage ends at its time
even when nothing of mpstream runs any more (a killed controller, a cut SSH connection),
without a watchdog process. The table's comment gives that time (`until=UNIX_TIME`); a table
whose elements have all expired holds nothing down and is deleted by the next clear.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time

from mpstream.paths.outage.delivered import TABLE as DELIVERED_TABLE
from mpstream.paths.outage.pending import cancel_pending

TABLE = "mpstream_outage"
_UNTIL = re.compile(r'comment "until=(?P<until>[\d.]+)"')
_SET = re.compile(r"\tset (?P<name>\w+) \{(?P<body>.*?)\n\t\}", re.DOTALL)


def ruleset(nics: list[str], forwarding: bool, until: float, now: float | None = None) -> str:
    """The nft script that (re)defines the outage table in one transaction, its elements
    expiring at the Unix time `until` (counted from `now`: the script is for a transaction
    about to start)."""
    left_ms = max(round((until - (time.time() if now is None else now)) * 1000), 1)
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
             f'  comment "until={until:.3f}"']
    if forwarding:
        lines += [
            f"  set forwarding {{ type nf_proto; flags timeout; elements = {{ ipv4 timeout {left_ms}ms, "
            f"ipv6 timeout {left_ms}ms }}; }}",
            "  chain forward { type filter hook forward priority -10; policy accept; meta nfproto @forwarding drop; }",
        ]
    if nics:
        elements = ", ".join(f'"{nic}" timeout {left_ms}ms' for nic in nics)
        lines += [
            f"  set nics {{ type ifname; flags timeout; elements = {{ {elements} }}; }}",
            "  chain input { type filter hook input priority -10; policy accept; iifname @nics drop; }",
            "  chain output { type filter hook output priority -10; policy accept; oifname @nics drop; }",
            "  chain forward_nic { type filter hook forward priority -10; policy accept; "
            "iifname @nics drop; oifname @nics drop; }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def clearing_ruleset() -> str:
    """The nft script that removes the outage table, whether or not there is one."""
    return f"table inet {TABLE}\ndelete table inet {TABLE}\n"


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


def error_file():
    """Where an nft's error text goes: a file, so that a long message never blocks its exit."""
    return tempfile.TemporaryFile(mode="w+")


def current(netns: str | None = None, strict: bool = False) -> dict | None:
    """The outage table's state: {'nics', 'forwarding', 'until'}, what is still held down
    (expired elements are gone), or None when there is no table. `strict`: None only when nft
    says there is no outage table; any other failure (nft missing, the namespace gone) raises
    OSError, for a caller that skips work on the strength of None."""
    listed = _nft("list", "table", "inet", TABLE, netns=netns)
    if listed.returncode != 0:
        if strict and not listed.stderr.startswith("Error: No such file or directory"):
            raise OSError(f"nft cannot list the outage table: {' '.join(listed.stderr.split()) or listed.returncode}")
        return None
    match = _UNTIL.search(listed.stdout)
    sets = {found["name"]: found["body"] for found in _SET.finditer(listed.stdout)}
    return {"nics": sorted(re.findall(r'"([^"]+)" timeout', sets.get("nics", ""))),
            "forwarding": "elements" in sets.get("forwarding", ""),
            "until": float(match["until"]) if match else None}


def holds(state: dict | None) -> bool:
    """Whether an outage table's state still holds anything down."""
    return bool(state and (state["nics"] or state["forwarding"]))


def remove(netns: str | None = None) -> str | None:
    """Delete the outage table now, whether or not there is one: None, or nft's error."""
    result = _nft("-f", "-", netns=netns, script=clearing_ruleset())
    return None if result.returncode == 0 else " ".join(result.stderr.split()) or f"nft exited {result.returncode}"


def interface_exists(nic: str, netns: str | None) -> bool:
    if netns is None:
        return os.path.exists(f"/sys/class/net/{nic}")
    return subprocess.run(["ip", "-n", netns, "link", "show", nic], capture_output=True).returncode == 0


def netns_exists(netns: str) -> bool:
    return os.path.exists(f"/run/netns/{netns}")


def apply(nics: list[str], forwarding: bool, seconds: float, netns: str | None = None) -> dict:
    """Take the providers down now, for `seconds` (the kernel restores them then)."""
    now = time.time()
    until = now + seconds
    result = _nft("-f", "-", netns=netns, script=ruleset(nics, forwarding, until, now))
    if result.returncode != 0:
        raise SystemExit(f"mpstream outage apply: nft refused the rules: {result.stderr.strip()}")
    return {"changed": True, "nics": sorted(nics), "forwarding": forwarding, "until": until}


def clear(netns: str | None = None, cancel: bool = False) -> dict:
    cancelled = cancel_pending(netns) if cancel else 0
    # A switcher removes its counting table as it ends; one killed outright leaves it here.
    counting_left = _nft("delete", "table", "inet", DELIVERED_TABLE, netns=netns).returncode == 0
    state = current(netns)
    if state is None:
        return {"changed": bool(cancelled) or counting_left, "cancelled": cancelled}
    remove(netns)
    return {"changed": True, "cancelled": cancelled,
            "cleared": {"nics": state["nics"], "forwarding": state["forwarding"]}}
