# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source-address policy routing for multi-homed nodes, as data.

One routing table per provider NIC: a rule `from ADDR lookup TABLE` per address, and in
each table the link route and the default route via that provider's gateway; besides,
main-table default routes with metrics so that the primary provider wins for sockets
that did not pick a source address.

Everything this code adds carries one route/rule protocol number (`protocol`), which is
how it recognises what it owns: it never touches a rule or route with another protocol.
The desired state and the diff are pure; `read_owned` and `apply` talk to the kernel
through pyroute2 (imported lazily, so the pure part can be used anywhere).
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import socket

__metaclass__ = type

DEFAULT_PROTOCOL = 77
DEFAULT_TABLE_BASE = 1000
DEFAULT_RULE_PRIORITY_BASE = 1000
DEFAULT_TABLE_METRIC = 10
DEFAULT_MAIN_METRIC_BASE = 10
MAIN_TABLE = 254

SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host"}
SCOPE_NUMBERS = dict((name, number) for number, name in SCOPES.items())
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY_VERSIONS = dict((af, version) for version, af in FAMILIES.items())

RULE_KEYS = ("kind", "family", "src", "table", "priority")
ROUTE_KEYS = ("kind", "family", "table", "dst", "gateway", "dev", "metric", "scope")


class PolicyRoutingError(ValueError):
    pass


def rule(family, src, table, priority):
    return {"kind": "rule", "family": family, "src": src, "table": table, "priority": priority}


def route(family, table, dst, dev, metric, gateway=None, scope="universe"):
    return {"kind": "route", "family": family, "table": table, "dst": dst, "gateway": gateway,
            "dev": dev, "metric": metric, "scope": scope}


def item_key(item):
    keys = RULE_KEYS if item["kind"] == "rule" else ROUTE_KEYS
    return tuple(item.get(key) for key in keys)


def provider_order(interfaces, primary=None):
    """Interfaces sorted primary first, then by provider index."""
    ordered = sorted(interfaces, key=lambda iface: int(iface["provider_index"]))
    if primary:
        names = [iface.get("provider") for iface in ordered] + [iface["name"] for iface in ordered]
        if primary not in names:
            raise PolicyRoutingError("primary provider %r is none of the interfaces' providers" % primary)
        ordered.sort(key=lambda iface: primary not in (iface.get("provider"), iface["name"]))
    return ordered


def desired_state(interfaces, table_base=DEFAULT_TABLE_BASE, rule_priority_base=DEFAULT_RULE_PRIORITY_BASE,
                  table_metric=DEFAULT_TABLE_METRIC, main_defaults=True,
                  main_metric_base=DEFAULT_MAIN_METRIC_BASE, primary=None):
    """The rules and routes a node with these NICs should have (a list of items)."""
    items = []
    seen_tables = {}
    for rank, iface in enumerate(provider_order(interfaces, primary)):
        dev = iface["name"]
        index = int(iface["provider_index"])
        table = int(iface.get("table") or table_base * index)
        if table in (0, 253, 254, 255) or not 0 < table < 2 ** 32:
            raise PolicyRoutingError("table %d of %s is reserved or out of range" % (table, dev))
        if seen_tables.setdefault(table, dev) != dev:
            raise PolicyRoutingError("%s and %s would share table %d" % (seen_tables[table], dev, table))
        for version in (4, 6):
            address = iface.get("ipv%d" % version)
            if not address:
                continue
            try:
                network = ipaddress.ip_interface(address)
            except ValueError as exc:
                raise PolicyRoutingError("%s: %s" % (dev, exc))
            if network.version != version:
                raise PolicyRoutingError("%s: ipv%d is %s" % (dev, version, address))
            gateway = iface.get("gateway%d" % version)
            if gateway:
                gateway = str(ipaddress.ip_address(gateway))
            host = "%s/%d" % (network.ip, network.max_prefixlen)
            items.append(rule(version, host, table, rule_priority_base + index))
            items.append(route(version, table, str(network.network), dev, table_metric,
                               scope="link" if version == 4 else "universe"))
            if gateway:
                items.append(route(version, table, "default", dev, table_metric, gateway=gateway))
                if main_defaults:
                    items.append(route(version, MAIN_TABLE, "default", dev, main_metric_base + rank,
                                       gateway=gateway))
    return items


def diff(current, desired):
    """(to_remove, to_add): owned items to delete and items to create, in a safe order."""
    current_keys = set(item_key(item) for item in current)
    desired_keys = set(item_key(item) for item in desired)
    to_remove = [item for item in current if item_key(item) not in desired_keys]
    to_add = [item for item in desired if item_key(item) not in current_keys]
    # Add link routes before the default routes whose gateway they make reachable, and
    # rules last (a rule pointing at an empty table would blackhole); remove in reverse.
    to_add.sort(key=_add_rank)
    to_remove.sort(key=_add_rank, reverse=True)
    return _unique(to_remove), _unique(to_add)


