#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: policy_rollback_guard
short_description: Restore a node's routing by itself unless the controller confirms it can still reach it
description:
  - Like C(netplan try) for the rules, routes and MPTCP endpoints that M(mpstream.nornet.policy_routing)
    and M(mpstream.nornet.mptcp_endpoints) own. C(state=armed) saves them to I(path) and leaves a
    detached process on the node that, after I(timeout) seconds, puts them back as saved
    unless C(state=confirmed) came first.
  - Use it around changes to routing over the links Ansible itself uses; confirm only
    after the controller has reached the node anew.
  - C(state=status) tells whether (and when) the guard rolled back.
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  state:
    description: C(armed), C(confirmed) or C(status).
    type: str
    choices: [armed, confirmed, status]
    default: armed
  path:
    description: File for the saved state; the outcome of a rollback is written next to it (C(PATH.rolled-back)).
    type: path
    required: true
  timeout:
    description: Seconds after arming when the guard restores the saved state.
    type: float
    default: 90
  protocol:
    description: Route/rule protocol number of the owned rules and routes (as in M(mpstream.nornet.policy_routing)).
    type: int
    default: 77
  owned_ids:
    description: Endpoint ids owned by M(mpstream.nornet.mptcp_endpoints); C([]) leaves endpoints out.
    type: list
    elements: int
    default: [100, 199]
notes:
  - Supports check mode (C(armed) and C(confirmed) then change nothing).
requirements:
  - pyroute2
"""

EXAMPLES = r"""
- name: Arm the rollback guard
  policy_rollback_guard:
    path: /var/lib/mpstream/routing-guard.json
    timeout: 90

- name: Confirm (the controller reached the node again)
  policy_rollback_guard:
    path: /var/lib/mpstream/routing-guard.json
    state: confirmed
"""

RETURN = r"""
pid:
  description: Process id of the guard (C(armed)).
  returned: when armed
  type: int
deadline:
  description: Unix time when the guard restores the saved state (C(armed)).
  returned: when armed
  type: float
rolled_back:
  description: Whether the guard restored the saved state.
  returned: always
  type: bool
rollback:
  description: What the guard restored, and when (C(status), C(confirmed) after a rollback).
  returned: when rolled back
  type: dict
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mpstream.nornet.plugins.module_utils.mptcp_pm import MptcpPmError, PathManager
from ansible_collections.mpstream.nornet.plugins.module_utils.mptcp_pm import diff as endpoint_diff
from ansible_collections.mpstream.nornet.plugins.module_utils.policy_routing_state import (
    PolicyRoutingError,
    apply,
    diff,
    read_owned,
    render,
)

try:
    from pyroute2 import IPRoute
except ImportError:
    IPRoute = None


def snapshot(protocol, owned):
    with IPRoute() as ipr:
        routing = read_owned(ipr, protocol)
    endpoints, limits = [], None
    if owned:
        with PathManager() as pm:
            endpoints = [ep for ep in pm.endpoints() if ep["id"] in owned]
            limits = pm.limits()
    return {"routing": routing, "endpoints": endpoints, "limits": limits}


def restore(saved, protocol, owned):
    """Make the owned state what `saved` says; returns what was done and what failed."""
    done, errors = [], []
    try:
        with IPRoute() as ipr:
            to_remove, to_add = diff(read_owned(ipr, protocol), saved["routing"])
            apply(ipr, to_remove, to_add, protocol)
            done += ["removed " + render(item) for item in to_remove] + ["added " + render(item) for item in to_add]
    except (PolicyRoutingError, OSError) as exc:
        errors.append(str(exc))
    if owned:
        try:
            with PathManager() as pm:
                current = [ep for ep in pm.endpoints() if ep["id"] in owned]
                to_remove, to_add = endpoint_diff(current, saved["endpoints"], owned)
                for ep in to_remove:
                    pm.delete(ep["id"])
                for ep in to_add:
                    pm.add(ep)
                if saved.get("limits"):
                    pm.set_limits(saved["limits"]["subflows"], saved["limits"]["add_addr_accepted"])
                done += ["removed endpoint %d" % ep["id"] for ep in to_remove]
                done += ["added endpoint %d" % ep["id"] for ep in to_add]
        except (MptcpPmError, OSError) as exc:
            errors.append(str(exc))
    return done, errors


def guard(path, deadline, protocol, owned):
    """The detached guard: wait, and restore unless the saved state was taken back (confirmed)."""
    while time.time() < deadline:
        if not os.path.exists(path):
            return
        time.sleep(0.1)
    try:
        with open(path) as handle:
            saved = json.load(handle)
    except (IOError, OSError, ValueError):
        return  # confirmed at the last moment
    if saved.get("pid") != os.getpid():
        return  # armed again by a newer run: that guard is in charge
    done, errors = restore(saved, protocol, owned)
    with open(path + ".rolled-back", "w") as handle:
        json.dump({"at": time.time(), "armed_at": saved.get("armed_at"), "restored": done, "errors": errors},
                  handle)
    os.unlink(path)


def detach(run):
    """Run `run()` in a grandchild that outlives the module and the connection (double fork)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        grandchild = int(os.read(read_end, 32) or 0)
        os.close(read_end)
        os.waitpid(pid, 0)
        return grandchild
    os.close(read_end)
    os.setsid()
    pid = os.fork()
    if pid:
        os.write(write_end, str(pid).encode())
        os._exit(0)
    os.close(write_end)
    # Let go of the connection's pipes, or the controller would wait for us to finish.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 65536)
    try:
        run()
    finally:
        os._exit(0)


def read_rollback(path):
    try:
        with open(path + ".rolled-back") as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["armed", "confirmed", "status"], default="armed"),
            path=dict(type="path", required=True),
            timeout=dict(type="float", default=90),
            protocol=dict(type="int", default=77),
            owned_ids=dict(type="list", elements="int", default=[100, 199]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    owned = set(range(params["owned_ids"][0], params["owned_ids"][1] + 1)) if params["owned_ids"] else set()
    rollback = read_rollback(path)

    if params["state"] == "status":
        module.exit_json(changed=False, rolled_back=rollback is not None, rollback=rollback, armed=os.path.exists(path))

    if params["state"] == "confirmed":
        changed = os.path.exists(path)
        if changed and not module.check_mode:
            os.unlink(path)
        if rollback is not None:
            module.fail_json(msg="too late: the guard already restored the previous routing", rolled_back=True,
                             rollback=rollback)
        module.exit_json(changed=changed, rolled_back=False)

    if IPRoute is None:
        module.fail_json(msg="the rollback guard needs pyroute2 on the node")
    if module.check_mode:
        module.exit_json(changed=False, rolled_back=False)
    try:
        saved = snapshot(params["protocol"], owned)
    except (MptcpPmError, OSError) as exc:
        module.fail_json(msg="cannot save the current routing: %s" % exc)
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    if rollback is not None:
        os.unlink(path + ".rolled-back")  # a new attempt: forget the previous outcome
    deadline = time.time() + params["timeout"]
    saved.update(armed_at=time.time(), deadline=deadline)
    # At its deadline the guard checks that the file still names it: arming again hands over to the new guard.
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(saved, handle)
    os.rename(tmp, path)
    pid = detach(lambda: guard(path, deadline, params["protocol"], owned))
    saved["pid"] = pid
    with open(tmp, "w") as handle:
        json.dump(saved, handle)
    os.rename(tmp, path)
    module.exit_json(changed=True, pid=pid, deadline=deadline, rolled_back=False)


if __name__ == "__main__":
    main()
