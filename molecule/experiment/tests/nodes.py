"""The experiment's nodes as molecule.yml places them (NorNet addressing, node index 10 at
sites 1, 2 and 3), and how the tests reach them."""

import os

import testinfra
from ansible_collections.mpstream.nornet.plugins.module_utils.nornet import host_interface, provider_subnet

SITES = {"push1": 1, "server1": 2, "client1": 3}
PROVIDERS = {1: "nic1", 2: "nic2"}


def ipv4(provider: int, site: int, node: int = 10) -> str:
    """The scheme's address (the roles' own nornet module), without its prefix length."""
    return host_interface(4, provider, site, node).split("/")[0]


def ipv6(provider: int, site: int, node: int = 10) -> str:
    return host_interface(6, provider, site, node).split("/")[0]


def subnet4(provider: int, site: int) -> str:
    return str(provider_subnet(4, provider, site))


def addresses(name: str) -> dict[int, tuple[str, str]]:
    """provider index -> (IPv4, IPv6) of a node."""
    return {p: (ipv4(p, SITES[name]), ipv6(p, SITES[name])) for p in PROVIDERS}


def vm(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
