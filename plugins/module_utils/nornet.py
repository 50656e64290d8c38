# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NorNet-style addressing: one subnet per provider per site, derived from indices.

NorNet Core numbers a node's address on provider P at site S as 10.P.S.N (IPv4) and
2001:700:4100:PPSS::N (IPv6). The same scheme is parameterised here by a base prefix, the
number of bits the site index takes and the size of each provider's subnet at a site, so
the emulated testbed can use the ranges reserved for benchmarking (198.18.0.0/15,
2001:2::/48) and real sites their own. Subnet number (P << site_bits) | S of the base.

198.18.0.0/15 holds 512 /24s: the testbed's default (4 site bits, /24) has room for sites
0-15, providers 1-31 and nodes 1-254. NorNet-sized inventories (sites up to 255) use
8 site bits with /26 subnets there: providers 1-7, nodes 1-62; or /27: providers 1-15,
nodes 1-30. IPv6 (/48 base, 8 site bits, /64) has room for every index up to 255.
"""

from __future__ import absolute_import, division, print_function

import ipaddress

__metaclass__ = type

# The emulated testbed's defaults: 198.18.(16P+S).N/24 and 2001:2:0:PPSS::N/64.
DEFAULT_IPV4_BASE = "198.18.0.0/15"
DEFAULT_IPV4_SITE_BITS = 4
DEFAULT_IPV4_PREFIXLEN = 24
DEFAULT_IPV6_BASE = "2001:2::/48"
DEFAULT_IPV6_SITE_BITS = 8
DEFAULT_IPV6_PREFIXLEN = 64
GATEWAY_INDEX = 1

_DEFAULTS = {
    4: (DEFAULT_IPV4_BASE, DEFAULT_IPV4_SITE_BITS, DEFAULT_IPV4_PREFIXLEN),
    6: (DEFAULT_IPV6_BASE, DEFAULT_IPV6_SITE_BITS, DEFAULT_IPV6_PREFIXLEN),
}


class AddressingError(ValueError):
    pass


class Layout(object):
    """How one address family's base prefix is cut: site bits and the subnets' length."""

    def __init__(self, version, base=None, site_bits=None, prefixlen=None):
        default_base, default_bits, default_len = _DEFAULTS[int(version)]
        self.version = int(version)
        self.key = "mpstream_addressing.ipv%d" % self.version
        try:
            self.base = ipaddress.ip_network(base or default_base)
        except ValueError as exc:
            raise AddressingError("%s_base: %s" % (self.key, exc))
        if self.base.version != self.version:
            raise AddressingError("%s_base %s is not an IPv%d prefix" % (self.key, self.base, self.version))
        self.site_bits = int(default_bits if site_bits in (None, "") else site_bits)
        self.prefixlen = int(default_len if prefixlen in (None, "") else prefixlen)
        self.subnet_bits = self.prefixlen - self.base.prefixlen
        if not 0 <= self.site_bits < self.subnet_bits or self.prefixlen > self.base.max_prefixlen - 2:
            raise AddressingError(
                "%s: %s cut into /%d subnets leaves %d bits for provider and site; %d site bits do not fit"
                % (self.key, self.base, self.prefixlen, max(self.subnet_bits, 0), self.site_bits))

    @property
    def max_site(self):
        return (1 << self.site_bits) - 1

    @property
    def max_provider(self):
        return (1 << (self.subnet_bits - self.site_bits)) - 1

    @property
    def max_host(self):
        return (1 << (self.base.max_prefixlen - self.prefixlen)) - 2

    def describe(self):
        return ("%s with %d site bits and /%d subnets has room for sites 0-%d, providers 1-%d and nodes 1-%d"
                % (self.base, self.site_bits, self.prefixlen, self.max_site, self.max_provider, self.max_host))

    def hint(self):
        if self.version == 4:
            return ("set %s_site_bits and %s_prefixlen (8 and 26 fit sites up to 255 with providers up to 7 "
                    "and nodes up to 62 in 198.18.0.0/15), or a larger %s_base" % (self.key, self.key, self.key))
        return "set %s_base to a shorter prefix, or %s_site_bits" % (self.key, self.key)

    def subnet(self, provider, site):
        provider, site = int(provider), int(site)
        if not 0 <= site <= self.max_site:
            raise AddressingError("site index %d does not fit: %s; %s" % (site, self.describe(), self.hint()))
        if not 1 <= provider <= self.max_provider:
            raise AddressingError("provider index %d does not fit: %s; %s" % (provider, self.describe(), self.hint()))
        index = (provider << self.site_bits) | site
        size = 1 << (self.base.max_prefixlen - self.prefixlen)
        return ipaddress.ip_network((int(self.base.network_address) + index * size, self.prefixlen))

    def last_subnet(self):
        """The base's last subnet (the testbed's providers meet there)."""
        size = 1 << (self.base.max_prefixlen - self.prefixlen)
        return ipaddress.ip_network((int(self.base.broadcast_address) - size + 1, self.prefixlen))

    def host(self, provider, site, node):
        subnet = self.subnet(provider, site)
        node = int(node)
        if not 0 < node <= self.max_host:
            raise AddressingError("host index %d does not fit %s: %s; %s"
                                  % (node, subnet, self.describe(), self.hint()))
        return "%s/%d" % (subnet.network_address + node, subnet.prefixlen)


def layout(version, addressing=None):
    """The layout of `version` from an `mpstream_addressing` dict (ipvN_base, _site_bits, _prefixlen)."""
    addressing = addressing or {}
    return Layout(version, addressing.get("ipv%d_base" % int(version)),
                  addressing.get("ipv%d_site_bits" % int(version)), addressing.get("ipv%d_prefixlen" % int(version)))


def provider_subnet(version, provider, site, base=None, site_bits=None, prefixlen=None):
    """The subnet (by default /24 for IPv4, /64 for IPv6) of a provider at a site."""
    return Layout(version, base, site_bits, prefixlen).subnet(provider, site)


def host_interface(version, provider, site, node, base=None, site_bits=None, prefixlen=None):
    """'ADDR/PREFIXLEN' of host index `node` in the provider's subnet at the site."""
    return Layout(version, base, site_bits, prefixlen).host(provider, site, node)


def interfaces(providers, site, node, addressing=None):
    """The NICs of a node: one per provider, with addresses and gateways.

    `providers` is a list of dicts with at least `name`, `index` and `nic`; `addressing`
    may override `ipv4_base`, `ipv4_site_bits`, `ipv4_prefixlen` and the same for ipv6.
    """
    layouts = dict((version, layout(version, addressing)) for version in (4, 6))
    result = []
    for provider in providers:
        index = provider["index"]
        entry = {"name": provider["nic"], "provider": provider["name"], "provider_index": int(index)}
        for version, cut in layouts.items():
            entry["ipv%d" % version] = cut.host(index, site, node)
            entry["gateway%d" % version] = cut.host(index, site, GATEWAY_INDEX).split("/")[0]
        result.append(entry)
    return result
