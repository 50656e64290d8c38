# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filters for NorNet-style addressing (see module_utils/nornet.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mpstream.nornet.plugins.module_utils import nornet


def nornet_interfaces(providers, site, node, addressing=None):
    """{{ mpstream_providers | nornet_interfaces(site_index, node_index) }}"""
    return nornet.interfaces(providers, site, node, addressing)


def nornet_address(provider, version, site, node, base=None, site_bits=None, prefixlen=None):
    """{{ 1 | nornet_address(6, site, node) }} -> '2001:2:0:102::a/64'"""
    return nornet.host_interface(version, provider, site, node, base, site_bits, prefixlen)


def nornet_subnet(provider, version, site, base=None, site_bits=None, prefixlen=None):
    """{{ 1 | nornet_subnet(4, site) }} -> '198.18.17.0/24'"""
    return str(nornet.provider_subnet(version, provider, site, base, site_bits, prefixlen))


class FilterModule(object):
    def filters(self):
        return {
            "nornet_interfaces": nornet_interfaces,
            "nornet_address": nornet_address,
            "nornet_subnet": nornet_subnet,
        }
