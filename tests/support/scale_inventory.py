"""A NorNet-shaped inventory of any size, on the emulated testbed.

The push node at site 1, the relay at site 2 (data-centre links), a viewer at every other
site; providers, rates and addressing as in `inventory/nornet20.example`, whose group
variables it copies (run it with `-e testbed_prefix=NAME`: the nodes have no SSH address).
Used by the scale test and `benchmarks/scale.py`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.support.testbed import REPO

EXAMPLE = REPO / "inventory" / "nornet20.example"
SERVER_RATE = "100mbit"


def site_indices(sites: int, spread: bool) -> list[int]:
    """1, 2, 3, ... or, with `spread`, indices across the whole 0-255 range (NorNet's are sparse)."""
    if not spread:
        return list(range(1, sites + 1))
    return [1, 2] + [3 + (i * 250) // max(sites - 2, 1) for i in range(sites - 2)]


def write_inventory(folder: Path, sites: int, providers: int = 3, link_rate: str = "20mbit",
                    spread: bool = False) -> Path:
    """An inventory folder of `sites` sites with `providers` providers each; returns the folder."""
    if sites < 3:
        raise ValueError("a scenario needs at least 3 sites: push, server and one client")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE / "group_vars", folder / "group_vars", dirs_exist_ok=True)
    names = [f"isp{p}" for p in range(1, providers + 1)]
    group_vars = yaml.safe_load((folder / "group_vars" / "all.yml").read_text())
    group_vars["mpstream_providers"] = [
        {"name": name, "index": p, "nic": f"nic{p}", "rate_up": link_rate, "rate_down": link_rate}
        for p, name in enumerate(names, 1)]
    (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars, sort_keys=False))
    indices = site_indices(sites, spread)

    def host(site: int, **more) -> dict:
        return {"mpstream_site_index": site, "mpstream_node_index": 10, **more}

    server_links = {name: {"rate_up": SERVER_RATE, "rate_down": SERVER_RATE} for name in names}
    inventory = {"all": {"children": {
        "testbed": {"children": {"push": None, "server": None, "client": None}},
        "push": {"hosts": {"push1": host(indices[0])}},
        "server": {"hosts": {"server1": host(indices[1], mpstream_node_links=server_links)}},
        "client": {"hosts": {f"client{s}": host(s) for s in indices[2:]}},
    }}}
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return folder
