# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run tasks inside a network namespace of the controller (the emulated testbed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: netns
short_description: run tasks inside a network namespace on the controller
description:
  - Runs commands and modules on the controller, inside the named network namespace
    (C(ip netns exec)). Files are copied locally, since the namespace shares the
    controller's filesystem.
  - This is how the emulated testbed's nodes are reached, so that roles and playbooks
    run unchanged against real sites over SSH.
author: mpstream developers (!UNKNOWN)
options:
  netns_name:
    description:
      - The network namespace (as listed by C(ip netns list)).
      - Defaults to the host's address (C(ansible_host), else the inventory name).
    vars:
      - name: ansible_netns_name
"""

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as LocalConnection

NETNS_DIR = "/run/netns"


class Connection(LocalConnection):
    transport = "netns"

    def _connect(self):
        name = self.get_option("netns_name") or self._play_context.remote_addr
        if not os.path.exists(os.path.join(NETNS_DIR, name)):
            raise AnsibleConnectionFailure(
                "network namespace %r does not exist: build the testbed first "
                "(ansible-playbook playbooks/testbed.yml) or check ansible_netns_name" % name)
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure("the netns connection needs root (entering %r)" % name)
        self._netns = name
        return super(Connection, self)._connect()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        if not self._connected:
            self._connect()
        # The whole command line runs in the namespace, as a remote shell would run it over
        # SSH: a raw task's "a; b" is one command line, not "a" in the namespace and "b" outside.
        wrapped = "ip netns exec %s /bin/sh -c %s" % (shlex.quote(self._netns), shlex.quote(cmd))
        return super(Connection, self).exec_command(wrapped, in_data=in_data, sudoable=sudoable)
