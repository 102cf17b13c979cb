"""trainers/ by role: its subpackages form one-way layers (each imports only those before it, read from the
source), no two modules import each other in a circle, a family's folder imports no other family's, the
declarations that record-only `lab` commands read import no torch (run), and no function is over 60 lines."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINERS = ROOT / "trainers"
# Each shared subpackage may import only those before it (and itself); the family folders come after all of
# them, and `python -m trainers` last.
SHARED = ["trainers.formats", "trainers.family", "trainers.engine", "trainers.sizing", "trainers.commands"]
FAMILIES = sorted(f"trainers.{path.name}" for path in TRAINERS.iterdir()
                  if (path / "__init__.py").exists() and f"trainers.{path.name}" not in SHARED)
LAYERS = [*SHARED, *FAMILIES, "trainers.__main__"]
MAX_LINES = 60
HEAVY = ("torch", "torchaudio", "accelerate", "torch_xla", "dac")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(TRAINERS.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module of trainers/ a file imports, at any depth of the file (lazy imports count): `from a import
    b` yields a.b when that is a module, else a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                      for alias in node.names}
    return {name for name in found if name in MODULES}


def room(name: str) -> str:
    """The layer a module belongs to ('trainers' for the package's own docstring module)."""
    return next((layer for layer in LAYERS if name == layer or name.startswith(layer + ".")), "trainers")


def rank(name: str) -> int:
    return LAYERS.index(room(name)) if room(name) in LAYERS else -1


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of `graph` (a list of nodes, the first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_layers_cover_every_folder_and_the_top_keeps_few_modules():
    assert FAMILIES == ["trainers.dia", "trainers.neural_decoder", "trainers.redimnet", "trainers.sashimi"]
    top = sorted(path.name for path in TRAINERS.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"] and len(top) <= 6


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_no_layer_above_its_own(name):
    upward = sorted(module for module in GRAPH[name] if rank(module) > rank(name))
    assert not upward, f"{name} (layer {room(name)}) imports the layers above it: {upward}"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if room(name) in FAMILIES))
def test_a_family_imports_no_other_family(name):
    others = sorted(module for module in GRAPH[name] if room(module) in FAMILIES and room(module) != room(name))
    assert not others, f"{name} imports another family: {others}"


def test_no_circle_between_modules_or_between_subpackages():
    assert circle(GRAPH) is None, "import circle: " + " -> ".join(circle(GRAPH))
    rooms: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        rooms.setdefault(room(name), set()).update(room(target) for target in targets if room(target) != room(name))
    assert circle(rooms) is None, "circle between subpackages: " + " -> ".join(circle(rooms))


def test_the_layer_test_catches_an_upward_import_and_a_circle():
    assert rank("trainers.engine.loop") > rank("trainers.family.spec")  # the family layer may not import it
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set()}) is None


def test_every_subpackage_says_what_it_holds_and_may_import():
    doc = ast.get_docstring(ast.parse((TRAINERS / "__init__.py").read_text(encoding="utf-8")))
    for layer in [*SHARED, *FAMILIES]:
        assert f"{layer.split('.')[1]}/" in doc, f"trainers/__init__.py's map does not name {layer}"
    for layer in SHARED:
        init = TRAINERS / layer.split(".")[1] / "__init__.py"
        assert "May import" in (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""), init


def test_each_family_is_one_folder_found_through_its_entry_point():
    entries = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="lab.families")}
    for family in FAMILIES:
        name = family.split(".")[1]
        assert entries.get(name) == f"{family}.spec:SPEC", entries
        assert (TRAINERS / name / "spec.py").exists() and (TRAINERS / name / "config.py").exists()


def torch_free_modules() -> list[str]:
    """What a record-only `lab` command or `lab --help` may import: the package maps, what a family declares,
    each family's spec, config and command declarations, the shared command declarations, the memory plan's
    arithmetic, and `python -m trainers` before it runs."""
    names = {"trainers", "trainers.__main__", "trainers.commands.declarations", "trainers.sizing.plan",
             *(layer for layer in SHARED), *(name for name in MODULES if room(name) == "trainers.family")}
    for family in FAMILIES:
        names |= {name for name in (family, f"{family}.spec", f"{family}.config", f"{family}.commands")
                  if name in MODULES}
    return sorted(names)


def test_the_declarations_import_no_torch():
    code = ("import importlib, sys\n"
            f"for name in {torch_free_modules()!r}:\n"
            "    importlib.import_module(name)\n"
            f"    heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
            "    if heavy:\n"
            "        print(name, 'loads', heavy)\n"
            "        break\n"
            "else:\n"
            "    print('none')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none", done.stdout


def argparse_table(node: ast.FunctionDef) -> bool:
    """Whether a function is mostly a table of `add_argument` calls (exempt from the length limit)."""
    calls = [call for call in ast.walk(node) if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
             and call.func.attr in ("add_argument", "add_parser", "add_mutually_exclusive_group")]
    return len(calls) >= 0.8 * len(node.body)


def test_no_function_is_over_sixty_lines():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES and not argparse_table(node):
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long
