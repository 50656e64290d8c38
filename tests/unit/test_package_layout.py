"""The package's wings stay apart and its modules import each other without a circle.

Read from the source (ast), so that imports inside functions count too; imports under
`if TYPE_CHECKING:` do not run and are left out.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "relay" / "src" / "mpstream"
WINGS = ("streaming", "paths", "measurement")
SHARED = {"mpstream", "mpstream.netlink", "mpstream.supervise"}  # what every wing may use


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in package.rglob("*.py"):
        parts = ("mpstream",) + path.relative_to(package).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST):
    """Every node except what sits under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it runs."""
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in modules else node.module)
        found.discard(name)
        graph[name] = found
    return graph


def wing_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def crossings(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} -> {d}" for m, deps in graph.items() for d in deps
            if wing_of(m) and d not in SHARED and wing_of(d) != wing_of(m)]


def circle(graph: dict[str, set[str]]) -> list[str]:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return exc.args[1]
    return []


def test_every_module_is_in_a_wing_or_shared():
    top = SHARED | {"mpstream.cli", "mpstream.__main__"}
    loose = [m for m in module_files() if wing_of(m) is None and m not in top]
    assert not loose, f"modules outside the wings {WINGS} and the shared ones: {loose}"


def test_no_wing_imports_another():
    assert not crossings(imports(module_files()))


def test_no_import_circle():
    graph = imports(module_files())
    assert len(graph) > 100  # the whole package was read
    assert not circle(graph), "import circle: " + " -> ".join(circle(graph))


def test_the_checks_see_a_circle_and_a_crossing(tmp_path):
    """The checks above can fail: a made-up package with both faults."""
    files = {
        "__init__.py": "", "streaming/__init__.py": "", "paths/__init__.py": "",
        "streaming/a.py": "import mpstream.streaming.b\n",
        "streaming/b.py": "def later():\n    from mpstream.streaming import a\n",
        "paths/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mpstream.streaming.a\n"
                      "from mpstream.streaming.b import later\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = imports(module_files(tmp_path))
    assert graph["mpstream.streaming.b"] == {"mpstream.streaming.a"}  # an import inside a function counts
    assert graph["mpstream.paths.c"] == {"mpstream.streaming.b"}  # one under TYPE_CHECKING does not
    assert set(circle(graph)) == {"mpstream.streaming.a", "mpstream.streaming.b"}
    assert crossings(graph) == ["mpstream.paths.c -> mpstream.streaming.b"]
