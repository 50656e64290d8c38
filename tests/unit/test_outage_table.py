"""The outage table's script: what is down, and the kernel's timeout that ends it."""

from __future__ import annotations

import re

from mpstream.paths.outage import table


def test_a_nic_outage_drops_the_nics_in_a_set_whose_elements_expire_at_its_end():
    script = table.ruleset(["nic2", "nic3"], False, until=1_000_012.5, now=1_000_000.0)
    assert script.startswith(f"table inet {table.TABLE}\ndelete table inet {table.TABLE}\n")
    assert 'comment "until=1000012.500"' in script
    assert 'elements = { "nic2" timeout 12500ms, "nic3" timeout 12500ms }' in script
    assert "iifname @nics drop" in script and "oifname @nics drop" in script
    assert "forward" in script and "nf_proto" not in script  # a router's forwarding stays up


def test_a_router_outage_stops_forwarding_both_ip_versions_until_its_end():
    script = table.ruleset([], True, until=30.0, now=0.0)
    assert "elements = { ipv4 timeout 30000ms, ipv6 timeout 30000ms }" in script
    assert "meta nfproto @forwarding drop" in script
    assert "@nics" not in script


def test_an_outage_already_at_its_end_lasts_one_millisecond_not_forever():
    timeouts = re.findall(r"timeout (\d+)ms", table.ruleset(["nic2"], True, until=10.0, now=11.0))
    assert timeouts and set(timeouts) == {"1"}


def test_nothing_down_holds_nothing():
    assert not table.holds(None)
    assert not table.holds({"nics": [], "forwarding": False, "until": 5.0})  # every element expired
    assert table.holds({"nics": ["nic2"], "forwarding": False, "until": 5.0})
    assert table.holds({"nics": [], "forwarding": True, "until": 5.0})
