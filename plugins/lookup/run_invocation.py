# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the running playbook was invoked: for a run's provenance in meta.json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: run_invocation
short_description: the command line, extra vars, inventory hash and mpstream version of this run
description:
  - Returns one dictionary describing how C(ansible-playbook) was started, so a results
    folder says exactly what produced it.
  - C(command) is the command line (argv), C(extra_vars) the merged C(-e) variables,
    C(inventory_sources) the inventory paths and C(inventory_hash) a SHA-256 over the
    names and contents of every file under them, C(mpstream) the controller's mpstream
    version and the commit of the playbook's git checkout (with C(+dirty) when it has
    uncommitted changes; null outside git).
  - Takes no terms.
author: mpstream developers (!UNKNOWN)
"""

EXAMPLES = """
- name: Keep the run's provenance
  ansible.builtin.set_fact:
    run_provenance: "{{ lookup('mpstream.nornet.run_invocation') }}"
"""

RETURN = """
_raw:
  description: one dictionary with command, extra_vars, inventory_sources, inventory_hash, mpstream
  type: list
  elements: dict
"""

import hashlib
import os
import subprocess
import sys

from ansible import context
from ansible.plugins.lookup import LookupBase
from ansible.utils.vars import load_extra_vars


def inventory_hash(sources):
    """SHA-256 over the relative name and content of every file under the inventory sources."""
    digest = hashlib.sha256()
    for source in sorted(sources):
        if not os.path.exists(source):  # e.g. "host1,host2," lists
            digest.update(("list:%s\n" % source).encode())
            continue
        files = [source] if os.path.isfile(source) else sorted(
            os.path.join(folder, name) for folder, _, names in os.walk(source) for name in names)
        for path in files:
            digest.update(("file:%s\n" % os.path.relpath(path, os.path.dirname(source))).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def git_commit(folder):
    """The checkout's commit, `+dirty` when files differ from it; None outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", folder] + list(args), capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def mpstream_version():
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return version("mpstream")
    except PackageNotFoundError:
        return None


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        args = context.CLIARGS
        sources = [os.path.abspath(source) if os.path.exists(source) else source
                   for source in args.get("inventory") or ()]
        playbook_dir = (variables or {}).get("playbook_dir") or os.getcwd()
        return [{
            "command": list(sys.argv),
            "extra_vars": load_extra_vars(self._loader),
            "inventory_sources": sources,
            "inventory_hash": inventory_hash(sources),
            "mpstream": {"version": mpstream_version(), "commit": git_commit(playbook_dir)},
        }]
