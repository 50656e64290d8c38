#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: policy_routing
short_description: Source-address routing tables for a multi-homed node
description:
  - Gives every provider NIC its own routing table, a rule C(from ADDR lookup TABLE) per
    address, and in each table the link route and the default route via that provider's
    gateway (section 3.2 of the mpstream paper), for IPv4 and IPv6 alike.
  - Optionally adds main-table default routes with increasing metrics, the primary
    provider first, for sockets that do not choose a source address.
  - Everything it creates carries the route/rule protocol number I(protocol); it only
    ever removes rules and routes with that number, so routes from DHCP, router
    advertisements or other tools are left alone.
  - Uses pyroute2 (netlink); runs in the network namespace of the target.
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  interfaces:
    description:
      - The provider NICs of the node.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Interface name.
        type: str
        required: true
      provider:
        description: Provider name (for I(primary) and messages).
        type: str
      provider_index:
        description: Provider number; the table is I(table_base) times this.
        type: int
        required: true
      table:
        description: Routing table for this NIC, instead of the derived one.
        type: int
      ipv4:
        description: IPv4 address with prefix length, e.g. C(198.18.19.10/24).
        type: str
      gateway4:
        description: IPv4 gateway of the provider.
        type: str
      ipv6:
        description: IPv6 address with prefix length.
        type: str
      gateway6:
        description: IPv6 gateway of the provider.
        type: str
  state:
    description:
      - C(present) makes the owned rules and routes exactly what I(interfaces) asks for
        (removing owned ones no longer wanted); C(absent) removes all owned ones.
    type: str
    choices: [present, absent]
    default: present
  table_base:
    description: Table number of provider 1; provider P uses P times this.
    type: int
    default: 1000
  rule_priority_base:
    description: Priority of provider P's rules is this plus P.
    type: int
    default: 1000
  table_metric:
    description: Metric of the routes inside the per-provider tables.
    type: int
    default: 10
  main_defaults:
    description: Also add main-table default routes, one per provider.
    type: bool
    default: true
  main_metric_base:
    description: Metric of the primary provider's main-table default; the next gets one more, and so on.
    type: int
    default: 10
  primary:
    description: Provider (or interface) name whose main-table default comes first. Default the lowest index.
    type: str
  protocol:
    description: Route/rule protocol number that marks what this module owns (see C(/etc/iproute2/rt_protos)).
    type: int
    default: 77
notes:
  - Supports check mode and diff mode.
requirements:
  - pyroute2
"""

EXAMPLES = r"""
- name: Route each provider's addresses through its own table
  mpstream.nornet.policy_routing:
    interfaces:
      - {name: nic1, provider: isp1, provider_index: 1, ipv4: 198.18.19.10/24, gateway4: 198.18.19.1,
         ipv6: "2001:2:0:103::a/64", gateway6: "2001:2:0:103::1"}
      - {name: nic2, provider: isp2, provider_index: 2, ipv4: 198.18.35.10/24, gateway4: 198.18.35.1}
    primary: isp1

- name: Remove everything it added
  mpstream.nornet.policy_routing:
    state: absent
"""

RETURN = r"""
added:
  description: The rules and routes created (as C(ip) commands).
  returned: always
  type: list
  elements: str
removed:
  description: The owned rules and routes deleted (as the C(ip) commands that had created them).
  returned: always
  type: list
  elements: str
state:
  description: The owned rules and routes after the run (or as they would be, in check mode).
  returned: always
  type: list
  elements: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from pyroute2 import IPRoute
except ImportError:
    IPRoute = None
    PYROUTE2_ERROR = traceback.format_exc()

from ansible_collections.mpstream.nornet.plugins.module_utils.policy_routing_state import (
    PolicyRoutingError,
    apply,
    desired_state,
    diff,
    read_owned,
    render,
    render_state,
)

INTERFACE_SPEC = dict(
    name=dict(type="str", required=True),
    provider=dict(type="str"),
    provider_index=dict(type="int", required=True),
    table=dict(type="int"),
    ipv4=dict(type="str"),
    gateway4=dict(type="str"),
    ipv6=dict(type="str"),
    gateway6=dict(type="str"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interfaces=dict(type="list", elements="dict", default=[], options=INTERFACE_SPEC),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            table_base=dict(type="int", default=1000),
            rule_priority_base=dict(type="int", default=1000),
            table_metric=dict(type="int", default=10),
            main_defaults=dict(type="bool", default=True),
            main_metric_base=dict(type="int", default=10),
            primary=dict(type="str"),
            protocol=dict(type="int", default=77),
        ),
        supports_check_mode=True,
    )
    if IPRoute is None:
        module.fail_json(msg=missing_required_lib("pyroute2"), exception=PYROUTE2_ERROR)
    params = module.params
    protocol = params["protocol"]
    try:
        desired = []
        if params["state"] == "present":
            desired = desired_state(
                params["interfaces"], table_base=params["table_base"],
                rule_priority_base=params["rule_priority_base"], table_metric=params["table_metric"],
                main_defaults=params["main_defaults"], main_metric_base=params["main_metric_base"],
                primary=params["primary"])
        with IPRoute() as ipr:
            before = read_owned(ipr, protocol)
            to_remove, to_add = diff(before, desired)
            if (to_remove or to_add) and not module.check_mode:
                apply(ipr, to_remove, to_add, protocol)
                leftover = diff(read_owned(ipr, protocol), desired)
                if leftover[0] or leftover[1]:
                    module.fail_json(msg="the kernel did not take the routing as asked",
                                     missing=[render(item) for item in leftover[1]],
                                     unexpected=[render(item) for item in leftover[0]])
    except PolicyRoutingError as exc:
        module.fail_json(msg=str(exc))
    result = dict(
        changed=bool(to_remove or to_add),
        added=[render(item) for item in to_add],
        removed=[render(item) for item in to_remove],
        state=desired,
    )
    if module._diff:
        result["diff"] = dict(before=render_state(before), after=render_state(desired))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
