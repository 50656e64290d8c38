#!/usr/bin/env python3
"""Delay, jitter and loss on the emulated testbed: configured against measured, and the CPU it costs.

Builds a testbed of N sites (one node `nS` per site, 3 providers, every access link shaped
to 4 Mbit/s) with the testbed role, then for each configured RTT (every provider's access
links get RTT/4 one way, so two nodes see RTT between them):

- load: iperf3 TCP from n1 to n2 over isp2 for `--seconds`, which fills the 4 Mbit/s shaper;
  goodput is what the receiver got after the first 5 s (slow start), against the shaped rate;
- RTT: ping from n1 to n2 over isp1 at the same time (another router's emulator carries the
  load, both on the same 2 cores), p50 and p99 of the per-packet times;
- CPU: utime + stime of every link emulator over the load window, and over an idle window,
  in % of one core.

Then, on n1's isp1 link alone: jitter (20 ms +- 5 ms each way: spread of the RTT against a
sum of two uniform +-5 ms) and loss alone (1 % each way: 10 000 pings, expected round-trip loss
1 - 0.99^2).

    .venv/bin/python benchmarks/link_emulation.py [--sites 3,20] [--rtts 20,80,300] [--seconds 20]

Needs root, iperf3 and iptables. Removes the testbed, its emulators and its iperf3 servers,
also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.testbed import netns_exec, run_playbook  # noqa: E402

PREFIX = "lbm"
RATE = "4mbit"
RATE_BPS = 4_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
EMULATOR_DIR = Path("/run/mpstream-testbed") / f"{PREFIX}-linkemu"
# Sites up to 255 need the NorNet-scale cut of the benchmarking range (as nornet20.example).
WIDE = {"ipv4_site_bits": 8, "ipv4_prefixlen": 26, "ipv6_site_bits": 8}


def topology_module():
    path = REPO / "plugins" / "module_utils"
    for name in ("nornet", "testbed_topology"):
        spec = importlib.util.spec_from_file_location(f"ansible.module_utils.{name}", path / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def providers(delay_ms: float) -> list[dict]:
    return [{"name": f"isp{p}", "index": p, "nic": f"nic{p}", "rate_up": RATE, "rate_down": RATE,
             "delay": f"{delay_ms:g}ms"} for p in (1, 2, 3)]


def write_inventory(folder: Path, sites: int, delay_ms: float, n1_links: dict | None = None) -> dict:
    """The inventory for the role; returns the variables the plan needs."""
    addressing = WIDE if sites > 15 else {}
    (folder / "group_vars").mkdir(parents=True, exist_ok=True)
    group_vars = {"mpstream_providers": providers(delay_ms), "mpstream_addressing": addressing,
                  "ansible_connection": "netns", "ansible_netns_name": "{{ testbed_prefix }}-{{ inventory_hostname }}"}
    (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    hosts = {f"n{s}": {"mpstream_site_index": s, "mpstream_node_index": 10} for s in range(1, sites + 1)}
    if n1_links:
        hosts["n1"]["mpstream_node_links"] = n1_links
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"testbed": {"hosts": hosts}}}}))
    nodes = [{"name": name, "site_index": h["mpstream_site_index"], "node_index": 10,
              "links": h.get("mpstream_node_links", {})} for name, h in hosts.items()]
    return {"providers": group_vars["mpstream_providers"], "nodes": nodes, "addressing": addressing}


def apply(folder: Path) -> float:
    started = time.monotonic()
    run_playbook("playbooks/testbed.yml", "-i", str(folder), extra_vars={"testbed_prefix": PREFIX})
    return time.monotonic() - started


def remove(folder: Path) -> None:
    run_playbook("playbooks/testbed.yml", "-i", str(folder),
                 extra_vars={"testbed_prefix": PREFIX, "testbed_state": "absent"}, check=False)


def source_routes(plan: dict) -> dict[tuple[str, int], str]:
    """Host routes so that a provider's address is reached over that provider (no multihoming
    role here); returns each node's IPv4 address per provider index."""
    addresses, gateways = {}, {}
    for (ns, nic), cidrs in plan["addresses"].items():
        if ns.startswith(PREFIX + "-n") and nic.startswith("nic"):
            addresses[(ns, int(nic[3:]))] = cidrs[0].split("/")[0]
    for ns, routes in plan["routes"].items():
        for route in routes:
            if ns.startswith(PREFIX + "-n") and route["dst"] == "0.0.0.0/0":
                gateways[(ns, route["metric"] // 100)] = route["gateway"]
    for ns in {ns for ns, _ in addresses}:
        batch = "".join(f"route replace {address}/32 via {gateways[(ns, provider)]}\n"
                        for (other, provider), address in addresses.items() if other != ns)
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
    return addresses


def emulator_pids() -> list[int]:
    pids = []
    for pid_file in EMULATOR_DIR.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            child = json.loads(pid_file.read_text()).get("child_pid")
            if child:
                pids.append(int(child))
    return pids


def cpu_seconds(pids: list[int], kernel_only: bool = False) -> float:
    """utime + stime (or stime alone: the forwarding the emulator's verdicts do in the kernel)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (0 if kernel_only else int(fields[11])) + int(fields[12])
    return total / CLK_TCK


def ping_times(ns: str, source: str, target: str, count: int, interval: float) -> tuple[list[float], int]:
    out = netns_exec(ns, "ping", "-n", "-I", source, "-i", f"{interval:g}",
                     "-c", str(count), "-W", "2", target, timeout=count * interval + 60).stdout
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
    return times, count - len(times)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def under_load(addresses: dict, seconds: int) -> dict:
    """iperf3 n1 -> n2 over isp2 with a ping n1 -> n2 over isp1 beside it."""
    n1, n2 = f"{PREFIX}-n1", f"{PREFIX}-n2"
    netns_exec(n1, "ping", "-c", "3", "-i", "0.2", "-I", addresses[(n1, 1)], addresses[(n2, 1)])
    netns_exec(n1, "ping", "-c", "3", "-i", "0.2", "-I", addresses[(n1, 2)], addresses[(n2, 2)])
    server = subprocess.Popen(["ip", "netns", "exec", n2, "iperf3", "-s", "-1", "-J", "-B", addresses[(n2, 2)]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        omit = 5
        client = subprocess.Popen(["ip", "netns", "exec", n1, "iperf3", "-c", addresses[(n2, 2)], "-B",
                                   addresses[(n1, 2)], "-t", str(seconds), "-J", "--get-server-output"],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(omit)
        pids = emulator_pids()
        cpu_before, kernel_before, started = cpu_seconds(pids), cpu_seconds(pids, True), time.monotonic()
        interval = 0.05
        times, lost = ping_times(n1, addresses[(n1, 1)], addresses[(n2, 1)], int((seconds - 1) / interval),
                                 interval)
        elapsed = time.monotonic() - started
        cpu = (cpu_seconds(pids) - cpu_before) / elapsed
        kernel = (cpu_seconds(pids, True) - kernel_before) / elapsed
        report = json.loads(client.communicate(timeout=seconds + 60)[0])
    finally:
        server.kill()
        server.wait()
    goodput = steady_goodput(report, omit)
    return {"p50": quantile(times, 0.5), "p99": quantile(times, 0.99), "pings": len(times), "lost": lost,
            "goodput": goodput, "cpu": cpu, "kernel_cpu": kernel}


def steady_goodput(report: dict, omit: float) -> float:
    """What the receiver got per second after slow start, to the end of the sender's run.

    iperf3's own total counts the last RTT plus the shaper's queue as never received
    (up to 0.8 s of data at 300 ms RTT), which would understate a long link's goodput."""
    intervals = report["server_output_json"]["intervals"]
    steady = [i["sum"] for i in intervals if i["sum"]["start"] >= omit]
    return sum(i["bytes"] for i in steady) * 8 / sum(i["seconds"] for i in steady)


def idle_cpu(seconds: float) -> float:
    pids = emulator_pids()
    before = cpu_seconds(pids)
    time.sleep(seconds)
    return (cpu_seconds(pids) - before) / seconds


def run_sites(sites: int, rtts: list[int], seconds: int, topology) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="linkemu-bench-") as tmp:
        folder = Path(tmp)
        try:
            for rtt in rtts:
                variables = write_inventory(folder, sites, rtt / 4)
                build = apply(folder)
                plan = topology.plan_topology(PREFIX, variables["providers"], variables["nodes"],
                                              variables["addressing"])
                addresses = source_routes(plan)
                idle = idle_cpu(5)
                links = sum(len(queues) for queues in plan["emulation"].values()) // 2
                row = {"sites": sites, "rtt": rtt, "build_s": build, "idle_cpu": idle, "links": links,
                       "emulators": len(emulator_pids()), **under_load(addresses, seconds)}
                rows.append(row)
                print(format_row(row), flush=True)
        finally:
            remove(folder)
    return rows


def jitter_and_loss(topology) -> dict:
    with tempfile.TemporaryDirectory(prefix="linkemu-bench-") as tmp:
        folder = Path(tmp)
        try:
            variables = write_inventory(folder, 3, 0, {"isp1": {"delay": "20ms", "jitter": "5ms"}})
            apply(folder)
            plan = topology.plan_topology(PREFIX, variables["providers"], variables["nodes"], variables["addressing"])
            addresses = source_routes(plan)
            n1, n2 = f"{PREFIX}-n1", f"{PREFIX}-n2"
            times, _ = ping_times(n1, addresses[(n1, 1)], addresses[(n2, 1)], 1000, 0.02)
            offsets = [t - 40 for t in times]
            variables = write_inventory(folder, 3, 0, {"isp1": {"loss": "1%"}})
            apply(folder)
            source_routes(plan)
            netns_exec(n1, "ping", "-c", "3", "-I", addresses[(n1, 1)], addresses[(n2, 1)])
            _, lost = ping_times(n1, addresses[(n1, 1)], addresses[(n2, 1)], 10_000, 0.002)
        finally:
            remove(folder)
    return {"jitter_stdev": statistics.pstdev(offsets), "jitter_expected_stdev": 5 * (2 / 3) ** 0.5,
            "jitter_p1": quantile(offsets, 0.01), "jitter_p99": quantile(offsets, 0.99),
            "jitter_min": min(offsets), "jitter_max": max(offsets),
            "loss_percent": lost / 100, "loss_expected_percent": 100 * (1 - 0.99 ** 2)}


def format_row(row: dict) -> str:
    within = "yes" if (abs(row["p50"] - row["rtt"]) <= 0.05 * row["rtt"] + 1
                       and abs(row["p99"] - row["rtt"]) <= 0.10 * row["rtt"]
                       and row["goodput"] >= 0.9 * RATE_BPS) else "NO"
    return (f"| {row['sites']:>5} | {row['rtt']:>4} | {row['p50']:8.2f} | {row['p99']:8.2f} | {row['lost']:>4} "
            f"| {row['goodput'] / 1e6:7.3f} ({100 * row['goodput'] / RATE_BPS:5.1f} %) "
            f"| {100 * row['cpu']:6.2f} ({100 * row['kernel_cpu']:5.2f}) | {100 * row['idle_cpu']:6.2f} "
            f"| {row['emulators']} / {row['links']} | {row['build_s']:5.1f} "
            f"| {within} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="3,20")
    parser.add_argument("--rtts", default="20,80,300")
    parser.add_argument("--seconds", type=int, default=20, help="iperf3 run (the first 5 s are omitted)")
    parser.add_argument("--no-jitter-loss", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    topology = topology_module()
    print(f"kernel {os.uname().release}, load {os.getloadavg()[0]:.1f}, links shaped to {RATE}; "
          "ping n1->n2 over isp1 while iperf3 n1->n2 fills isp2")
    print("| sites | RTT ms | p50 ms | p99 ms | lost | goodput Mbit/s (of rate) "
          "| emulators' CPU % under load (of it kernel) | idle CPU % | emulators / links | build s | within target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sites in (int(s) for s in args.sites.split(",") if s):
        run_sites(sites, [int(r) for r in args.rtts.split(",")], args.seconds, topology)
    if not args.no_jitter_loss:
        result = jitter_and_loss(topology)
        print(f"jitter 20 ms +- 5 ms on n1's isp1 link (RTT 40 ms): offsets from 40 ms: stdev "
              f"{result['jitter_stdev']:.2f} ms (uniform sum: {result['jitter_expected_stdev']:.2f}), p1 "
              f"{result['jitter_p1']:.2f}, p99 {result['jitter_p99']:.2f}, min {result['jitter_min']:.2f}, "
              f"max {result['jitter_max']:.2f} (range +-10)")
        print(f"loss 1 % each way on n1's isp1 link: {result['loss_percent']:.2f} % of 10 000 pings lost "
              f"(expected {result['loss_expected_percent']:.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
