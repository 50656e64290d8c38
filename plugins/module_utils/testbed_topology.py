# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan the emulated testbed from the inventory: pure data, no kernel calls.

The plan lists namespaces, bridges, veth pairs, addresses, routes, sysctls and shapers;
the testbed_network module makes the kernel match it. Keeping the plan pure lets the
unit tests check a 3-provider or 6-site layout without root.
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import re

from ansible_collections.mpstream.nornet.plugins.module_utils.nornet import GATEWAY_INDEX, AddressingError, layout

__metaclass__ = type

IFNAMSIZ = 15
CORE_BRIDGE = "core"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|k|m|g)?\s*$", re.IGNORECASE)
_MULTIPLIER = {None: 1, "bit": 1, "k": 10 ** 3, "kbit": 10 ** 3, "m": 10 ** 6, "mbit": 10 ** 6,
               "g": 10 ** 9, "gbit": 10 ** 9}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)?\s*$", re.IGNORECASE)
_TIME_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


# What a node may set for itself per provider, on top of the provider's own settings.
LINK_SETTINGS = ("rate_up", "rate_down", "delay", "jitter", "loss")
# Emulated links: NFQUEUE numbers per router (two per link: up, down).
FIRST_QUEUE = 1


class TopologyError(ValueError):
    """The inventory does not describe a buildable testbed; the message says what to fix."""


def parse_rate(value, what):
    """'3mbit', '500kbit', '2.5M' or a number of bit/s; empty or 0 means unshaped."""
    if value in (None, "", 0, "0"):
        return 0
    match = _RATE.match(str(value))
    if not match:
        raise TopologyError("%s: rate %r is not a tc rate like '3mbit' or '500kbit'" % (what, value))
    return int(float(match.group(1)) * _MULTIPLIER[(match.group(2) or "").lower() or None])


def parse_delay(value, what):
    """'20ms', '1.5ms', '0.3s', '500us' or a number of milliseconds; empty or 0 means none. In ms."""
    if value in (None, "", 0, "0"):
        return 0.0
    match = _TIME.match(str(value))
    if not match:
        raise TopologyError("%s: %r is not a time like '20ms', '0.3s' or a number of milliseconds" % (what, value))
    return float(match.group(1)) * _TIME_MS[(match.group(2) or "ms").lower()]


def parse_loss(value, what):
    """'0.5%' or 0.5 (percent of the packets of one direction); empty or 0 means none."""
    if value in (None, "", 0, "0"):
        return 0.0
    match = _PERCENT.match(str(value))
    if not match or float(match.group(1)) >= 100:
        raise TopologyError("%s: %r is not a loss rate like '0.5%%' (0 to below 100)" % (what, value))
    return float(match.group(1))


def _link_settings(settings, what):
    """The link settings of a provider or a node's link, parsed (only the keys given)."""
    parsers = {"rate_up": parse_rate, "rate_down": parse_rate, "delay": parse_delay, "jitter": parse_delay,
               "loss": parse_loss}
    return dict((key, parsers[key](settings[key], "%s %s" % (what, key))) for key in LINK_SETTINGS if key in settings)


def _check_jitter(link, what):
    if link["jitter"] > link["delay"]:
        raise TopologyError("%s: jitter %gms exceeds the delay %gms; a packet cannot leave before it came "
                            "(raise the delay or lower the jitter)" % (what, link["jitter"], link["delay"]))


def _ifname(name, what):
    if not re.match(r"^[A-Za-z0-9_.-]{1,%d}$" % IFNAMSIZ, str(name)):
        raise TopologyError("%s: %r is not a valid interface name (1-15 letters, digits, '_', '.', '-')"
                            % (what, name))
    return str(name)


