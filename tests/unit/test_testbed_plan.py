"""The testbed plan (pure): any inventory shape, and clear errors for bad inventories."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"


def load(name):
    """Import a module_utils file the way Ansible exposes it (ansible.module_utils.NAME)."""
    spec = importlib.util.spec_from_file_location(f"ansible.module_utils.{name}", MODULE_UTILS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


nornet = load("nornet")
topology = load("testbed_topology")


def providers(count):
    return [{"name": f"isp{i}", "index": i, "nic": f"nic{i}", "rate_up": "3mbit", "rate_down": "3mbit"}
            for i in range(1, count + 1)]


def test_nornet_addresses_follow_provider_site_and_node():
    assert nornet.host_interface(4, 2, 3, 10) == "198.18.35.10/24"
    assert nornet.host_interface(6, 2, 3, 10) == "2001:2:0:203::a/64"
    # NorNet's own layout: 10.P.S.N and 2001:700:4100:PPSS::N.
    assert nornet.host_interface(4, 4, 7, 1, "10.0.0.0/8", 8) == "10.4.7.1/24"
    assert nornet.host_interface(6, 4, 7, 1, "2001:700:4100::/48", 8) == "2001:700:4100:407::1/64"


def test_default_inventory_shape():
    plan = topology.plan_topology("mps", providers(2), [
        {"name": "push1", "site_index": 1, "node_index": 10},
        {"name": "server1", "site_index": 2, "node_index": 10},
        {"name": "client1", "site_index": 3, "node_index": 10}])
    assert plan["namespaces"] == ["mps-core", "mps-isp1", "mps-isp2", "mps-push1", "mps-server1", "mps-client1"]
    assert plan["addresses"][("mps-server1", "nic2")] == ["198.18.34.10/24", "2001:2:0:202::a/64"]
    assert plan["addresses"][("mps-isp1", "site2")] == ["198.18.18.1/24", "2001:2:0:102::1/64"]
    assert plan["addresses"][("mps-isp2", "core")] == ["198.19.255.2/24", "2001:2:0:ffff::2/64"]
    defaults = plan["routes"]["mps-push1"]
    assert {(r["gateway"], r["metric"]) for r in defaults} == {
        ("198.18.17.1", 100), ("2001:2:0:101::1", 100), ("198.18.33.1", 200), ("2001:2:0:201::1", 200)}
    # isp1 reaches isp2's three sites through isp2's core address, both families.
    assert sorted(r["dst"] for r in plan["routes"]["mps-isp1"]) == sorted(
        ["198.18.33.0/24", "198.18.34.0/24", "198.18.35.0/24",
         "2001:2:0:201::/64", "2001:2:0:202::/64", "2001:2:0:203::/64"])
    assert len(plan["shapers"]) == 12 and all(s["rate_bps"] == 3_000_000 for s in plan["shapers"])


def test_three_providers_and_six_sites_are_an_inventory_change():
    nodes = [{"name": f"n{s}", "site_index": s, "node_index": 2} for s in range(1, 7)]
    plan = topology.plan_topology("big", providers(3), nodes)
    assert len(plan["namespaces"]) == 1 + 3 + 6
    assert len([v for v in plan["veths"] if v["ns"] == "big-core"]) == 3
    assert len([v for v in plan["veths"] if v["ns"] != "big-core"]) == 18
    assert len(plan["routes"]["big-isp1"]) == 2 * 2 * 6  # two other providers, six sites, two families


def test_a_node_may_have_fewer_providers_and_sites_may_hold_several_nodes():
    plan = topology.plan_topology("x", providers(2), [
        {"name": "a", "site_index": 1, "node_index": 2, "providers": ["isp2"]},
        {"name": "b", "site_index": 1, "node_index": 3}])
    assert ("x-a", "nic1") not in plan["addresses"]
    site_ports = [v for v in plan["veths"] if v.get("peer_master") == "site1" and v["peer_ns"] == "x-isp2"]
    assert [v["peer_ifname"] for v in site_ports] == ["s1n2", "s1n3"]


@pytest.mark.parametrize("nodes,message", [
    ([{"name": "a", "site_index": 1, "node_index": 2, "providers": ["isp3"]}],
     "node a names provider(s) isp3, but the inventory defines NICs only for isp1, isp2"),
    ([{"name": "a", "site_index": 1}], "node a needs mpstream_site_index and mpstream_node_index"),
    ([{"name": "a", "site_index": 1, "node_index": 1}], "must be between 2 and 253"),
    ([{"name": "a", "site_index": 1, "node_index": 2}, {"name": "b", "site_index": 1, "node_index": 2}],
     "same site and node index"),
])
def test_bad_inventories_say_what_to_fix(nodes, message):
    with pytest.raises(topology.TopologyError, match=re.escape(message)):
        topology.plan_topology("x", providers(2), nodes)


def test_bad_providers_and_rates_say_what_to_fix():
    with pytest.raises(topology.TopologyError, match="no providers"):
        topology.plan_topology("x", [], [])
    with pytest.raises(topology.TopologyError, match="share the index"):
        topology.plan_topology("x", [{"name": "a", "index": 1}, {"name": "b", "index": 1}], [])
    with pytest.raises(topology.TopologyError, match="not a tc rate"):
        topology.plan_topology("x", [{"name": "a", "index": 1, "rate_up": "fast"}], [])
    assert topology.parse_rate("2.5M", "r") == 2_500_000
    assert topology.parse_rate("", "r") == 0


NORNET_SCALE = {"ipv4_site_bits": 8, "ipv4_prefixlen": 26}


def test_nornet_scale_sites_up_to_255_fit_the_benchmarking_range():
    assert nornet.host_interface(4, 7, 255, 62, None, 8, 26) == "198.19.255.254/26"
    assert nornet.host_interface(4, 1, 200, 10, None, 8, 26) == "198.18.114.10/26"
    assert nornet.host_interface(6, 8, 255, 255) == "2001:2:0:8ff::ff/64"
    nodes = [{"name": f"n{s}", "site_index": s, "node_index": 10} for s in (1, 20, 100, 200, 250)]
    plan = topology.plan_topology("nn", providers(3), nodes, NORNET_SCALE)
    v4 = [a[0] for key, a in plan["addresses"].items() if key[0].startswith("nn-n")]
    assert len(set(v4)) == len(v4) == 15
    assert all(a.startswith(("198.18.", "198.19.")) and a.endswith("/26") for a in v4)
    assert plan["addresses"][("nn-isp3", "core")][0] == "198.19.255.195/26"


@pytest.mark.parametrize("call,message", [
    (lambda: nornet.host_interface(4, 1, 16, 10), "site index 16 does not fit: 198.18.0.0/15 with 4 site bits"),
    (lambda: nornet.host_interface(4, 8, 1, 10, None, 8, 26), "provider index 8 does not fit"),
    (lambda: nornet.host_interface(4, 1, 1, 100, None, 8, 26), "host index 100 does not fit"),
    (lambda: nornet.host_interface(4, 1, 1, 10, None, 9, 24), "9 site bits do not fit"),
])
def test_addressing_that_runs_out_names_the_limit_and_the_setting(call, message):
    with pytest.raises(nornet.AddressingError, match=re.escape(message)) as raised:
        call()
    assert "mpstream_addressing.ipv4" in str(raised.value)


def test_a_site_on_the_core_subnet_is_refused():
    nodes = [{"name": "a", "site_index": 255, "node_index": 10}]
    with pytest.raises(topology.TopologyError, match="core link"):
        topology.plan_topology("x", providers(7)[6:], nodes, NORNET_SCALE)


def test_a_node_overrides_its_own_links():
    plan = topology.plan_topology("x", providers(2), [
        {"name": "server", "site_index": 1, "node_index": 2,
         "links": {"isp1": {"rate_up": "100mbit", "rate_down": "100mbit"}, "isp2": {"rate_down": "50mbit"}}},
        {"name": "client", "site_index": 2, "node_index": 2}])
    rates = {(s["ns"], s["ifname"]): s["rate_bps"] for s in plan["shapers"]}
    assert rates[("x-server", "nic1")] == rates[("x-isp1", "s1n2")] == 100_000_000
    assert rates[("x-server", "nic2")] == 3_000_000 and rates[("x-isp2", "s1n2")] == 50_000_000
    assert rates[("x-client", "nic1")] == rates[("x-isp1", "s2n2")] == 3_000_000


@pytest.mark.parametrize("links,message", [
    ({"isp9": {"rate_up": "1mbit"}}, "names provider isp9, which the node has no NIC for"),
    ({"isp1": {"speed": "1mbit"}}, "unknown setting(s) speed"),
    ({"isp1": {"rate_up": "quick"}}, "not a tc rate"),
    (["isp1"], "must map provider names"),
])
def test_bad_node_links_say_what_to_fix(links, message):
    with pytest.raises(topology.TopologyError, match=re.escape(message)):
        topology.plan_topology("x", providers(2), [{"name": "a", "site_index": 1, "node_index": 2, "links": links}])


def delayed(delay, **more):
    return [dict(p, delay=delay, **more) for p in providers(2)]


def test_no_delay_means_no_emulation_and_queues_as_before():
    plan = topology.plan_topology("x", providers(2), [{"name": "a", "site_index": 1, "node_index": 2}])
    assert plan["emulation"] == {}
    assert {s["queue_ms"] for s in plan["shapers"]} == {200}


def test_a_provider_delay_puts_every_access_link_of_its_router_on_two_queues():
    nodes = [{"name": "a", "site_index": 1, "node_index": 2}, {"name": "b", "site_index": 2, "node_index": 2}]
    plan = topology.plan_topology("x", [dict(providers(2)[0], delay="10ms", jitter="1ms", loss="0.5%"),
                                        providers(2)[1]], nodes)
    assert list(plan["emulation"]) == ["x-isp1"]  # isp2 has no delay: no rules, no process
    links = plan["emulation"]["x-isp1"]
    assert [(link["queue"], link["direction"], link["node"]) for link in links] == [
        (1, "up", "a"), (2, "down", "a"), (3, "up", "b"), (4, "down", "b")]
    assert links[0]["nic"] == "nic1" and links[0]["node_ns"] == "x-a"
    assert links[1]["addresses"] == ["198.18.17.2", "2001:2:0:101::2"]
    assert {(link["delay_ms"], link["jitter_ms"], link["loss_percent"]) for link in links} == {(10.0, 1.0, 0.5)}
    assert plan["routers"] == ["x-isp1", "x-isp2"]


def test_node_links_add_delay_on_top_of_the_provider_and_shaper_queues_hold_the_round_trip():
    nodes = [{"name": "near", "site_index": 1, "node_index": 2},
             {"name": "far", "site_index": 2, "node_index": 2, "links": {"isp1": {"delay": "0.07s"}}}]
    plan = topology.plan_topology("x", delayed("5ms"), nodes)
    delays = {(link["node"], ns): link["delay_ms"] for ns, links in plan["emulation"].items() for link in links}
    assert delays == {("near", "x-isp1"): 5, ("far", "x-isp1"): 70, ("near", "x-isp2"): 5, ("far", "x-isp2"): 5}
    queues = {(s["ns"], s["ifname"]): s["queue_ms"] for s in plan["shapers"]}
    # 200 ms + the longest round trip through the link (its own delay and the farthest other end).
    assert queues[("x-far", "nic1")] == 200 + 2 * (70 + 70)
    assert queues[("x-near", "nic2")] == 200 + 2 * (5 + 70)


@pytest.mark.parametrize("settings,message", [
    ({"delay": "fast"}, "is not a time like '20ms'"),
    ({"delay": "5ms", "jitter": "6ms"}, "jitter 6ms exceeds the delay 5ms"),
    ({"loss": "100%"}, "is not a loss rate"),
    ({"loss": "lots"}, "is not a loss rate"),
])
def test_bad_delays_say_what_to_fix(settings, message):
    with pytest.raises(topology.TopologyError, match=re.escape(message)):
        topology.plan_topology("x", [dict(providers(1)[0], **settings)], [])
    with pytest.raises(topology.TopologyError, match=re.escape(message)):
        topology.plan_topology("x", providers(1), [{"name": "a", "site_index": 1, "node_index": 2,
                                                    "links": {"isp1": settings}}])


def test_time_and_loss_units():
    assert topology.parse_delay("1.5ms", "d") == 1.5
    assert topology.parse_delay("0.3s", "d") == 300
    assert topology.parse_delay("500us", "d") == 0.5
    assert topology.parse_delay(20, "d") == 20 and topology.parse_delay("0", "d") == 0
    assert topology.parse_loss("0.5%", "l") == 0.5 and topology.parse_loss(2, "l") == 2
