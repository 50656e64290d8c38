# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's clock against the controller's (see the module `node_clock` for the documentation)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.plugins.action import ActionBase

# GNU date with nanoseconds: no interpreter to start, so the round trip stays short.
READ_CLOCK = "date +%s.%N"


def exchange_result(asked, node_time, answered):
    """What one exchange tells: the node read its clock between `asked` and `answered`."""
    low, high = node_time - answered, node_time - asked
    offset, uncertainty = (low + high) / 2, (high - low) / 2
    return {"time": node_time, "controller_asked": asked, "controller_answered": answered,
            "offset_s": round(offset, 6), "uncertainty_s": round(uncertainty, 6),
            "correction_s": round(offset, 6) if abs(offset) > uncertainty else 0.0}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("samples",))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            samples = int(self._task.args.get("samples", 5))
        except (TypeError, ValueError):
            samples = 0
        if samples < 1:
            return dict(result, failed=True, msg="samples must be a whole number of at least 1")
        best = None
        for _ in range(samples):
            asked = time.time()
            answer = self._low_level_execute_command(READ_CLOCK)
            answered = time.time()
            try:
                node_time = float(answer.get("stdout", "").strip())
            except ValueError:
                return dict(result, failed=True,
                            msg="the node's `%s` printed %r (rc %s, %s): it needs GNU date"
                                % (READ_CLOCK, answer.get("stdout", ""), answer.get("rc"),
                                   answer.get("stderr", "").strip()))
            if best is None or answered - asked < best[2] - best[0]:
                best = (asked, node_time, answered)
        clock = exchange_result(*best)
        clock["samples"] = samples
        return dict(result, changed=False, clock=clock)