def _index(value, what, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TopologyError("%s must be a whole number, not %r" % (what, value))
    if not low <= number <= high:
        raise TopologyError("%s is %d; it must be between %d and %d" % (what, number, low, high))
    return number


def _core_interface(cut, provider_index):
    """Provider routers meet on the last subnet of the base prefix."""
    last = cut.last_subnet()
    if provider_index > last.num_addresses - 2:
        raise TopologyError("provider index %d has no address on the core link %s: %s"
                            % (provider_index, last, cut.hint()))
    return "%s/%d" % (last.network_address + provider_index, last.prefixlen)


def _validated_providers(providers):
    result, names, nics, indices = [], set(), set(), set()
    if not providers:
        raise TopologyError("no providers: define mpstream_providers (name, index, nic) in the inventory")
    for number, provider in enumerate(providers, 1):
        if not isinstance(provider, dict) or not provider.get("name"):
            raise TopologyError("provider #%d has no name" % number)
        name = _ifname(provider["name"], "provider name")
        index = _index(provider.get("index"), "provider %s's index" % name, 1, 254)
        nic = _ifname(provider.get("nic") or "nic%d" % index, "provider %s's nic" % name)
        for seen, value, what in ((names, name, "name"), (indices, index, "index"), (nics, nic, "nic")):
            if value in seen:
                raise TopologyError("two providers share the %s %r" % (what, value))
            seen.add(value)
        link = dict(dict.fromkeys(LINK_SETTINGS), **dict((k, provider.get(k)) for k in LINK_SETTINGS))
        link = _link_settings(link, "provider %s" % name)
        _check_jitter(link, "provider %s" % name)
        result.append(dict(link, name=name, index=index, nic=nic))
    return sorted(result, key=lambda p: p["index"])


def _validated_nodes(nodes, providers):
    known = [p["name"] for p in providers]
    result, names, places = [], set(), set()
    for number, node in enumerate(nodes, 1):
        if not isinstance(node, dict) or not node.get("name"):
            raise TopologyError("node #%d has no name" % number)
        name = str(node["name"])
        if name in names:
            raise TopologyError("two nodes are named %r" % name)
        names.add(name)
        if node.get("site_index") is None or node.get("node_index") is None:
            raise TopologyError("node %s needs mpstream_site_index and mpstream_node_index in the inventory" % name)
        site = _index(node["site_index"], "node %s's mpstream_site_index" % name, 0, 255)
        index = _index(node["node_index"], "node %s's mpstream_node_index" % name, 2, 253)
        if (site, index) in places:
            raise TopologyError("node %s has the same site and node index (%d, %d) as another node"
                                % (name, site, index))
        places.add((site, index))
        wanted = node.get("providers")
        wanted = known if wanted is None else [str(p) for p in wanted]
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise TopologyError("node %s names provider(s) %s, but the inventory defines NICs only for %s "
                                "(mpstream_providers)" % (name, ", ".join(unknown), ", ".join(known)))
        if not wanted:
            raise TopologyError("node %s has no provider: it would have no NIC" % name)
        links = _validated_links(node.get("links"), name, wanted)
        result.append({"name": name, "site": site, "index": index, "providers": wanted, "links": links})
    return result


def _validated_links(links, node, providers):
    """A node's own link settings per provider (mpstream_node_links), on top of mpstream_providers."""
    if links in (None, ""):
        return {}
    if not isinstance(links, dict):
        raise TopologyError("node %s: mpstream_node_links must map provider names to settings "
                            "such as {isp1: {rate_up: 100mbit, rate_down: 100mbit}}" % node)
    result = {}
    for provider, settings in links.items():
        if provider not in providers:
            raise TopologyError("node %s: mpstream_node_links names provider %s, which the node has no NIC for "
                                "(it has %s)" % (node, provider, ", ".join(providers)))
        if not isinstance(settings, dict):
            raise TopologyError("node %s: mpstream_node_links.%s must be a mapping like {rate_up: 100mbit}"
                                % (node, provider))
        unknown = sorted(set(settings) - set(LINK_SETTINGS))
        if unknown:
            raise TopologyError("node %s: mpstream_node_links.%s has unknown setting(s) %s; known: %s"
                                % (node, provider, ", ".join(unknown), ", ".join(LINK_SETTINGS)))
        result[provider] = _link_settings(settings, "node %s %s" % (node, provider))
    return result


def plan_topology(prefix, providers, nodes, addressing=None, burst=6056, queue_ms=200):
    """The whole testbed as data (see the module's documentation for the layout)."""
    addressing = addressing or {}
    if not re.match(r"^[a-z][a-z0-9-]{0,19}$", str(prefix)):
        raise TopologyError("testbed_prefix %r: use 1-20 lower-case letters, digits or '-'" % (prefix,))
    providers = _validated_providers(providers)
    nodes = _validated_nodes(nodes, providers)
    by_name = {p["name"]: p for p in providers}
    core_ns = "%s-core" % prefix
    provider_ns = {p["name"]: "%s-%s" % (prefix, p["name"]) for p in providers}
    node_ns = {n["name"]: "%s-%s" % (prefix, n["name"]) for n in nodes}
    plan = {
        "prefix": prefix, "burst": int(burst), "queue_ms": int(queue_ms),
        "namespaces": [core_ns] + [provider_ns[p["name"]] for p in providers] + [node_ns[n["name"]] for n in nodes],
        "bridges": [{"ns": core_ns, "ifname": CORE_BRIDGE}],
        "veths": [], "addresses": {}, "routes": {}, "sysctls": {}, "shapers": [],
        "routers": [provider_ns[p["name"]] for p in providers],
        # Per provider router with delayed or lossy links: one NFQUEUE per link direction.
        "emulation": {},
    }

    try:
        cuts = dict((version, layout(version, addressing)) for version in (4, 6))
    except AddressingError as exc:
        raise TopologyError(str(exc))

    def address(version, provider, site, host):
        try:
            return cuts[version].host(provider, site, host)
        except AddressingError as exc:
            raise TopologyError(str(exc))

    def subnet(version, provider, site):
        found = ipaddress.ip_network(address(version, provider, site, GATEWAY_INDEX), strict=False)
        if found == cuts[version].last_subnet():
            raise TopologyError("site %d on provider %d takes %s, the subnet of the providers' core link: "
                                "use another site index, or %s" % (site, provider, found, cuts[version].hint()))
        return found

    sites_of = {p["name"]: sorted({n["site"] for n in nodes if p["name"] in n["providers"]}) for p in providers}
    for provider in providers:
        ns = provider_ns[provider["name"]]
        plan["sysctls"][ns] = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
        plan["veths"].append({"ns": core_ns, "ifname": provider["name"], "master": CORE_BRIDGE,
                              "peer_ns": ns, "peer_ifname": "core"})
        plan["addresses"][(ns, "core")] = [_core_interface(cuts[v], provider["index"]) for v in (4, 6)]
        for site in sites_of[provider["name"]]:
            bridge = "site%d" % site
            plan["bridges"].append({"ns": ns, "ifname": bridge})
            plan["addresses"][(ns, bridge)] = ["%s/%d" % (subnet(v, provider["index"], site).network_address
                                                          + GATEWAY_INDEX, cuts[v].prefixlen) for v in (4, 6)]
        # Reach the other providers' sites through the core.
        routes = []
        for other in providers:
            if other is provider:
                continue
            for site in sites_of[other["name"]]:
                for version in (4, 6):
                    gateway = _core_interface(cuts[version], other["index"]).split("/")[0]
                    routes.append({"dst": str(subnet(version, other["index"], site)), "gateway": gateway,
                                   "metric": 10})
        plan["routes"][ns] = routes

    for node in nodes:
        ns = node_ns[node["name"]]
        plan["routes"][ns] = []
        for name in node["providers"]:
            provider = by_name[name]
            router_side = "s%dn%d" % (node["site"], node["index"])
            plan["veths"].append({"ns": ns, "ifname": provider["nic"], "peer_ns": provider_ns[name],
                                  "peer_ifname": router_side, "peer_master": "site%d" % node["site"]})
            plan["addresses"][(ns, provider["nic"])] = [
                address(v, provider["index"], node["site"], node["index"]) for v in (4, 6)]
            for version in (4, 6):
                gateway = address(version, provider["index"], node["site"], GATEWAY_INDEX).split("/")[0]
                plan["routes"][ns].append({"dst": "0.0.0.0/0" if version == 4 else "::/0", "gateway": gateway,
                                           "metric": 100 * provider["index"]})
            link = dict(provider, **node["links"].get(name, {}))
            _check_jitter(link, "node %s's link on %s" % (node["name"], name))
            one_way = link["delay"] + link["jitter"]
            plan["shapers"].append({"ns": ns, "ifname": provider["nic"], "rate_bps": link["rate_up"],
                                    "one_way_ms": one_way})
            plan["shapers"].append({"ns": provider_ns[name], "ifname": router_side, "rate_bps": link["rate_down"],
                                    "one_way_ms": one_way})
            if link["delay"] or link["loss"]:
                links = plan["emulation"].setdefault(provider_ns[name], [])
                hosts = [a.split("/")[0] for a in plan["addresses"][(ns, provider["nic"])]]
                for direction in ("up", "down"):
                    links.append({"queue": FIRST_QUEUE + len(links), "direction": direction, "node": node["name"],
                                  "node_ns": ns, "nic": provider["nic"], "addresses": hosts, "delay_ms": link["delay"],
                                  "jitter_ms": link["jitter"], "loss_percent": link["loss"]})
    _size_queues(plan)
    return plan


def _size_queues(plan):
    """A shaper's queue holds queue_ms plus the longest round trip through its link.

    A TCP flow keeps a bandwidth-delay product in flight; a token bucket that cannot queue
    it drops the flow's bursts and the flow never reaches the shaped rate (at 300 ms RTT a
    200 ms queue kept goodput well below the rate). Without delays this is queue_ms as before.
    """
    farthest = max([s["one_way_ms"] for s in plan["shapers"]] + [0])
    for shaper in plan["shapers"]:
        extra = 2 * (shaper.pop("one_way_ms") + farthest) if farthest else 0
        shaper["queue_ms"] = int(plan["queue_ms"] + extra + 0.999)
