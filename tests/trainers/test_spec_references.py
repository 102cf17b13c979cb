"""Every lazy reference of every registered family resolves: the builders, hooks, evaluation stages, health
rules and commands a spec names as `Lazy("module:function")`, every such string written in trainers/, and every
import of the project's modules deferred into a function (a command's work). A module moved without its
references fails here, not in a user's run."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import toy_family  # noqa: E402

from lab.families import registry  # noqa: E402
from lab.families.spec import Lazy  # noqa: E402

ROOT = HERE.parents[1]
FAMILIES = sorted({*registry.known(), toy_family.SPEC.name})
TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # 'trainers.dia.family:build_model'
REQUIRED = ("build_model", "build_data", "training_loss", "evaluate")


@pytest.fixture(autouse=True)
def toy_registered():
    registry.register(toy_family.SPEC)
    yield
    registry.unregister(toy_family.SPEC.name)


def lazy_references(value, where: str) -> list[tuple[str, Lazy]]:
    """(where, reference) for every Lazy inside `value`: dataclass fields (specs, stages, commands), mappings
    (health rules, suggestions), tuples and lists."""
    if isinstance(value, Lazy):
        return [(where, value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [found for field in dataclasses.fields(value)
                for found in lazy_references(getattr(value, field.name), f"{where}.{field.name}")]
    if isinstance(value, dict) or hasattr(value, "items") and callable(value.items):
        return [found for key, item in value.items() for found in lazy_references(item, f"{where}[{key!r}]")]
    if isinstance(value, (tuple, list)):
        return [found for index, item in enumerate(value) for found in lazy_references(item, f"{where}[{index}]")]
    return []


@pytest.mark.parametrize("name", FAMILIES)
def test_every_lazy_reference_of_a_family_resolves_to_a_callable(name):
    spec = registry.get(name)
    references = lazy_references(spec, name)
    named = {where.split(".")[1] for where, _ in references}
    assert set(REQUIRED) <= named or name == toy_family.SPEC.name, f"{name}: the walk found only {sorted(named)}"
    for where, reference in references:
        assert TARGET.fullmatch(reference.target), f"{where}: {reference.target!r} is not 'module:function'"
        assert callable(reference.resolve()), f"{where}: {reference.target} is not callable"
    for stage in spec.stages():
        assert callable(stage.evaluate), f"{name}: stage {stage.name}"
    for command in spec.commands:
        assert callable(command.arguments) and callable(command.run), f"{name}: command {command.name}"


def lazy_strings_in_source() -> list[tuple[str, str]]:
    """(file, target) for every `Lazy("module:function")` written with a plain string in trainers/."""
    found = []
    for path in sorted((ROOT / "trainers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Lazy" and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((str(path.relative_to(ROOT)), node.args[0].value))
    return found


def test_every_lazy_string_in_the_trainers_resolves():
    strings = lazy_strings_in_source()
    assert any(target.startswith("trainers.sizing.") for _, target in strings)  # the shared hooks of family_spec
    for where, target in strings:
        assert callable(Lazy(target).resolve()), f"{where}: {target}"


def test_a_reference_to_a_moved_module_fails():
    with pytest.raises(ModuleNotFoundError):
        Lazy("trainers.sizes:parameter_count").resolve()
    assert lazy_references(registry.get("dia"), "dia")  # the walk finds the spec's references


def deferred_imports() -> list[tuple[str, str, str | None]]:
    """(file, module, name or None) for every import of the project's own modules made inside a function in
    trainers/ (a command's work, a hook that keeps torch out of a spec's import): they run only when called."""
    found = []
    for path in sorted((ROOT / "trainers").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in (inner for function in functions for inner in ast.walk(function)):
            where = str(path.relative_to(ROOT))
            if isinstance(node, ast.Import):
                found += [(where, alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(where, node.module, alias.name) for alias in node.names]
    return [(where, module, name) for where, module, name in found
            if module.split(".")[0] in ("lab", "trainers", "models")]


def test_every_deferred_import_of_the_project_resolves():
    imports = deferred_imports()
    assert ("trainers/commands/declarations.py", "trainers.commands.trained", "write_generated") in imports
    for where, module, name in imports:
        imported = importlib.import_module(module)
        assert name is None or hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), \
            f"{where}: from {module} import {name}"
