"""The repository as the collection mpstream.nornet, used from outside the repository.

The collection is built and installed into a temporary folder, and playbooks in another
temporary folder (no ansible.cfg of the repository, no link in .cache/collections, no
collection found on Python's path) call its module, filter and roles by their
collection names. About 6 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.testbed import REPO, VENV_BIN

pytestmark = [pytest.mark.timeout(120)]

ROLES = ["testbed", "mptcp_kernel", "multihoming", "mpstream_package", "relay", "recorder", "failover"]


def outside_env(collections: Path, config: Path) -> dict[str, str]:
    """Ansible as a user elsewhere has it: only the installed collection, a config of their own."""
    config.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}:{env['PATH']}",
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        # The venv imports the repository's link for its own tests; a user's would not.
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
    )
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(collections folder, environment) with mpstream.nornet built and installed there."""
    build = tmp_path_factory.mktemp("build")
    collections = tmp_path_factory.mktemp("collections")
    env = outside_env(collections, build / "ansible.cfg")
    built = run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(build), str(REPO)],
                build, env)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = build.glob("mpstream-nornet-*.tar.gz")
    done = run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                "-p", str(collections), str(tarball)], build, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return collections, env


def test_the_installed_collection_is_the_one_found(installed, tmp_path):
    collections, env = installed
    listed = run([str(VENV_BIN / "ansible-galaxy"), "collection", "list", "mpstream.nornet", "--format", "json"],
                 tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    assert list(json.loads(listed.stdout)) == [str(collections / "ansible_collections")]
    # What a user installs carries the node package's sources, not the development tree.
    root = collections / "ansible_collections" / "mpstream" / "nornet"
    assert (root / "relay" / "pyproject.toml").is_file()
    assert (root / "plugins" / "modules" / "mpstream_wheelhouse.py").is_file()
    assert not (root / "tests").exists() and not (root / "molecule").exists()


def test_a_playbook_elsewhere_runs_the_module_and_filter_by_collection_name(installed, tmp_path):
    _, env = installed
    (tmp_path / "facts.yml").write_text(
        """\
- name: Use mpstream.nornet from outside its repository
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Find out what MPTCP this kernel offers
      mpstream.nornet.mptcp_kernel_facts:

    - name: The facts and the NorNet addressing filter answer
      ansible.builtin.assert:
        that:
          - mptcp_kernel.flavour in ['upstream', 'out_of_tree', 'none']
          - (providers | mpstream.nornet.nornet_interfaces(1, 10) | first).ipv4 == '198.18.17.10/24'
      vars:
        providers: [{name: isp1, index: 1, nic: nic1}]

    - name: Read the node's clock against the controller's (one clock here)
      mpstream.nornet.node_clock:
        samples: 3
      register: clock

    - name: The exchange found no offset beyond its uncertainty
      ansible.builtin.assert:
        that:
          - clock.clock.samples == 3
          - clock.clock.uncertainty_s < 0.5
          - clock.clock.offset_s | abs <= clock.clock.uncertainty_s
          - clock.clock.correction_s == 0
"""
    )
    played = run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-e",
                  f"ansible_python_interpreter={sys.executable}", "facts.yml"], tmp_path, env)
    assert played.returncode == 0, played.stdout + played.stderr
    assert "ok=4" in played.stdout and "failed=0" in played.stdout, played.stdout


def test_a_playbook_elsewhere_names_every_role_by_collection_name(installed, tmp_path):
    _, env = installed
    roles = "\n".join(f"    - mpstream.nornet.{role}" for role in ROLES)
    (tmp_path / "site.yml").write_text(
        f"- name: Every role of mpstream.nornet\n  hosts: all\n  gather_facts: false\n  roles:\n{roles}\n"
    )
    checked = run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", "site.yml"],
                  tmp_path, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The same check must fail for a role the collection does not have, or it proves nothing.
    (tmp_path / "bad.yml").write_text(
        "- name: A role that is not there\n  hosts: all\n  roles:\n    - mpstream.nornet.no_such_role\n"
    )
    missing = run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", "bad.yml"],
                  tmp_path, env)
    assert missing.returncode != 0 and "no_such_role" in missing.stdout + missing.stderr
