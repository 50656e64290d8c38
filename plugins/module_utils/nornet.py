# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NorNet-style addressing: one subnet per provider per site, derived from indices.

NorNet Core numbers a node's address on provider P at site S as 10.P.S.N (IPv4) and
2001:700:4100:PPSS::N (IPv6). The same scheme is parameterised here by a base prefix and
the number of bits the site index takes, so the emulated testbed can use the ranges
reserved for benchmarking (198.18.0.0/15, 2001:2::/48) and real sites their own.
"""

from __future__ import absolute_import, division, print_function

import ipaddress

__metaclass__ = type

# The emulated testbed's defaults: 198.18.(16P+S).N/24 and 2001:2:0:PPSS::N/64.
DEFAULT_IPV4_BASE = "198.18.0.0/15"
DEFAULT_IPV4_SITE_BITS = 4
DEFAULT_IPV6_BASE = "2001:2::/48"
DEFAULT_IPV6_SITE_BITS = 8
GATEWAY_INDEX = 1


class AddressingError(ValueError):
    pass


def _subnet(base, site_bits, provider, site, prefixlen):
    net = ipaddress.ip_network(base)
    provider, site = int(provider), int(site)
    if not 0 <= site < (1 << site_bits):
        raise AddressingError("site index %d does not fit %d bits" % (site, site_bits))
    subnet_bits = prefixlen - net.prefixlen
    index = (provider << site_bits) | site
    if provider < 1 or index >= (1 << subnet_bits):
        raise AddressingError(
            "provider index %d does not fit %s with %d site bits" % (provider, base, site_bits))
    subnets = net.subnets(new_prefix=prefixlen)
    first = next(subnets)
    return ipaddress.ip_network((int(first.network_address) + (index << (first.max_prefixlen - prefixlen)),
                                 prefixlen))


def provider_subnet(version, provider, site, base=None, site_bits=None):
    """The /24 (IPv4) or /64 (IPv6) of a provider at a site."""
    if int(version) == 4:
        return _subnet(base or DEFAULT_IPV4_BASE, DEFAULT_IPV4_SITE_BITS if site_bits is None else site_bits,
                       provider, site, 24)
    return _subnet(base or DEFAULT_IPV6_BASE, DEFAULT_IPV6_SITE_BITS if site_bits is None else site_bits,
                   provider, site, 64)


def host_interface(version, provider, site, node, base=None, site_bits=None):
    """'ADDR/PREFIXLEN' of host index `node` in the provider's subnet at the site."""
    subnet = provider_subnet(version, provider, site, base, site_bits)
    node = int(node)
    if not 0 < node < subnet.num_addresses - 1:
        raise AddressingError("host index %d does not fit %s" % (node, subnet))
    return "%s/%d" % (subnet.network_address + node, subnet.prefixlen)


def interfaces(providers, site, node, addressing=None):
    """The NICs of a node: one per provider, with addresses and gateways.

    `providers` is a list of dicts with at least `name`, `index` and `nic`;
    `addressing` may override `ipv4_base`, `ipv4_site_bits`, `ipv6_base`, `ipv6_site_bits`.
    """
    addressing = addressing or {}
    result = []
    for provider in providers:
        index = provider["index"]
        entry = {"name": provider["nic"], "provider": provider["name"], "provider_index": int(index)}
        for version in (4, 6):
            base = addressing.get("ipv%d_base" % version)
            bits = addressing.get("ipv%d_site_bits" % version)
            entry["ipv%d" % version] = host_interface(version, index, site, node, base, bits)
            entry["gateway%d" % version] = host_interface(version, index, site, GATEWAY_INDEX, base, bits).split("/")[0]
        result.append(entry)
    return result
