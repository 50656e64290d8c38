#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: testbed_network
short_description: Build or remove an emulated multi-homed, multi-provider network of namespaces
description:
  - Builds on the controller a NorNet-style testbed from network namespaces.
    Every provider is a router namespace C(PREFIX-PROVIDER) with one bridge per site;
    providers are joined by a core bridge in C(PREFIX-core); every node is a namespace
    C(PREFIX-NODE) with one NIC per provider, dual-stack addresses derived from the
    provider, site and node indices, and a main-table default route per provider.
  - Each access link is shaped with a token bucket (C(tbf)) in both directions.
  - Access links with a C(delay), C(jitter) or C(loss) get it without netem. The provider's
    router sends each direction of such a link to an NFQUEUE (iptables-nft rules in its
    C(mangle) tables, which the testbed owns), and one emulator process per router
    (C(python -m mpstream.paths.linkemu), kept running by C(mpstream.supervise)) releases every
    packet at its time. Routers without such links get neither rules nor a process.
  - Idempotent, with check mode and diff. It records the namespaces it created in
    C(/run/mpstream-testbed/PREFIX.json) and removes only those (and namespaces of the
    requested topology), together with the processes still running inside them.
author: mpstream developers (!UNKNOWN)
options:
  prefix:
    description: Prefix of every namespace name.
    type: str
    required: true
  providers:
    description: Providers, each with C(name), C(index) (1..), C(nic) (the node-side interface name),
      C(rate_up) and C(rate_down) (tc rates such as C(3mbit); empty for no shaping), C(delay) and
      C(jitter) (one way, added in each direction of every access link, such as C(20ms)) and
      C(loss) (percent of each direction's packets, such as C(0.5%)).
    type: list
    elements: dict
    default: []
  nodes:
    description: Nodes, each with C(name), C(site_index), C(node_index), C(providers)
      (names of the providers the node has a NIC for) and C(links) (the node's own
      C(rate_up), C(rate_down), C(delay), C(jitter), C(loss) per provider name, on top of the provider's).
    type: list
    elements: dict
    default: []
  addressing:
    description: Overrides of the NorNet addressing (C(ipv4_base), C(ipv4_site_bits), C(ipv4_prefixlen),
      and the same for C(ipv6)).
    type: dict
    default: {}
  burst:
    description: Token bucket size of the shapers, in bytes.
    type: int
    default: 6056
  queue_ms:
    description: Longest a packet may wait in a shaper's queue, in milliseconds, on top of the
      longest round trip through the link (so a TCP flow can keep a bandwidth-delay product queued).
    type: int
    default: 200
  python:
    description: Python of the controller with the C(mpstream) package, which runs the link
      emulators; empty for the Python that runs this module.
    type: str
    default: ""
  state:
    description: C(present) builds (and removes nodes no longer listed); C(absent) removes everything.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs root, network namespaces and veth on the controller; delayed or lossy links also
    need NFQUEUE in the kernel and iptables (nft variant) on the controller.
"""

EXAMPLES = r"""
- name: Build two sites with two providers
  mpstream.nornet.testbed_network:
    prefix: mps
    providers:
      - {name: isp1, index: 1, nic: nic1, rate_up: 3mbit, rate_down: 3mbit, delay: 10ms}
      - {name: isp2, index: 2, nic: nic2, rate_up: 3mbit, rate_down: 3mbit, delay: 20ms, jitter: 2ms, loss: 0.1%}
    nodes:
      - {name: push1, site_index: 1, node_index: 10, providers: [isp1, isp2]}
      - {name: server1, site_index: 2, node_index: 10, providers: [isp1, isp2],
         links: {isp1: {delay: 70ms}}}

- name: Remove it
  mpstream.nornet.testbed_network:
    prefix: mps
    state: absent
"""

RETURN = r"""
namespaces:
  description: The namespaces of the topology, in build order.
  returned: always
  type: list
  elements: str
  sample: [mps-core, mps-isp1, mps-isp2, mps-push1, mps-server1]
changes:
  description: What was (or, in check mode, would be) changed.
  returned: always
  type: list
  elements: str
  sample: ["create namespace mps-push1", "shape mps-push1/nic1 to 3mbit"]
emulators:
  description: The provider routers that run a link emulator, with its links (queue, direction,
    node, delay_ms, jitter_ms, loss_percent).
  returned: always
  type: dict
  sample: {mps-isp1: [{queue: 1, direction: up, node: push1, delay_ms: 10.0, jitter_ms: 0.0, loss_percent: 0.0}]}
"""

import errno
import json
import os
import shutil
import signal
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mpstream.nornet.plugins.module_utils.testbed_topology import TopologyError, plan_topology

try:
    from pyroute2 import NetNS, netns
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
except ImportError:
    HAS_PYROUTE2 = False

STATE_DIR = "/run/mpstream-testbed"
EMULATOR = "linkemu"  # supervised name of a router's link emulator
RULE_TAG = "mpstream-linkemu"
IFA_F_NODAD = 0x02
RT_PROTO_TESTBED = 160  # marks the routes this module owns (unassigned in rt_protos)
AF_INET = 2
AF_INET6 = 10


def kernel_problems():
    """What this kernel lacks for the testbed, as sentences that say what to fix."""
    problems = []
    if not os.path.exists("/proc/self/ns/net"):
        problems.append("the kernel has no network namespaces (CONFIG_NET_NS)")
    if not os.path.exists("/proc/sys/net/mptcp/enabled"):
        problems.append("the kernel does not speak MPTCP (no /proc/sys/net/mptcp; CONFIG_MPTCP, Linux >= 5.6)")
    return problems


class Builder:
    """Brings the live namespaces in line with a planned topology, or removes them."""

    def __init__(self, module, plan):
        self.module = module
        self.plan = plan
        self.check = module.check_mode
        self.changes = []
        self._handles = {}

    # -- helpers -------------------------------------------------------------
    def change(self, text):
        self.changes.append(text)
        return not self.check

    def ns(self, name):
        if name not in self._handles:
            self._handles[name] = NetNS(name, flags=os.O_CREAT)
        return self._handles[name]

    def close(self):
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def index(self, ns, ifname):
        found = self.ns(ns).link_lookup(ifname=ifname)
        return found[0] if found else None

    # -- state record ----------------------------------------------------------
    def record_path(self):
        return os.path.join(STATE_DIR, "%s.json" % self.plan["prefix"])

    def recorded(self, key="namespaces"):
        try:
            with open(self.record_path()) as handle:
                return json.load(handle).get(key, [])
        except (OSError, ValueError):
            return []

    def write_record(self, names, emulators=()):
        if self.check:
            return
        if not names:
            if os.path.exists(self.record_path()):
                os.unlink(self.record_path())
            return
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(self.record_path(), "w") as handle:
            json.dump({"namespaces": names, "emulators": sorted(emulators)}, handle)

    # -- removal -------------------------------------------------------------
    def remove_namespace(self, name):
        if not self.change("remove namespace %s" % name):
            return
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.close()
        pids = self.module.run_command(["ip", "netns", "pids", name])[1].split()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            deadline = time.monotonic() + 3
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if os.path.exists("/proc/%s" % p)]
                time.sleep(0.05)
        netns.remove(name)

    def absent(self):
        existing = set(netns.listnetns())
        owned = set(self.recorded()) | set(self.plan["namespaces"])
        for name in reversed(self.plan["namespaces"] + sorted(owned - set(self.plan["namespaces"]))):
            if name in existing:
                self.remove_namespace(name)
        self.write_record([])
        # The emulators died with their namespaces; their pid files and logs go too.
        if os.path.isdir(self.emulator_dir()) and self.change("remove %s" % self.emulator_dir()):
            shutil.rmtree(self.emulator_dir(), ignore_errors=True)

    # -- building --------------------------------------------------------------
    def present(self):
        existing = set(netns.listnetns())
        stale = set(self.recorded()) - set(self.plan["namespaces"])
        for name in sorted(stale & existing):
            self.remove_namespace(name)
        for name in self.plan["namespaces"]:
            if name not in existing and self.change("create namespace %s" % name):
                self.ns(name)
        self.write_record(self.plan["namespaces"], set(self.recorded("emulators")) | set(self.plan["emulation"]))
        if self.check and self.changes:
            # Namespaces are missing: everything inside them would be created too.
            self.changes.append("build links, addresses, routes and shapers inside them")
            return
        self.sysctls()
        self.bridges()
        self.veths()
        self.addresses()
        self.routes()
        self.shapers()
        self.emulation()
        self.write_record(self.plan["namespaces"], self.plan["emulation"])

    def sysctls(self):
        for ns, wanted in self.plan["sysctls"].items():
            keys = sorted(wanted)
            rc, out, err = self.module.run_command(["ip", "netns", "exec", ns, "sysctl", "-n"] + keys)
            current = out.split() if rc == 0 else []
            for key, value in zip(keys, current + [None] * len(keys)):
                if value != str(wanted[key]) and self.change("set %s %s=%s" % (ns, key, wanted[key])):
                    self.module.run_command(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                             "%s=%s" % (key, wanted[key])], check_rc=True)

    def bridges(self):
        for bridge in self.plan["bridges"]:
            ns, name = bridge["ns"], bridge["ifname"]
            if self.index(ns, name) is None and self.change("create bridge %s/%s" % (ns, name)):
                self.ns(ns).link("add", ifname=name, kind="bridge")
            self.up(ns, name)
        for ns in self.plan["namespaces"]:
            self.up(ns, "lo")

    def up(self, ns, ifname):
        idx = self.index(ns, ifname)
        if idx is None:
            return
        link = self.ns(ns).get_links(idx)[0]
        if not link["flags"] & 1 and self.change("bring up %s/%s" % (ns, ifname)):
            self.ns(ns).link("set", index=idx, state="up")

    def veths(self):
        for veth in self.plan["veths"]:
            ns, name, peer_ns, peer = veth["ns"], veth["ifname"], veth["peer_ns"], veth["peer_ifname"]
            here, there = self.index(ns, name), self.index(peer_ns, peer)
            if here is not None and there is not None:
                pass
            elif self.change("create link %s/%s <-> %s/%s" % (ns, name, peer_ns, peer)):
                for side_ns, idx in ((ns, here), (peer_ns, there)):
                    if idx is not None:  # half a pair: replace it
                        self.ns(side_ns).link("del", index=idx)
                try:
                    self.ns(ns).link("add", ifname=name, kind="veth", peer={"ifname": peer, "net_ns_fd": peer_ns})
                except NetlinkError as exc:
                    if exc.code == errno.EOPNOTSUPP:
                        self.module.fail_json(msg="this kernel has no veth driver (CONFIG_VETH): "
                                                  "the testbed cannot link its namespaces")
                    raise
            for side_ns, side, master in ((ns, name, veth.get("master")), (peer_ns, peer, veth.get("peer_master"))):
                if master:
                    self.enslave(side_ns, side, master)
                self.up(side_ns, side)

    def enslave(self, ns, ifname, master):
        idx, master_idx = self.index(ns, ifname), self.index(ns, master)
        if idx is None or master_idx is None:
            return
        link = self.ns(ns).get_links(idx)[0]
        if link.get_attr("IFLA_MASTER") != master_idx and self.change("attach %s/%s to %s" % (ns, ifname, master)):
            self.ns(ns).link("set", index=idx, master=master_idx)

    def addresses(self):
        for (ns, ifname), wanted in self.plan["addresses"].items():
            idx = self.index(ns, ifname)
            if idx is None:
                continue
            have = set()
            for msg in self.ns(ns).get_addr(index=idx):
                if msg["scope"] == 0:
                    have.add("%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]))
            for cidr in sorted(set(wanted) - have):
                if self.change("add address %s to %s/%s" % (cidr, ns, ifname)):
                    address, prefixlen = cidr.split("/")
                    self.ns(ns).addr("add", index=idx, address=address, prefixlen=int(prefixlen), flags=IFA_F_NODAD)
            for cidr in sorted(have - set(wanted)):
                if self.change("remove address %s from %s/%s" % (cidr, ns, ifname)):
                    address, prefixlen = cidr.split("/")
                    self.ns(ns).addr("del", index=idx, address=address, prefixlen=int(prefixlen))

    def routes(self):
        for ns, wanted in self.plan["routes"].items():
            handle = self.ns(ns)
            have = {}
            for family, anywhere in ((AF_INET, "0.0.0.0"), (AF_INET6, "::")):
                for msg in handle.get_routes(family=family, table=254, proto=RT_PROTO_TESTBED):
                    dst = "%s/%d" % (msg.get_attr("RTA_DST") or anywhere, msg["dst_len"])
                    have[(dst, msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_PRIORITY") or 0)] = msg
            want = {(r["dst"], r["gateway"], r["metric"]) for r in wanted}
            for dst, gateway, metric in sorted(want - set(have)):
                if self.change("add route %s via %s metric %d in %s" % (dst, gateway, metric, ns)):
                    handle.route("add", dst=dst, gateway=gateway, priority=metric, proto=RT_PROTO_TESTBED,
                                 family=AF_INET6 if ":" in gateway else AF_INET)
            for dst, gateway, metric in sorted(set(have) - want):
                if self.change("remove route %s via %s in %s" % (dst, gateway, ns)):
                    handle.route("del", dst=dst, gateway=gateway, priority=metric,
                                 family=AF_INET6 if ":" in gateway else AF_INET)

    def shapers(self):
        burst = self.plan["burst"]
        for shaper in self.plan["shapers"]:
            ns, ifname, rate, queue_ms = shaper["ns"], shaper["ifname"], shaper["rate_bps"], shaper["queue_ms"]
            idx = self.index(ns, ifname)
            if idx is None:
                continue
            current = None
            for qdisc in self.ns(ns).get_qdiscs(index=idx):
                if qdisc["parent"] == 0xFFFFFFFF:
                    current = qdisc
            params = None
            if current is not None and current.get_attr("TCA_KIND") == "tbf":
                params = current.get_nested("TCA_OPTIONS", "TCA_TBF_PARMS")
            if rate:
                limit = rate // 8 * queue_ms // 1000 + burst  # bytes, as tc computes it from latency
                if params and params["rate"] * 8 == rate and abs(params["limit"] - limit) <= limit // 100:
                    continue
                if self.change("shape %s/%s to %d bit/s, queue %d ms" % (ns, ifname, rate, queue_ms)):
                    self.ns(ns).tc("replace", "tbf", index=idx, handle="1:", rate="%dbit" % rate,
                                   burst=burst, latency="%dms" % queue_ms)
            elif params and self.change("remove shaper of %s/%s" % (ns, ifname)):
                self.ns(ns).tc("del", index=idx, handle="1:", root=True)

    # -- delay, jitter and loss ----------------------------------------------------
    def emulator_dir(self):
        return os.path.join(STATE_DIR, "%s-linkemu" % self.plan["prefix"])

    def emulation(self):
        """Emulators first, then the rules that feed them (a queue without a reader drops);
        on removal the other way round."""
        for ns in self.plan["routers"]:
            links = self.plan["emulation"].get(ns)
            if links:
                self.start_emulator(ns, links)
                self.queue_rules(ns, links)
            elif ns in self.recorded("emulators") or self.has_rules(ns):
                self.queue_rules(ns, [])
                self.stop_emulator(ns)

    def python(self):
        return self.module.params["python"] or sys.executable

    def supervise(self, ns, action, extra=()):
        argv = ["ip", "netns", "exec", ns, self.python(), "-m", "mpstream.supervise",
                action, "--name", "%s-%s" % (EMULATOR, ns), "--state-dir", self.emulator_dir()]
        if self.check:
            argv.append("--check")
        rc, out, err = self.module.run_command(argv + list(extra))
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {"failed": True, "msg": (err or out).strip()}
        if rc != 0 or result.get("failed"):
            self.module.fail_json(msg="link emulator of %s: %s" % (ns, result.get("msg") or err.strip()),
                                  changes=self.changes)
        return result

    def start_emulator(self, ns, links):
        command = [self.python(), "-m", "mpstream.paths.linkemu"]
        for link in links:
            command += ["--link", "%d:%g:%g:%g" % (link["queue"], link["delay_ms"], link["jitter_ms"],
                                                   link["loss_percent"])]
        if self.supervise(ns, "start", ["--", *command]).get("changed"):
            self.change("run the link emulator of %s (%d links)" % (ns, len(links) // 2))

    def stop_emulator(self, ns):
        if self.supervise(ns, "stop").get("changed"):
            self.change("stop the link emulator of %s" % ns)

    def iptables(self, ns, version, tool):
        return ["ip", "netns", "exec", ns, ("iptables" if version == 4 else "ip6tables") + tool]

    def has_rules(self, ns):
        return any(self.current_rules(ns, version) for version in (4, 6))

    def current_rules(self, ns, version):
        if not self.module.get_bin_path("iptables-save"):
            return []
        rc, out, err = self.module.run_command(self.iptables(ns, version, "-save") + ["-t", "mangle"])
        return sorted(line.lower() for line in out.splitlines() if line.startswith("-A ")) if rc == 0 else []

    def mac(self, ns, ifname):
        idx = self.index(ns, ifname)
        return self.ns(ns).get_links(idx)[0].get_attr("IFLA_ADDRESS") if idx is not None else None

    def queue_rules(self, ns, links):
        """The router's mangle tables: each direction of a delayed link to its queue.

        Up: what comes from the node's NIC (its MAC address, whatever the packet's source
        address: MPTCP or a missing source route may send one provider's address out of
        another's NIC). Down: what the router sends to the node's address."""
        for version in (4, 6):
            wanted = []
            for link in links:
                if link["direction"] == "up":
                    mac = self.mac(link["node_ns"], link["nic"])
                    if mac is None:
                        continue
                    match = "PREROUTING -m mac --mac-source %s" % mac
                    wanted.append(self.rule(match, link["queue"]))
                    continue
                for address in link["addresses"]:
                    if (":" in address) == (version == 6):
                        match = "POSTROUTING -d %s/%d" % (address, 32 if version == 4 else 128)
                        wanted.append(self.rule(match, link["queue"]))
            if self.current_rules(ns, version) == sorted(rule.lower() for rule in wanted):
                continue
            what = "send %d delayed link directions of %s to their queues (IPv%d)" % (len(links), ns, version) \
                if links else "remove the delay rules of %s (IPv%d)" % (ns, version)
            if self.change(what):
                table = "*mangle\n%s\nCOMMIT\n" % "\n".join(wanted)
                self.module.run_command(self.iptables(ns, version, "-restore"), data=table, check_rc=True)

    @staticmethod
    def rule(match, queue):
        return "-A %s -m comment --comment %s -j NFQUEUE --queue-num %d" % (match, RULE_TAG, queue)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prefix=dict(type="str", required=True),
            providers=dict(type="list", elements="dict", default=[]),
            nodes=dict(type="list", elements="dict", default=[]),
            addressing=dict(type="dict", default={}),
            burst=dict(type="int", default=6056),
            queue_ms=dict(type="int", default=200),
            python=dict(type="str", default=""),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg="pyroute2 is missing on the controller: install it (pip install pyroute2) and retry")
    if os.geteuid() != 0:
        module.fail_json(msg="the emulated testbed needs root: run ansible-playbook as root (or with sudo)")
    problems = kernel_problems()
    if problems:
        module.fail_json(msg="this kernel cannot run the emulated testbed: " + "; ".join(problems))
    params = module.params
    try:
        plan = plan_topology(params["prefix"], params["providers"], params["nodes"], params["addressing"],
                             params["burst"], params["queue_ms"])
    except TopologyError as exc:
        module.fail_json(msg="inventory error: %s" % exc)

    if plan["emulation"] and params["state"] == "present":
        missing = [tool for tool in ("iptables-restore", "ip6tables-restore") if not module.get_bin_path(tool)]
        if missing:
            module.fail_json(msg="delayed or lossy links need %s on the controller (Debian package iptables)"
                             % " and ".join(missing))
        rc, _, err = module.run_command([params["python"] or sys.executable, "-c", "import mpstream.paths.linkemu"])
        if rc != 0:
            module.fail_json(msg="delayed or lossy links need the mpstream package in the controller's Python "
                                 "(%s): %s" % (params["python"] or sys.executable, err.strip()[-300:]))
    before = sorted(n for n in netns.listnetns() if n in set(plan["namespaces"]))
    builder = Builder(module, plan)
    try:
        if params["state"] == "absent":
            builder.absent()
        else:
            builder.present()
    except NetlinkError as exc:
        module.fail_json(msg="netlink refused a change: %s" % exc, changes=builder.changes)
    finally:
        builder.close()
    after = [] if params["state"] == "absent" else plan["namespaces"]
    module.exit_json(
        changed=bool(builder.changes),
        namespaces=plan["namespaces"],
        changes=builder.changes,
        emulators=dict((ns, [dict((k, link[k]) for k in ("queue", "direction", "node", "delay_ms", "jitter_ms",
                                                            "loss_percent")) for link in links])
                       for ns, links in plan["emulation"].items()) if params["state"] == "present" else {},
        diff=dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n") if builder.changes else {},
    )


if __name__ == "__main__":
    main()
