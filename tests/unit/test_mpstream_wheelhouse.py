"""The wheelhouse module's pure parts: which files make a build, its fingerprint, run-time requirements."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins/modules/mpstream_wheelhouse.py"


@pytest.fixture(scope="module")
def wheelhouse():
    spec = importlib.util.spec_from_file_location("mpstream_wheelhouse", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "relay"
    (root / "src/demo/sub").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1.0"\n')
    (root / "README.md").write_text("demo\n")
    (root / "src/demo/__init__.py").write_text("VALUE = 1\n")
    (root / "src/demo/sub/mod.py").write_text("X = 2\n")
    return root


def test_source_files_are_the_build_inputs_only(wheelhouse, project):
    (project / "src/demo/__pycache__").mkdir()
    (project / "src/demo/__pycache__/mod.cpython-311.pyc").write_bytes(b"\0")
    (project / "src/demo.egg-info").mkdir()
    (project / "src/demo.egg-info/PKG-INFO").write_text("x")
    (project / "build").mkdir()
    (project / "notes.txt").write_text("not packaged")
    assert wheelhouse.source_files(str(project)) == [
        "README.md", "pyproject.toml", "src/demo/__init__.py", "src/demo/sub/mod.py",
    ]


def test_fingerprint_follows_content_and_names_not_caches(wheelhouse, project):
    def key():
        return wheelhouse.fingerprint(str(project), wheelhouse.source_files(str(project)))

    first = key()
    assert len(first) == 16 and first == key()
    (project / "src/demo/__pycache__").mkdir()
    (project / "src/demo/__pycache__/x.pyc").write_bytes(b"\1")
    assert key() == first  # caches from running the code do not count
    (project / "src/demo/__init__.py").write_text("VALUE = 2\n")
    edited = key()
    assert edited != first
    (project / "src/demo/sub/mod.py").rename(project / "src/demo/sub/other.py")
    assert key() not in (first, edited)  # a rename is a different package


def test_runtime_requirements_leave_out_extras(wheelhouse, tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    metadata = "\n".join([
        "Metadata-Version: 2.1", "Name: demo", "Version: 1.0",
        "Requires-Dist: pyroute2==0.9.7",
        "Requires-Dist: tomli>=2; python_version < \"3.11\"",
        "Requires-Dist: matplotlib==3.11.2; extra == \"report\"",
        "Requires-Dist: rich; extra=='pretty'", "", "",
    ])
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", metadata)
    assert wheelhouse.runtime_requirements(str(wheel)) == [
        "pyroute2==0.9.7", 'tomli>=2; python_version < "3.11"',
    ]


def test_existing_wheel_wants_exactly_one(wheelhouse, tmp_path):
    assert wheelhouse.existing_wheel(str(tmp_path / "missing")) is None
    (tmp_path / "a-1-py3-none-any.whl").write_bytes(b"")
    assert wheelhouse.existing_wheel(str(tmp_path)).endswith("a-1-py3-none-any.whl")
    (tmp_path / "b-1-py3-none-any.whl").write_bytes(b"")
    assert wheelhouse.existing_wheel(str(tmp_path)) is None


def test_old_builds_are_the_oldest_build_folders_only(wheelhouse, tmp_path):
    names = [f"{i:016x}" for i in range(6)]
    for age, name in enumerate(names):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (1000 + age, 1000 + age))  # names[5] is the newest
    (tmp_path / "deps-0123456789abcdef").mkdir()
    (tmp_path / "notes").mkdir()
    old = wheelhouse.old_builds(str(tmp_path), keep=3, current=names[0])
    assert sorted(os.path.basename(p) for p in old) == names[1:3]  # the current build stays
    assert wheelhouse.old_builds(str(tmp_path), keep=0, current=names[0]) == []
