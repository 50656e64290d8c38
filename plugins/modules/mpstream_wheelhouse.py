#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mpstream_wheelhouse
short_description: Build a Python project into a wheel once per source version, with its dependencies
description:
  - Fingerprints the project's sources (C(pyproject.toml), C(README*), C(LICENSE*) and
    everything under C(src/) but caches and build metadata) and builds a wheel with
    C(pip wheel --no-deps) into I(dest)/I(fingerprint)/ only when no wheel exists for
    that fingerprint, so the same sources always give the same file and nodes that
    already have it see no change.
  - The build runs on a copy of the sources, so the project tree (an editable install, a
    concurrent build) is never written to.
  - The copy's version gets the fingerprint as a PEP 440 local version
    (C(0.1.0+src.<12 hex digits>)), so every build has a version of its own and C(pip)
    on a node tells by the version alone whether it holds that build. The version is
    C([project] version) in C(pyproject.toml) or, with C(dynamic = ["version"]), the
    string that C([tool.setuptools.dynamic] version = {attr = "pkg.__version__"}) names
    (a module under C(src/)).
  - Also fetches wheels of the project's run-time dependencies (C(Requires-Dist) without
    extras) into I(dest)/deps-I(hash)/, once per dependency set, so that nodes install
    with C(pip --no-index) and need no package index of their own.
  - "Meant to run on the controller (C(delegate_to: localhost), C(run_once))."
version_added: "0.1.0"
author: mpstream developers (!UNKNOWN)
options:
  source:
    description: The project directory (holds C(pyproject.toml)).
    type: path
    required: true
  dest:
    description: Cache directory for the built wheels and dependency wheels.
    type: path
    required: true
  python:
    description: Interpreter whose pip builds the wheel; defaults to the one running this module.
    type: path
  dependencies:
    description: Also fetch the dependency wheels (needs a package index, once per dependency set).
    type: bool
    default: true
  keep:
    description:
      - How many builds to keep in I(dest) (the newest by time of building); older build
        folders this module made are removed. C(0) keeps them all.
    type: int
    default: 5
notes:
  - Supports check mode (reports whether a build would happen, builds nothing).
  - Builds are reproducible (C(SOURCE_DATE_EPOCH) is fixed), so a rebuilt cache gives the same bytes.
"""

EXAMPLES = r"""
- name: Build the relay project once on the controller
  mpstream.nornet.mpstream_wheelhouse:
    source: "{{ playbook_dir }}/relay"
    dest: "{{ playbook_dir }}/.cache/wheelhouse"
  delegate_to: localhost
  run_once: true
  register: build
"""

RETURN = r"""
fingerprint:
  description: SHA-256 of the project's sources (first 16 hex digits).
  returned: always
  type: str
