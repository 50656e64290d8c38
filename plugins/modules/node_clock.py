#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: node_clock
short_description: Read a node's clock against the controller's, as NTP does
description:
  - Runs C(date +%s.%N) on the node a few times over the task's connection, each time
    between two readings of the controller's clock, and keeps the exchange with the shortest
    round trip. The node read its clock after the first reading and before the second, so
    its offset to the controller lies within [C(time) - C(controller_answered),
    C(time) - C(controller_asked)]; C(offset_s) is the middle, C(uncertainty_s) half the width.
  - Runs on the controller (an action plugin); starts no interpreter on the node, so the
    round trip is the connection's and a process start, not a Python start.
  - C(correction_s) is the offset a schedule should allow for, C(offset_s) where it is
    larger than its uncertainty, else 0 (the clocks agree as far as the exchange can tell).
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  samples:
    description: How many exchanges to make (the shortest round trip is kept).
    type: int
    default: 5
notes:
  - Supports check mode (it changes nothing).
  - Needs GNU C(date) (nanoseconds) on the node.
"""

EXAMPLES = r"""
- name: Measure how far the node's clock is off the controller's
  mpstream.nornet.node_clock:
    samples: 5
  register: clock

- name: Say so
  ansible.builtin.debug:
    msg: "{{ clock.clock.offset_s }} s +- {{ clock.clock.uncertainty_s }} s"
"""

RETURN = r"""
clock:
  description: The kept exchange and what it tells.
  returned: success
  type: dict
  contains:
    time:
      description: The node's clock (Unix seconds).
      type: float
    controller_asked:
      description: The controller's clock when it asked.
      type: float
    controller_answered:
      description: The controller's clock when the answer came.
      type: float
    offset_s:
      description: The node's clock minus the controller's (the middle of the bounds).
      type: float
    uncertainty_s:
      description: Half the round trip; the offset lies within +- this.
      type: float
    correction_s:
      description: C(offset_s) where it exceeds C(uncertainty_s), else 0.
      type: float
    samples:
      description: How many exchanges were made.
      type: int
  sample:
    time: 1764584100.512
    controller_asked: 1764584100.43
    controller_answered: 1764584100.59
    offset_s: 0.002
    uncertainty_s: 0.08
    correction_s: 0.0
    samples: 5
"""
