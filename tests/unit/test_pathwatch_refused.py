"""A re-creation whose add the kernel refuses: the endpoint is added back at later rounds.

Debian's 6.1 kernel once refused (EINVAL) to add back the `signal` endpoint the watcher had
just removed to re-create it; the removal had been announced, and a viewer lost its only
path with it. The cause, an implicit endpoint a join made meanwhile, is now handled by the
client itself (tests/integration/test_mptcp_pm_implicit.py, on the real kernel); any other
refusal still must not lose the endpoint. The path manager below is the real client with a
stand-in for the kernel's endpoint table (no sockets).
"""

from __future__ import annotations

import errno

import pytest
from mpstream.paths.pathwatch.config import Config, Provider
from mpstream.paths.pathwatch.mptcp_pm import FLAG_SIGNAL, Endpoint, EndpointsLeftOut, MptcpPmError, PmClient
from mpstream.paths.pathwatch.watcher import Watcher

SIGNAL_ISP2 = Endpoint(22, "2001:db8:0:202::a", FLAG_SIGNAL, 0, 0)
SIGNAL_ISP1 = Endpoint(12, "2001:db8:0:102::a", FLAG_SIGNAL, 0, 0)


class KernelPm(PmClient):
    """The path manager's endpoint table; `refusals` adds fail before the first succeeds."""

    def __init__(self, endpoints, refusals=0, code=errno.EINVAL):
        self.table = {ep.id: ep for ep in endpoints}
        self.refusals, self.code, self.added = refusals, code, []

    def endpoints(self):
        return sorted(self.table.values(), key=lambda ep: ep.id)

    def delete(self, endpoint):
        del self.table[endpoint.id]

    def add(self, endpoint):
        if self.refusals:
            self.refusals -= 1
            raise MptcpPmError(f"mptcp_pm command 1 failed: {self.code}", self.code)
        self.table[endpoint.id] = endpoint
        self.added.append(endpoint.id)

    def close(self):
        pass


def test_a_refused_add_is_reported_with_the_endpoints_left_out_and_the_others_go_back():
    pm = KernelPm([SIGNAL_ISP1, SIGNAL_ISP2], refusals=1)
    with pytest.raises(EndpointsLeftOut) as refused:
        pm.recreate({SIGNAL_ISP1.address, SIGNAL_ISP2.address}, pause=0)
    assert refused.value.endpoints == [SIGNAL_ISP1]
    assert set(pm.table) == {SIGNAL_ISP2.id}


def watcher_with(pm: KernelPm) -> Watcher:
    """A watcher's endpoint bookkeeping around `pm`, without its sockets."""
    watcher = Watcher.__new__(Watcher)
    watcher.config = Config({"isp2": Provider("isp2", addresses={SIGNAL_ISP2.address})})
    watcher.clock = lambda: 0.0
    watcher.events = []
    watcher.record = lambda event, **fields: watcher.events.append({"event": event, **fields})
    watcher._pm, watcher._self_reliant, watcher.withdrawn, watcher.refused, watcher.failures = pm, {}, {}, {}, {}
    watcher._pm_open = lambda: pm
    return watcher


def test_the_watcher_adds_a_refused_endpoint_back_at_a_later_round():
    pm = KernelPm([SIGNAL_ISP2], refusals=2)
    watcher = watcher_with(pm)
    watcher.recreate("isp2")
    assert SIGNAL_ISP2.id not in pm.table and watcher.refused == {"isp2": [SIGNAL_ISP2]}
    assert [e["event"] for e in watcher.events] == ["recreate_failed"]
    watcher.add_refused()  # refused once more
    assert watcher.refused == {"isp2": [SIGNAL_ISP2]}
    watcher.add_refused()
    assert pm.table == {SIGNAL_ISP2.id: SIGNAL_ISP2} and watcher.refused == {}
    assert watcher.events[-1] == {"event": "readded", "provider": "isp2", "endpoints": [SIGNAL_ISP2.id]}


def test_a_withdrawn_endpoint_the_kernel_refuses_on_return_is_added_at_a_later_round():
    pm = KernelPm([], refusals=1)
    watcher = watcher_with(pm)
    watcher.withdrawn = {"isp2": [SIGNAL_ISP2]}
    assert watcher.restore("isp2") == [SIGNAL_ISP2]
    assert watcher.withdrawn == {} and watcher.refused == {"isp2": [SIGNAL_ISP2]}
    watcher.add_refused()
    assert pm.table == {SIGNAL_ISP2.id: SIGNAL_ISP2} and watcher.refused == {}


def test_an_endpoint_put_back_meanwhile_counts_as_added():
    # The role put it back with the same id: the kernel says EBUSY (6.18), EINVAL (6.1).
    pm = KernelPm([SIGNAL_ISP2], refusals=1, code=errno.EBUSY)
    watcher = watcher_with(pm)
    watcher.refused = {"isp2": [SIGNAL_ISP2]}
    watcher.add_refused()
    assert watcher.refused == {} and watcher.events[-1]["event"] == "readded"