version:
  description: The version of the build (the project's own with the fingerprint as its local part).
  returned: always
  type: str
  sample: 0.1.0+src.a863de169720
wheel:
  description: Path of the project's wheel (empty in check mode when it would be built).
  returned: always
  type: str
wheels:
  description: The project's wheel followed by the dependency wheels.
  returned: always
  type: list
  elements: str
removed:
  description: Old build folders that were removed.
  returned: always
  type: list
  elements: str
requirements:
  description: The run-time requirements of the project.
  returned: always
  type: list
  elements: str
"""

import email.parser
import hashlib
import os
import re
import shutil
import sys
import tempfile
import zipfile

from ansible.module_utils.basic import AnsibleModule

IGNORED = ("__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist")
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip file can hold


def _ignored(name):
    return name in IGNORED or name.endswith((".egg-info", ".pyc", ".pyo"))


def source_files(source):
    """The files that make the wheel, relative to `source`, sorted."""
    files = []
    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name)
        if os.path.isfile(path) and (name in ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in")
                                     or name.startswith(("README", "LICENSE", "COPYING"))):
            files.append(name)
    for top in ("src",):
        for root, dirs, names in os.walk(os.path.join(source, top)):
            dirs[:] = sorted(d for d in dirs if not _ignored(d))
            for name in sorted(names):
                if not _ignored(name):
                    files.append(os.path.relpath(os.path.join(root, name), source))
    return files


def fingerprint(source, files):
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(source, rel), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]


BUILD_DIR = re.compile(r"^[0-9a-f]{16}$")  # the folders `build` makes, named by fingerprint


def old_builds(dest, keep, current):
    """Build folders beyond the `keep` newest, never `current` nor anything not named like a build."""
    if keep <= 0 or not os.path.isdir(dest):
        return []
    builds = [os.path.join(dest, n) for n in os.listdir(dest) if BUILD_DIR.match(n)]
    builds.sort(key=lambda path: os.stat(path).st_mtime, reverse=True)
    return [path for path in builds[keep:] if os.path.basename(path) != current]


def existing_wheel(directory):
    try:
        wheels = sorted(n for n in os.listdir(directory) if n.endswith(".whl"))
    except OSError:
        return None
    return os.path.join(directory, wheels[0]) if len(wheels) == 1 else None


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def wheel_version(wheel):
    return _metadata(wheel)["Version"]


def runtime_requirements(wheel):
    """`Requires-Dist` of the wheel that apply without extras."""
    metadata = _metadata(wheel)
    requirements = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        marker = requirement.partition(";")[2]
        if "extra" in marker:
            continue
        requirements.append(requirement.strip())
    return sorted(requirements)


TABLE = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$")
DYNAMIC_VERSION = re.compile(r"""^\s*version\s*=\s*\{\s*attr\s*=\s*["']([\w.]+)["']\s*\}""")


def _string_assignment(name):
    return re.compile(r"""^(\s*%s\s*=\s*)(["'])([^"']*)\2""" % re.escape(name))


def _lines_in(text, table):
    """(index, line) of the lines of `text` in the TOML table `table` (every line when None)."""
    current = ""
    for index, line in enumerate(text.splitlines(True)):
        match = TABLE.match(line)
        if match:
            current = match.group(1)
        elif table is None or current == table:
            yield index, line


def version_source(pyproject, files):
    """Where the version is written: (file relative to the project, name assigned, TOML table or None)."""
    assignment = _string_assignment("version")
    for _, line in _lines_in(pyproject, "project"):
        if assignment.match(line):
            return "pyproject.toml", "version", "project"
    for _, line in _lines_in(pyproject, "tool.setuptools.dynamic"):
        match = DYNAMIC_VERSION.match(line)
        if match:
            module_name, _, attribute = match.group(1).rpartition(".")
            base = os.path.join("src", *module_name.split("."))
            for candidate in (os.path.join(base, "__init__.py"), base + ".py"):
                if candidate in files:
                    return candidate, attribute, None
    return None


def local_version(key):
    """The fingerprint as a local version label, in the form PEP 440 normalizes to (no leading zeros)."""
    label = key[:12]
    return "src." + (str(int(label)) if label.isdigit() else label)


def stamped(text, name, table, local):
    """`text` with the version assigned to `name` given the local label `local`, and that version.

    None when `text` assigns no version to `name` or the version already has a local label.
    """
    assignment = _string_assignment(name)
    lines = text.splitlines(True)
    for index, line in _lines_in(text, table):
        match = assignment.match(line)
        if match:
            if "+" in match.group(3):
                return None
            version = "%s+%s" % (match.group(3), local)
            lines[index] = line[:match.start(3)] + version + line[match.end(3):]
            return "".join(lines), version
    return None


def _pip(module, python, args, env=None):
    cmd = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"] + args
    rc, out, err = module.run_command(cmd, environ_update=env or {})
    if rc != 0:
        module.fail_json(msg="pip failed: %s" % " ".join(cmd), rc=rc, stdout=out, stderr=err)


def build(module, python, source, files, target, stamp):
    """Build from a copy of `files`, the version stamped (file, text), into `target` (made atomically)."""
    parent = os.path.dirname(target)
    work = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        tree = os.path.join(work, "src")
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            shutil.copy2(os.path.join(source, rel), os.path.join(tree, rel))
        with open(os.path.join(tree, stamp[0]), "w") as handle:
            handle.write(stamp[1])
        out = os.path.join(work, "out")
        _pip(module, python, ["wheel", "--no-deps", "--wheel-dir", out, tree],
             env={"SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH})
        if existing_wheel(out) is None:
            module.fail_json(msg="pip wheel did not produce exactly one wheel in %s" % out)
        try:
            os.rename(out, target)
        except OSError:
            if existing_wheel(target) is None:  # not just a concurrent build that won
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return existing_wheel(target)


def fetch_dependencies(module, python, requirements, dest):
    """Dependency wheels for `requirements`, downloaded once into a folder named by their hash."""
    if not requirements:
        return [], False
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    target = os.path.join(dest, "deps-" + key)
    complete = os.path.join(target, ".complete")
    changed = False
    if not os.path.exists(complete):
        if module.check_mode:
            return [], True
        work = tempfile.mkdtemp(prefix=".deps-", dir=dest)
        try:
            _pip(module, python, ["download", "--only-binary=:all:", "--dest", work] + requirements)
            open(os.path.join(work, ".complete"), "w").close()
            shutil.rmtree(target, ignore_errors=True)
            os.rename(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        changed = True
    wheels = sorted(os.path.join(target, n) for n in os.listdir(target) if n.endswith(".whl"))
    return wheels, changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            python=dict(type="path"),
            dependencies=dict(type="bool", default=True),
            keep=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    source = os.path.realpath(module.params["source"])
    dest = os.path.realpath(module.params["dest"])
    python = module.params["python"] or sys.executable
    if not os.path.isfile(os.path.join(source, "pyproject.toml")):
        module.fail_json(msg="%s has no pyproject.toml" % source)

    files = source_files(source)
    key = fingerprint(source, files)
    with open(os.path.join(source, "pyproject.toml")) as handle:
        where = version_source(handle.read(), files)
    if where is None:
        module.fail_json(msg="cannot tell where %s writes its version: pyproject.toml needs [project] version "
                             "or [tool.setuptools.dynamic] version = {attr = ...} naming a module under src/" % source)
    version_file, version_name, version_table = where
    with open(os.path.join(source, version_file)) as handle:
        stamp = stamped(handle.read(), version_name, version_table, local_version(key))
    if stamp is None:
        module.fail_json(msg="%s assigns no version without a local label to %s" % (version_file, version_name))
    text, version = stamp
    target = os.path.join(dest, key)
    wheel = existing_wheel(target)
    if wheel is not None and wheel_version(wheel) != version:
        wheel = None  # built before builds carried their fingerprint in the version
    result = dict(changed=False, fingerprint=key, version=version, wheel=wheel or "", wheels=[], requirements=[],
                  removed=[])
    if wheel is None:
        result["changed"] = True
        if module.check_mode:
            module.exit_json(**result)
        os.makedirs(dest, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        wheel = build(module, python, source, files, target, (version_file, text))
        if wheel_version(wheel) != version:
            module.fail_json(msg="the wheel %s does not have the version %s" % (wheel, version))
        result["wheel"] = wheel

    requirements = runtime_requirements(wheel)
    result["requirements"] = requirements
    dependency_wheels = []
    if module.params["dependencies"]:
        dependency_wheels, fetched = fetch_dependencies(module, python, requirements, dest)
        result["changed"] = result["changed"] or fetched
    result["wheels"] = [wheel] + dependency_wheels
    # Only the controller's cache: pruned after a new build, never in check mode.
    if result["changed"] and not module.check_mode:
        for path in old_builds(dest, module.params["keep"], key):
            shutil.rmtree(path, ignore_errors=True)
            result["removed"].append(path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