def _unique(items):
    seen, result = set(), []
    for item in items:
        if item_key(item) not in seen:
            seen.add(item_key(item))
            result.append(item)
    return result


def _add_rank(item):
    if item["kind"] == "rule":
        return 2
    return 1 if item["gateway"] else 0


def render(item):
    """One item as the `ip` command line that would create it (for diffs and logs)."""
    if item["kind"] == "rule":
        return "ip -%d rule add from %s lookup %d priority %d" % (
            item["family"], item["src"], item["table"], item["priority"])
    words = ["ip -%d route add %s" % (item["family"], item["dst"])]
    if item["gateway"]:
        words.append("via %s" % item["gateway"])
    words.append("dev %s" % item["dev"])
    words.append("table %s" % ("main" if item["table"] == MAIN_TABLE else item["table"]))
    words.append("metric %d" % item["metric"])
    if item["scope"] != "universe":
        words.append("scope %s" % item["scope"])
    return " ".join(words)


def render_state(items):
    return "".join(line + "\n" for line in sorted(render(item) for item in items))


# --- kernel side (pyroute2) ---------------------------------------------------------


def link_names(ipr):
    return dict((link["index"], link.get_attr("IFLA_IFNAME")) for link in ipr.get_links())


def read_owned(ipr, protocol=DEFAULT_PROTOCOL):
    """The rules and routes in the kernel that carry our protocol number."""
    names = link_names(ipr)
    items = []
    for version, af in sorted(FAMILIES.items()):
        for msg in ipr.get_rules(family=af):
            if msg.get_attr("FRA_PROTOCOL") != protocol:
                continue
            src = msg.get_attr("FRA_SRC")
            src = "%s/%d" % (src, msg["src_len"]) if src else "all"
            table = msg.get_attr("FRA_TABLE") or msg["table"]
            items.append(rule(version, src, table, msg.get_attr("FRA_PRIORITY") or 0))
        for msg in ipr.route("dump", family=af):
            if msg["proto"] != protocol:
                continue
            dst = msg.get_attr("RTA_DST")
            dst = "%s/%d" % (dst, msg["dst_len"]) if dst else "default"
            if dst != "default":
                dst = str(ipaddress.ip_network(dst, strict=False))
            items.append(route(version, msg.get_attr("RTA_TABLE") or msg["table"], dst,
                               names.get(msg.get_attr("RTA_OIF"), msg.get_attr("RTA_OIF")),
                               msg.get_attr("RTA_PRIORITY") or 0, gateway=msg.get_attr("RTA_GATEWAY"),
                               scope=SCOPES.get(msg["scope"], str(msg["scope"]))))
    return items


def _route_args(item, names):
    index = dict((name, number) for number, name in names.items()).get(item["dev"])
    if index is None:
        raise PolicyRoutingError("no network interface %r on this node" % item["dev"])
    args = {"family": FAMILIES[item["family"]], "table": item["table"], "oif": index,
            "priority": item["metric"], "scope": SCOPE_NUMBERS.get(item["scope"], 0)}
    if item["dst"] == "default":
        args["dst"] = "::/0" if item["family"] == 6 else "0.0.0.0/0"
    else:
        args["dst"] = item["dst"]
    if item["gateway"]:
        args["gateway"] = item["gateway"]
    return args


def _rule_args(item):
    address, length = item["src"].split("/")
    return {"family": FAMILIES[item["family"]], "src": address, "src_len": int(length),
            "table": item["table"], "priority": item["priority"]}


def apply(ipr, to_remove, to_add, protocol=DEFAULT_PROTOCOL):
    """Delete then create items; raises PolicyRoutingError naming the item that failed."""
    from pyroute2.netlink.exceptions import NetlinkError

    names = link_names(ipr)
    for action, items in (("del", to_remove), ("add", to_add)):
        for item in items:
            try:
                if item["kind"] == "rule":
                    ipr.rule(action, protocol=protocol, **_rule_args(item))
                elif action == "del" and item["dev"] not in names.values():
                    continue  # the interface went away, and its routes with it
                else:
                    ipr.route(action, proto=protocol, **_route_args(item, names))
            except NetlinkError as exc:
                if action == "del" and exc.code in (2, 3):  # ENOENT, ESRCH: already gone
                    continue
                raise PolicyRoutingError("%s failed: %s" % (
                    render(item).replace(" add ", " %s " % action, 1), exc))
