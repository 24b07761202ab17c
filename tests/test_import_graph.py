"""No import circle in the package or in bench/ (issue 23), counting imports inside functions.

Every module under src/mixlingual and bench/ is parsed with `ast`; every `import` and
`from ... import` statement counts, wherever it stands (module level, inside a function, under
`if`). Relative imports are resolved against the module's package, `from pkg import name` is an
edge to `pkg.name` when that is a module (else to `pkg`), and bench's scripts import each other
by bare name (`from common import ...`: bench/ is on their path). Imports of modules outside the
two trees (numpy, torch, ...) are not edges. An import circle is a strongly connected set of two
or more modules, or a module importing itself; the test names one circle's path.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_modules(src: Path, package: str) -> dict[str, Path]:
    """{dotted name: file} of every module of `package` under `src` (a package is its __init__.py)."""
    modules = {}
    for path in sorted((src / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def script_modules(folder: Path, prefix: str) -> dict[str, Path]:
    """{prefix.stem: file} of a folder of scripts that import each other by bare name."""
    return {f"{prefix}.{path.stem}": path for path in sorted(folder.glob("*.py"))}


def _resolve(name: str, modules: dict[str, Path], scripts_prefix: str | None) -> str | None:
    """The module of the graph that importing `name` (dotted) runs last: itself, or its longest known prefix."""
    if scripts_prefix and f"{scripts_prefix}.{name.split('.')[0]}" in modules:
        return f"{scripts_prefix}.{name.split('.')[0]}"
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path], scripts_prefix: str | None = None) -> set[str]:
    """The graph's modules that `name` imports anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # from . import x / from ..pkg import y
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]   # pkg.name, else pkg (longest prefix)
        else:
            continue
        found |= {m for m in (_resolve(t, modules, scripts_prefix) for t in targets) if m is not None and m != name}
    return found


def import_graph(trees: list[tuple[dict[str, Path], str | None]]) -> dict[str, set[str]]:
    """{module: modules it imports}; `trees`: (modules, scripts prefix or None) per tree."""
    modules = {name: path for tree, _ in trees for name, path in tree.items()}
    return {name: imports_of(name, path, modules, prefix) for tree, prefix in trees for name, path in tree.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt) and nxt in graph:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def _project_graph() -> dict[str, set[str]]:
    return import_graph([(package_modules(ROOT / "src", "mixlingual"), None),
                         (script_modules(ROOT / "bench", "bench"), "bench")])


def test_the_package_and_bench_have_no_import_circle():
    graph = _project_graph()
    assert "mixlingual.experiments.sweep.plan" in graph and "bench.train" in graph
    assert "bench.common" in graph["bench.train"]            # bench's bare-name imports are edges
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_imports_inside_functions_and_relative_imports_are_edges():
    graph = _project_graph()
    # `from mixlingual.models.debias_use import add_debias_arguments` inside add_arguments
    assert "mixlingual.models.debias_use" in graph["mixlingual.experiments.robustness.attack"]
    # `from mixlingual.experiments.convergence.report import ...` inside the sweep's run
    assert "mixlingual.experiments.convergence.report" in graph["mixlingual.experiments.sweep.plan"]


def test_a_circle_in_a_small_package_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import json\n\n\ndef f():\n    from pkg.sub import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def g():\n    from .. import a\n    return a\n")
    graph = import_graph([(package_modules(tmp_path, "pkg"), None)])
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"pkg.a", "pkg.sub.b", "pkg.sub.c"}
    (pkg / "sub" / "c.py").write_text("import pkg.sub\n")      # up to a package: no longer a circle
    assert find_cycle(import_graph([(package_modules(tmp_path, "pkg"), None)])) is None


def test_bare_name_imports_between_scripts_form_a_circle(tmp_path):
    (tmp_path / "one.py").write_text("def f():\n    from two import g\n    return g\n")
    (tmp_path / "two.py").write_text("import sys\nimport one\n")
    graph = import_graph([(script_modules(tmp_path, "bench"), "bench")])
    assert find_cycle(graph) in (["bench.one", "bench.two", "bench.one"], ["bench.two", "bench.one", "bench.two"])
