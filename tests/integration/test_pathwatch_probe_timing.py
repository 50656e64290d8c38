"""A probe's round trip ends when its reply reaches the kernel, not when a busy watcher
reads it: real raw ICMP sockets over this machine's loopback (root)."""

import time

import pytest
from mpstream.paths.pathwatch.watcher import ProbeSocket

BUSY_S = 0.3  # the watcher kept from reading (a loaded CPU, a slow re-creation)


@pytest.mark.parametrize(("version", "address"), [(4, "127.0.0.1"), (6, "::1")])
def test_a_reply_read_late_counts_from_its_arrival(version, address):
    probe = ProbeSocket("isp1", address, version, ident=0x5A00 + version)
    try:
        sent = time.monotonic()
        probe.send(address, sent)
        time.sleep(BUSY_S)
        read = time.monotonic()
        answered = probe.replies(time.monotonic)
    finally:
        probe.close()
    assert len(answered) == 1, answered
    target, sent_at, arrived = answered[0]
    assert (target, sent_at) == (address, sent)
    # Loopback answers within a few ms; read BUSY_S later, the reply still counts from then.
    assert sent <= arrived < sent + 0.05, (arrived - sent, read - sent)
