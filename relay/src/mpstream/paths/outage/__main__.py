"""The watchdog's entry point (`python -m mpstream.paths.outage _expire TOKEN SECONDS NETNS [UNTIL]`):
detached processes started by an apply or a schedule run this, so it stays stable."""

import sys

from mpstream.paths.outage.table import expire

if len(sys.argv) in (5, 6) and sys.argv[1] == "_expire":
    expire(sys.argv[2], float(sys.argv[3]), sys.argv[4] or None, float(sys.argv[5]) if len(sys.argv) == 6 else None)
else:
    sys.exit("usage: python -m mpstream.paths.outage _expire TOKEN SECONDS NETNS [UNTIL]")
