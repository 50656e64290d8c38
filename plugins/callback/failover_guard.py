# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clean up after an interrupted failover run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: failover_guard
type: aggregate
short_description: restore providers and collect results when a failover run is interrupted
description:
  - Ansible runs no C(always) section when the user presses Ctrl-C. This callback notices
    when C(failover.yml) ends while its run is still marked in progress
    (the C(failover_marker) file its first play writes) and then runs C(playbooks/failover_cleanup.yml) with the same
    inventory and variables, which restores every provider, stops the clients and the
    recorders, fetches what was measured and writes the report.
  - It does nothing for any other playbook.
author: mpstream developers (!UNKNOWN)
"""

import atexit
import json
import os
import subprocess
import sys

from ansible import context
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "failover_guard"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._marker = None
        self._cleanup = None
        self._registered = False

    def v2_playbook_on_start(self, playbook):
        basedir = os.path.abspath(playbook._basedir)
        if os.path.basename(playbook._file_name) != "failover.yml" or self._registered:
            return
        self._cleanup = os.path.join(basedir, "playbooks", "failover_cleanup.yml")
        self._registered = True
        atexit.register(self._after_run)

    def v2_runner_on_ok(self, result):
        marker = result._result.get("ansible_facts", {}).get("failover_marker")
        if self._registered and marker:
            self._marker = marker

    def _after_run(self):
        if not self._marker or not os.path.exists(self._marker):
            return
        with open(self._marker) as handle:
            run_dir = json.load(handle).get("run_dir") or os.path.dirname(self._marker)
        args = context.CLIARGS
        command = [sys.executable, sys.argv[0], self._cleanup]
        for inventory in args.get("inventory") or ():
            command += ["-i", inventory]
        for extra in args.get("extra_vars") or ():
            command += ["-e", extra]
        command += ["-e", "failover_marker=%s" % self._marker]
        log_path = os.path.join(run_dir, "cleanup.log")
        sys.stderr.write("\nfailover run interrupted: restoring every provider and collecting results "
                         "(log: %s)\n" % log_path)
        sys.stderr.flush()
        # The cleanup writes to its own log: at this point of the interpreter's exit the
        # terminal streams Ansible set up can no longer be relied upon.
        with open(log_path, "w") as log:
            status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(log_path) as log:
            recap = log.read().rpartition("PLAY RECAP")[2].partition("\n")[2]
        sys.stderr.write("cleanup %s\n%s\n" % ("done" if status == 0 else "FAILED (exit %d)" % status, recap.rstrip()))
