#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mptcp_sysctl
short_description: Kernel parameters of one network namespace, optionally persistent
description:
  - Sets kernel parameters at runtime through C(/proc/sys), which for C(net.*) means
    the network namespace the module runs in (an emulated node on the testbed).
  - With I(persist_file) also writes them, and only them, to that C(sysctl.d) file so
    that they return at boot; without it nothing is written to disk (the testbed, whose
    nodes share the controller's filesystem).
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  settings:
    description: Parameter names (dotted, as for C(sysctl)) and their values.
    type: dict
    required: true
  persist_file:
    description: C(sysctl.d) file that holds exactly I(settings); not written when unset.
    type: path
  skip_missing:
    description: Skip parameters this kernel does not have, instead of failing.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: MPTCP on, stale subflows detected after 2 lost retransmissions
  mpstream.nornet.mptcp_sysctl:
    settings:
      net.mptcp.enabled: 1
      net.mptcp.stale_loss_cnt: 2
    persist_file: /etc/sysctl.d/90-mptcp.conf
"""

RETURN = r"""
changed_settings:
  description: The parameters whose runtime value changed, with the new value.
  returned: always
  type: dict
missing:
  description: Parameters this kernel does not have (with I(skip_missing)).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

PROC_SYS = "/proc/sys"


def _path(name):
    return os.path.join(PROC_SYS, *name.split("."))


def _normal(value):
    """sysctl values compare by their whitespace-separated words (tabs in ranges)."""
    if isinstance(value, bool):
        value = int(value)
    return " ".join(str(value).split())


def _render_file(settings):
    lines = ["# Managed by mpstream (mptcp_sysctl): local changes are overwritten.\n"]
    lines.extend("%s = %s\n" % (name, _normal(value)) for name, value in sorted(settings.items()))
    return "".join(lines)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", required=True),
            persist_file=dict(type="path"),
            skip_missing=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    settings, missing, before, after, changed_settings = {}, [], [], [], {}
    for name, value in sorted(module.params["settings"].items()):
        path = _path(name)
        if not os.path.exists(path):
            if module.params["skip_missing"]:
                missing.append(name)
                continue
            module.fail_json(msg="this kernel has no %s (%s)" % (name, path))
        settings[name] = value
        with open(path) as handle:
            current = _normal(handle.read())
        wanted = _normal(value)
        before.append("%s = %s\n" % (name, current))
        after.append("%s = %s\n" % (name, wanted))
        if current != wanted:
            changed_settings[name] = wanted
            if not module.check_mode:
                try:
                    with open(path, "w") as handle:
                        handle.write(wanted)
                except OSError as exc:
                    module.fail_json(msg="cannot set %s to %s: %s" % (name, wanted, exc))

    persist_file = module.params["persist_file"]
    file_changed = False
    if persist_file:
        content = _render_file(settings)
        old = None
        if os.path.exists(persist_file):
            with open(persist_file) as handle:
                old = handle.read()
        file_changed = old != content
        if file_changed and not module.check_mode:
            directory = os.path.dirname(persist_file)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            tmp = persist_file + ".tmp"
            with open(tmp, "w") as handle:
                handle.write(content)
            os.chmod(tmp, 0o644)
            module.atomic_move(tmp, persist_file)
        before.append("# %s\n%s" % (persist_file, old or ""))
        after.append("# %s\n%s" % (persist_file, content))

    result = dict(changed=bool(changed_settings or file_changed), changed_settings=changed_settings,
                  missing=missing)
    if module._diff:
        result["diff"] = dict(before="".join(before), after="".join(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
