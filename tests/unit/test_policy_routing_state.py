"""The desired policy-routing state and its diff (pure; no kernel)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "module_utils"))
import mptcp_pm
import nornet
import policy_routing_state as prs

PROVIDERS = [{"name": "isp1", "index": 1, "nic": "nic1"}, {"name": "isp2", "index": 2, "nic": "nic2"}]


def client_interfaces():
    return nornet.interfaces(PROVIDERS, 3, 10)


def lines(items):
    return prs.render_state(items).splitlines()


def test_paper_example_per_provider_tables_rules_and_routes():
    state = prs.desired_state(client_interfaces())
    rendered = lines(state)
    assert "ip -6 rule add from 2001:2:0:103::a/128 lookup 1000 priority 1001" in rendered
    assert "ip -6 rule add from 2001:2:0:203::a/128 lookup 2000 priority 1002" in rendered
    assert "ip -6 route add 2001:2:0:103::/64 dev nic1 table 1000 metric 10" in rendered
    assert "ip -6 route add default via 2001:2:0:103::1 dev nic1 table 1000 metric 10" in rendered
    assert "ip -4 route add 198.18.35.0/24 dev nic2 table 2000 metric 10 scope link" in rendered
    assert "ip -4 route add default via 198.18.35.1 dev nic2 table 2000 metric 10" in rendered
    # 2 providers x 2 families x (rule, link route, table default, main default)
    assert len(state) == 16


def test_primary_provider_gets_the_lowest_main_metric():
    mains = [item for item in prs.desired_state(client_interfaces(), primary="isp2")
             if item["kind"] == "route" and item["table"] == prs.MAIN_TABLE and item["family"] == 4]
    by_dev = {item["dev"]: item["metric"] for item in mains}
    assert by_dev == {"nic2": 10, "nic1": 11}


def test_unknown_primary_and_shared_tables_are_refused():
    with pytest.raises(prs.PolicyRoutingError):
        prs.desired_state(client_interfaces(), primary="isp9")
    interfaces = client_interfaces()
    interfaces[1]["table"] = 1000
    with pytest.raises(prs.PolicyRoutingError):
        prs.desired_state(interfaces)


def test_interface_without_ipv6_or_gateway_gets_only_what_it_has():
    state = prs.desired_state([{"name": "eth0", "provider_index": 1, "ipv4": "192.0.2.5/24"}],
                              main_defaults=False)
    assert lines(state) == ["ip -4 route add 192.0.2.0/24 dev eth0 table 1000 metric 10 scope link",
                            "ip -4 rule add from 192.0.2.5/32 lookup 1000 priority 1001"]


def test_diff_is_empty_when_state_matches_and_orders_changes_safely():
    desired = prs.desired_state(client_interfaces())
    assert prs.diff(list(reversed(desired)), desired) == ([], [])
    to_remove, to_add = prs.diff([], desired)
    assert to_remove == []
    kinds = ["rule" if i["kind"] == "rule" else ("default" if i["gateway"] else "link") for i in to_add]
    assert kinds == sorted(kinds, key=["link", "default", "rule"].index)


def test_changed_gateway_replaces_only_the_routes_that_use_it():
    old = prs.desired_state(client_interfaces())
    interfaces = client_interfaces()
    interfaces[0]["gateway4"] = "198.18.19.254"
    to_remove, to_add = prs.diff(old, prs.desired_state(interfaces))
    assert sorted(prs.render(i) for i in to_remove) == [
        "ip -4 route add default via 198.18.19.1 dev nic1 table 1000 metric 10",
        "ip -4 route add default via 198.18.19.1 dev nic1 table main metric 10"]
    assert all("198.18.19.254" in prs.render(i) for i in to_add) and len(to_add) == 2


def test_endpoint_flags_round_trip_and_changed_flags_mean_remove_and_add():
    assert mptcp_pm.bits_to_flags(mptcp_pm.flags_to_bits(["subflow", "fullmesh"])) == ["fullmesh", "subflow"]
    with pytest.raises(mptcp_pm.MptcpPmError):
        mptcp_pm.flags_to_bits(["sideways"])
    old = [mptcp_pm.normalize({"id": 101, "address": "198.18.19.10", "flags": ["subflow"]})]
    new = [mptcp_pm.normalize({"id": 101, "address": "198.18.19.10", "flags": ["subflow", "backup"]})]
    assert mptcp_pm.diff(old, new, {101}) == (old, new)
    assert mptcp_pm.diff(new, new, {101}) == ([], [])


def test_endpoints_outside_the_owned_ids_are_never_removed():
    foreign = mptcp_pm.normalize({"id": 7, "address": "2001:2:0:103::a", "flags": ["signal"]})
    assert mptcp_pm.diff([foreign], [], set(range(100, 200))) == ([], [])
