"""The wheelhouse module: which files make a build, its fingerprint and version, run-time requirements;
and a real build, run as Ansible runs the module, whose version carries the fingerprint."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
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


def test_the_version_is_found_where_the_build_reads_it(wheelhouse):
    static = '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.other]\nversion = "9"\n'
    assert wheelhouse.version_source(static, []) == ("pyproject.toml", "version", "project")
    dynamic = ('[project]\nname = "demo"\ndynamic = ["version"]\n\n'
               '[tool.setuptools.dynamic]\nversion = { attr = "demo.__version__" }\n')
    assert wheelhouse.version_source(dynamic, ["src/demo/__init__.py"]) == ("src/demo/__init__.py", "__version__", None)
    assert wheelhouse.version_source(dynamic.replace("demo.__", "demo.about.__"), ["src/demo/about.py"]) == (
        "src/demo/about.py", "__version__", None)
    assert wheelhouse.version_source(dynamic, []) is None  # no such module in the sources
    assert wheelhouse.version_source('[tool.other]\nversion = "9"\n', []) is None


def test_the_stamp_gives_the_version_a_local_label_in_its_own_table_only(wheelhouse):
    text = '[tool.other]\nversion = "9"\n[project]\nname = "demo"\nversion = "1.0"  # the release\n'
    new, version = wheelhouse.stamped(text, "version", "project", "src.abc")
    assert version == "1.0+src.abc"
    assert new == text.replace('version = "1.0"', 'version = "1.0+src.abc"')
    python = '"""Demo."""\n\n__version__ = \'2.3\'\n'
    assert wheelhouse.stamped(python, "__version__", None, "src.abc") == (
        python.replace("2.3", "2.3+src.abc"), "2.3+src.abc")
    assert wheelhouse.stamped('__version__ = "2.3+dev"\n', "__version__", None, "src.abc") is None
    assert wheelhouse.stamped("VALUE = 1\n", "__version__", None, "src.abc") is None


def test_the_local_label_is_the_fingerprint_as_pep_440_writes_it(wheelhouse):
    assert wheelhouse.local_version("a863de169720f8e4") == "src.a863de169720"
    assert wheelhouse.local_version("0123456789012345") == "src.12345678901"  # a number loses its leading zero


def run_module(args: dict, tmp_path: Path, check: bool = False) -> dict:
    """The module run as Ansible runs it: its arguments in a file, its result as JSON on stdout."""
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True,
                          timeout=300, check=False)
    result = json.loads(done.stdout)
    assert not result.get("failed"), result
    return result


@pytest.mark.slow
def test_a_build_carries_its_fingerprint_in_its_version_and_leaves_the_sources_alone(wheelhouse, project, tmp_path):
    init = project / "src/demo/__init__.py"
    init.write_text('__version__ = "1.0"\n')
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[project]\nname = "demo"\ndynamic = ["version"]\n\n'
                         '[tool.setuptools.dynamic]\nversion = { attr = "demo.__version__" }\n')
    args = {"source": str(project), "dest": str(tmp_path / "wheelhouse"), "dependencies": False}

    checked = run_module(args, tmp_path, check=True)
    assert checked["changed"] and checked["wheel"] == "" and not (tmp_path / "wheelhouse").exists()
    built = run_module(args, tmp_path)
    version = "1.0+" + wheelhouse.local_version(built["fingerprint"])
    assert built["changed"] and built["version"] == checked["version"] == version
    assert Path(built["wheel"]).name == f"demo-{version}-py3-none-any.whl"
    with zipfile.ZipFile(built["wheel"]) as archive:
        assert archive.read("demo/__init__.py").decode() == f'__version__ = "{version}"\n'
        assert f"Version: {version}\n" in archive.read(f"demo-{version}.dist-info/METADATA").decode()
    assert init.read_text() == '__version__ = "1.0"\n'  # stamped in the copy only
    again = run_module(args, tmp_path)
    assert not again["changed"] and again["wheel"] == built["wheel"]

    # A wheel cached under this fingerprint before builds were stamped is built again.
    stale = Path(built["wheel"]).with_name("demo-1.0-py3-none-any.whl")
    Path(built["wheel"]).unlink()
    with zipfile.ZipFile(stale, "w") as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n")
    rebuilt = run_module(args, tmp_path)
    assert rebuilt["changed"] and rebuilt["wheel"] == built["wheel"] and not stale.exists()
