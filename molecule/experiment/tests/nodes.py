"""The experiment's nodes as molecule.yml places them (NorNet addressing, node index 10 at
sites 1, 2 and 3), and how the tests reach them."""

import os

import testinfra

SITES = {"push1": 1, "server1": 2, "client1": 3}
PROVIDERS = {1: "nic1", 2: "nic2"}


def ipv4(provider: int, site: int, node: int = 10) -> str:
    return f"198.18.{16 * provider + site}.{node}"


def ipv6(provider: int, site: int, node: int = 10) -> str:
    return f"2001:2:0:{provider}{site:02x}::{node:x}"


def addresses(name: str) -> dict[int, tuple[str, str]]:
    """provider index -> (IPv4, IPv6) of a node."""
    return {p: (ipv4(p, SITES[name]), ipv6(p, SITES[name])) for p in PROVIDERS}


def vm(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
