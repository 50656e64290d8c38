#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mptcp_endpoints
short_description: MPTCP path manager endpoints and limits of the upstream Linux kernel
description:
  - Sets the in-kernel path manager's endpoints (C(ip mptcp endpoint)) and limits
    (C(ip mptcp limits)) over generic netlink with pyroute2.
  - The module owns a range of endpoint ids (I(owned_ids)); with C(state=present) the
    owned ids hold exactly the listed endpoints, and endpoints with other ids (added by
    hand or by other tools) are never touched.
  - An endpoint whose address, flags or device changed is removed and added again, which
    also re-creates the subflows that use it.
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  endpoints:
    description: The endpoints, one per local address.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Endpoint id, within I(owned_ids).
        type: int
        required: true
      address:
        description: Local IPv4 or IPv6 address.
        type: str
        required: true
      flags:
        description:
          - C(signal) announces the address to peers (nodes that accept connections),
            C(subflow) opens subflows from it (nodes that connect), C(fullmesh) opens one
            to every known peer address, C(backup) uses it only when no other subflow works.
        type: list
        elements: str
        choices: [signal, subflow, backup, fullmesh]
        default: []
      dev:
        description: Interface the address belongs to.
        type: str
      port:
        description: Port to announce with C(signal) (0 for the connection's port).
        type: int
        default: 0
  limits:
    description: Path manager limits; left as they are when not given.
    type: dict
    suboptions:
      subflows:
        description: Additional subflows per connection (kernel maximum 8).
        type: int
        required: true
      add_addr_accepted:
        description: Addresses announced by the peer that are used per connection (maximum 8).
        type: int
        required: true
  owned_ids:
    description: First and last endpoint id the module owns.
    type: list
    elements: int
    default: [100, 199]
  state:
    description: C(present) makes the owned endpoints the listed ones, C(absent) removes all owned endpoints.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode.
  - Runs in the network namespace of the target (endpoints are per namespace).
requirements:
  - pyroute2
  - a kernel with upstream MPTCP (5.6 or newer)
"""

EXAMPLES = r"""
- name: A node that connects opens subflows from both providers to every peer address
  mptcp_endpoints:
    endpoints:
      - {id: 102, address: 198.18.19.10, dev: nic1, flags: [subflow, fullmesh]}
      - {id: 104, address: 198.18.35.10, dev: nic2, flags: [subflow, fullmesh]}
    limits: {subflows: 8, add_addr_accepted: 8}

- name: A server announces its addresses
  mptcp_endpoints:
    endpoints:
      - {id: 102, address: 198.18.18.10, dev: nic1, flags: [signal]}
      - {id: 104, address: 198.18.34.10, dev: nic2, flags: [signal]}
"""

RETURN = r"""
endpoints:
  description: The owned endpoints after the run (or as they would be, in check mode).
  returned: always
  type: list
  elements: dict
added:
  description: Endpoints added (as C(ip mptcp endpoint) arguments).
  returned: always
  type: list
  elements: str
removed:
  description: Endpoints removed.
  returned: always
  type: list
  elements: str
limits:
  description: The limits after the run.
  returned: always
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import pyroute2  # noqa: F401  pylint: disable=unused-import

    PYROUTE2_ERROR = None
except ImportError:
    PYROUTE2_ERROR = traceback.format_exc()

from ansible_collections.mpstream.nornet.plugins.module_utils.mptcp_pm import (
    MptcpPmError,
    PathManager,
    diff,
    normalize,
    render,
)


def _render_all(endpoints, limits):
    lines = ["endpoint %s\n" % render(ep) for ep in endpoints]
    if limits:
        lines.append("limits subflows %(subflows)d add_addr_accepted %(add_addr_accepted)d\n" % limits)
    return "".join(lines)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    id=dict(type="int", required=True),
                    address=dict(type="str", required=True),
                    flags=dict(
                        type="list",
                        elements="str",
                        default=[],
                        choices=["signal", "subflow", "backup", "fullmesh"],
                    ),
                    dev=dict(type="str"),
                    port=dict(type="int", default=0),
                ),
            ),
            limits=dict(
                type="dict",
                options=dict(
                    subflows=dict(type="int", required=True),
                    add_addr_accepted=dict(type="int", required=True),
                ),
            ),
            owned_ids=dict(type="list", elements="int", default=[100, 199]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    if PYROUTE2_ERROR:
        module.fail_json(msg=missing_required_lib("pyroute2"), exception=PYROUTE2_ERROR)
    first, last = (module.params["owned_ids"] + [None, None])[:2]
    if first is None or last is None or not 0 < first <= last <= 255:
        module.fail_json(msg="owned_ids must be [first, last] within 1..255")
    owned = set(range(first, last + 1))
    try:
        desired = (
            [normalize(ep) for ep in module.params["endpoints"]]
            if module.params["state"] == "present"
            else []
        )
    except (MptcpPmError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    for label, values in (
        ("ids", [ep["id"] for ep in desired]),
        ("addresses", [ep["address"] for ep in desired]),
    ):
        if len(set(values)) != len(values):
            module.fail_json(msg="endpoint %s must be unique: %s" % (label, values))
    outside = [ep["id"] for ep in desired if ep["id"] not in owned]
    if outside:
        module.fail_json(msg="endpoint ids %s are outside owned_ids %d..%d" % (outside, first, last))

    try:
        with PathManager() as pm:
            current = pm.endpoints()
            before_limits = pm.limits()
            owned_now = [ep for ep in current if ep["id"] in owned]
            foreign = dict((ep["address"], ep["id"]) for ep in current if ep["id"] not in owned)
            clash = [ep["address"] for ep in desired if ep["address"] in foreign]
            if clash:
                module.fail_json(
                    msg="addresses %s already are endpoints with ids this module does not own (%s); "
                    "remove them or widen owned_ids" % (clash, [foreign[a] for a in clash])
                )
            to_remove, to_add = diff(owned_now, desired, owned)
            limits = module.params["limits"]
            limits_change = bool(limits) and limits != before_limits
            if not module.check_mode:
                for ep in to_remove:
                    pm.delete(ep["id"])
                for ep in to_add:
                    pm.add(ep)
                if limits_change:
                    pm.set_limits(limits["subflows"], limits["add_addr_accepted"])
                after = [ep for ep in pm.endpoints() if ep["id"] in owned]
                if after != desired:
                    module.fail_json(
                        msg="the kernel did not take the endpoints as asked", endpoints=after, wanted=desired
                    )
    except MptcpPmError as exc:
        module.fail_json(msg=str(exc))
    after_limits = limits if limits_change else before_limits
    result = dict(
        changed=bool(to_remove or to_add or limits_change),
        endpoints=desired,
        added=[render(ep) for ep in to_add],
        removed=[render(ep) for ep in to_remove],
        limits=after_limits,
    )
    if module._diff:
        result["diff"] = dict(
            before=_render_all(owned_now, before_limits if limits else None),
            after=_render_all(desired, after_limits if limits else None),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
