"""The house has one direction: no import cycles in `wmprune/`, and no layer imports a higher one.

Every import statement counts — module level, inside functions, under `TYPE_CHECKING` — and so do
`import_module(...)` / `__import__(...)` calls that name a wmprune module: Python may not trip over a
function-level cycle, but a reader following the code does. The graph builder proves itself first on a
small package with a planted cycle of each kind.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wmprune"

# Layers from the top; a module may import its own layer or lower ones (docs/architecture.md). Modules
# are matched by the longest listed prefix.
LAYERS = {
    "wmprune.cli": 0, "wmprune.__main__": 0,
    "wmprune.commands": 1,
    "wmprune.runtime": 2,
    "wmprune": 3,  # config, models, data, pruning, results, …: the bottom
}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py under the package directory `root`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import of `target` loads: itself, or its nearest ancestor that is a module."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _dynamic_target(call: ast.Call) -> str | None:
    """`import_module("x")`, `importlib.import_module("x")`, `__import__("x")` with a literal name."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name in ("import_module", "__import__") and call.args and isinstance(call.args[0], ast.Constant) \
            and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its source."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                # `from a import b` loads a.b when b is a module, else it takes a name from a.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            elif isinstance(node, ast.Call):
                dynamic = _dynamic_target(node)
                targets = [dynamic] if dynamic else []
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


PLANTED = {
    "module_level": ("import pkg.b\n", "from pkg import a\n"),
    "in_function": ("def f():\n    from pkg.b import g\n", "import pkg.a\n"),
    "type_checking": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import T\n",
                      "from pkg.a import f\n"),
    "import_module": ("from importlib import import_module\ndef f():\n    return import_module('pkg.b')\n",
                      "import pkg.a\n"),
    "dunder_import": ("def f():\n    return __import__('pkg.b')\n", "import pkg.a\n"),
    "relative": ("from . import b\n", "from .a import f\n"),
}


@pytest.mark.parametrize("kind", list(PLANTED))
def test_graph_finds_planted_cycle(tmp_path, kind):
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    a, b = PLANTED[kind]
    (root / "a.py").write_text(a)
    (root / "b.py").write_text(b)
    (root / "c.py").write_text("import pkg.a\n")  # an edge into the cycle, not part of it
    cycle = find_cycle(import_graph(root))
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.b"}, (kind, cycle)


def test_graph_of_acyclic_package_has_no_cycle(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from pkg.sub.low import x\n")
    (root / "sub" / "low.py").write_text("import os\nx = 1\n")
    (root / "top.py").write_text("from pkg.sub import low\nfrom pkg import sub\n")
    graph = import_graph(root)
    assert graph["pkg.top"] == {"pkg.sub.low", "pkg.sub"}
    assert find_cycle(graph) is None


def test_wmprune_has_no_import_cycle():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_no_layer_imports_a_higher_one():
    upward = sorted(f"{source} → {target}" for source, targets in import_graph(PACKAGE).items()
                    for target in targets if layer(target) < layer(source))
    assert not upward, "lower layer imports a higher one: " + "; ".join(upward)


# Inside pruning/: code every method shares knows no method. Only the methods package (its registry) and the
# Pruner, which drives whichever method is configured, look into pruning/methods/.
SHARED_PRUNING = ("budget", "mask", "scores", "schedules", "counts", "allocation", "context")


def shared_code_reaching_into_methods(graph: dict[str, set[str]], package: str = "wmprune") -> list[str]:
    methods = f"{package}.pruning.methods"
    return sorted(f"{source} → {target}" for source in (f"{package}.pruning.{name}" for name in SHARED_PRUNING)
                  for target in graph.get(source, ()) if target == methods or target.startswith(methods + "."))


def test_the_rule_on_shared_pruning_code_catches_a_planted_edge(tmp_path):
    root = tmp_path / "wmprune"
    (root / "pruning" / "methods").mkdir(parents=True)
    for package in (root, root / "pruning", root / "pruning" / "methods"):
        (package / "__init__.py").write_text("")
    (root / "pruning" / "methods" / "weightmom.py").write_text("def shares():\n    return 1\n")
    (root / "pruning" / "budget.py").write_text("import torch\n")
    (root / "pruning" / "allocation.py").write_text(
        "def f():\n    from wmprune.pruning.methods.weightmom import shares\n    return shares()\n")
    assert shared_code_reaching_into_methods(import_graph(root)) == [
        "wmprune.pruning.allocation → wmprune.pruning.methods.weightmom"]


def test_shared_pruning_code_imports_no_method():
    reaching = shared_code_reaching_into_methods(import_graph(PACKAGE))
    assert not reaching, "shared pruning code imports a method: " + "; ".join(reaching)


def names_of_methods_in_config(source: str, methods: set[str]) -> list[str]:
    """Where config source knows a particular method: a comparison with a method's name, or a class named
    after one (a method's knob section)."""
    found = []
    squashed = {name.replace("_", "") for name in methods}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            found += [f"line {node.lineno}: compares with '{o.value}'" for o in operands
                      if isinstance(o, ast.Constant) and o.value in methods]
        elif isinstance(node, ast.ClassDef) and any(name in node.name.lower() for name in squashed):
            found.append(f"line {node.lineno}: class {node.name}")
    return found


def test_the_config_rule_catches_a_branch_and_a_knob_class():
    planted = 'class RigLConfig:\n    pass\n\ndef f(cfg):\n    return cfg.method == "imp"\n'
    assert names_of_methods_in_config(planted, {"rigl", "imp", "none"}) == ["line 1: class RigLConfig",
                                                                             "line 5: compares with 'imp'"]


def test_config_names_no_pruning_method():
    from wmprune.pruning.methods import METHODS

    found = names_of_methods_in_config((PACKAGE / "config.py").read_text(), set(METHODS) - {"none"})
    assert not found, "config.py knows a method: " + "; ".join(found)
