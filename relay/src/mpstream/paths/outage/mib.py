"""The node's MPTCP MIB counters (what `nstat` shows as MPTcpExt*), as a switch leaves them.

A switcher records them with every switch it applies in its own namespace, so that the
report can say what MPTCP did in each phase (joins, ADD_ADDR, RM_ADDR, MP_FAIL, ...), not
only how the rates moved.
"""

from __future__ import annotations

NETSTAT = "/proc/net/netstat"  # per network namespace: the reader's own
PREFIX = "MPTcpExt"


def parse(text: str) -> dict[str, int]:
    """`MPTcpExt: A B ...` followed by `MPTcpExt: 1 2 ...` -> {"MPTcpExtA": 1, ...}."""
    names: list[str] | None = None
    for line in text.splitlines():
        group, _, rest = line.partition(":")
        if group != PREFIX:
            continue
        fields = rest.split()
        if names is None:
            names = fields
        else:
            return {PREFIX + name: int(value) for name, value in zip(names, fields, strict=False)}
    return {}


def read(path: str = NETSTAT) -> dict[str, int] | None:
    """The counters now; None where the kernel has no MPTCP (or the file cannot be read)."""
    try:
        with open(path, encoding="ascii") as netstat:
            return parse(netstat.read()) or None
    except (OSError, ValueError):
        return None
