#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mptcp_kernel_facts
short_description: What MPTCP the running kernel offers, as facts
description:
  - Tells upstream MPTCP (RFC 8684, Linux 5.6 and newer, C(net.mptcp.enabled)) from the
    out-of-tree multipath-tcp.org kernel (RFC 6824, C(net.mptcp.mptcp_enabled)) and from
    a kernel without MPTCP, and reports the kernel version, the available path managers
    and schedulers and the current C(net.mptcp.*) values.
  - Sets the fact C(mptcp_kernel) (see RETURN).
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options: {}
notes:
  - Supports check mode (it changes nothing).
"""

EXAMPLES = r"""
- name: Find out what MPTCP this kernel has
  mpstream.nornet.mptcp_kernel_facts:

- name: Report it
  ansible.builtin.debug:
    msg: "{{ mptcp_kernel.flavour }} MPTCP on {{ mptcp_kernel.release }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    mptcp_kernel:
      description:
        - C(flavour) is C(upstream), C(out_of_tree) or C(none); C(release) the running
          kernel (C(uname -r)) and C(version) its dotted numeric part; C(enabled);
          C(path_managers) and C(schedulers) available; C(sysctls) maps every
          C(net.mptcp.*) name to its value; C(tcp_rto_max) whether the kernel lets the
          retransmission timeout be capped (C(net.ipv4.tcp_rto_max_ms), 6.15 and newer).
      type: dict
      sample:
        flavour: upstream
        release: 6.12.48+deb13-amd64
        version: 6.12.48
        enabled: true
        path_managers: [kernel, userspace]
        schedulers: [default]
        sysctls: {net.mptcp.enabled: "1", net.mptcp.stale_loss_cnt: "4"}
        tcp_rto_max: false
"""

import os
import platform
import re

from ansible.module_utils.basic import AnsibleModule

MPTCP_DIR = "/proc/sys/net/mptcp"


def _read(name):
    try:
        with open(os.path.join(MPTCP_DIR, name)) as handle:
            return " ".join(handle.read().split())
    except (IOError, OSError):
        return None


def kernel_facts():
    release = platform.release()
    match = re.match(r"(\d+(?:\.\d+){0,2})", release)
    sysctls = {}
    if os.path.isdir(MPTCP_DIR):
        for name in sorted(os.listdir(MPTCP_DIR)):
            value = _read(name)
            if value is not None:
                sysctls["net.mptcp." + name] = value
    if "net.mptcp.enabled" in sysctls:
        flavour, enabled = "upstream", sysctls["net.mptcp.enabled"] == "1"
        path_managers = (sysctls.get("net.mptcp.available_path_managers") or "kernel").split()
        schedulers = (sysctls.get("net.mptcp.available_schedulers") or "default").split()
    elif "net.mptcp.mptcp_enabled" in sysctls:
        flavour, enabled = "out_of_tree", sysctls["net.mptcp.mptcp_enabled"] != "0"
        # The out-of-tree kernel lists its modules only through the current choice.
        path_managers = [sysctls.get("net.mptcp.mptcp_path_manager", "default")]
        schedulers = [sysctls.get("net.mptcp.mptcp_scheduler", "default")]
    else:
        flavour, enabled, path_managers, schedulers = "none", False, [], []
    return {
        "flavour": flavour,
        "release": release,
        "version": match.group(1) if match else "0",
        "enabled": enabled,
        "path_managers": path_managers,
        "schedulers": schedulers,
        "sysctls": sysctls,
        "tcp_rto_max": os.path.exists("/proc/sys/net/ipv4/tcp_rto_max_ms"),
    }


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"mptcp_kernel": kernel_facts()})


if __name__ == "__main__":
    main()
