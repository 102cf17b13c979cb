"""The notebook stands on its own: one-way layers inside `lab/`, no import of trainers/, models/ or torch, no
circle between modules (read from the source), and importing every module pulls in no torch (run)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
# Each layer may import only the layers before it (and itself).
LAYERS = ["lab.errors", "lab.records", "lab.families", "lab.health", "lab.tracking", "lab.launcher", "lab.pages",
          "lab.runs", "lab.site", "lab.api", "lab.cli", "lab.demo", "lab.__main__"]
FORBIDDEN = ("trainers", "models", "torch", "torchaudio", "accelerate", "torch_xla", "dac")


def lab_env(**extra: str) -> dict:
    """This process's environment without the lab's and W&B's variables, W&B offline (conftest has the same
    helper, but tests/trainers has a conftest of its own that a whole-suite run may import first)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "WANDB_"))}
    return {**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **extra}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import statement of a file; `from a import b` yields a.b
    when a.b is a module of the lab, else a."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (ROOT / Path(*candidate.split(".")) / "__init__.py").exists()
                found.append((candidate if is_module else node.module, id(node) in top_level))
    return found


MODULES = {module_name(path): path for path in sorted(LAB.rglob("*.py"))}


def layer(name: str) -> int:
    return max(index for index, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")) \
        if name != "lab" else -1


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_no_trainers_models_or_torch(name):
    bad = [module for module, _ in imports(MODULES[name]) if module.split(".")[0] in FORBIDDEN]
    assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name != "lab"))
def test_module_imports_only_lower_layers(name):
    upward = [module for module, _ in imports(MODULES[name])
              if module.startswith("lab.") and module in MODULES and layer(module) > layer(name)]
    assert not upward, f"{name} (layer {LAYERS[layer(name)]}) imports the layers above it: {upward}"


def test_no_circle_between_modules():
    graph = {name: {module for module, _ in imports(path) if module in MODULES and module != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_every_subpackage_says_what_it_owns_and_may_import():
    for init in sorted(LAB.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init.relative_to(ROOT)} does not say what it may import"


def test_importing_every_module_loads_no_torch():
    code = ("import importlib, sys\n"
            f"for name in {sorted(set(MODULES) - {'lab.__main__'})!r}:\n"
            "    importlib.import_module(name)\n"
            "from lab import tracker\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{FORBIDDEN!r}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def lab_modules_loaded(code: str, **env: str) -> list[str]:
    """The lab modules a fresh interpreter has loaded after running `code`."""
    report = "\nimport sys\nprint(sorted(m for m in sys.modules if m == 'lab' or m.startswith('lab.')))"
    done = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env=lab_env(**env))
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_the_tracker_runs_in_a_training_script_without_the_launcher():
    assert lab_modules_loaded("from lab import tracker") == [
        "lab", "lab.errors", "lab.records", "lab.records.files", "lab.tracking", "lab.tracking.ranks",
        "lab.tracking.tracker"]


def test_zero_code_capture_in_a_launched_script_loads_nothing_of_the_launcher(tmp_path):
    code = ("from lab.tracking import autolog\nassert autolog.install()\nimport argparse, wandb\n"
            "argparse.ArgumentParser().parse_args([])")
    loaded = lab_modules_loaded(code, LAB_ATTEMPT_DIR=str(tmp_path))
    assert "lab.tracking.autolog.hooks" in loaded and "lab.tracking.tracker" in loaded
    assert [name for name in loaded if name.startswith(("lab.launcher", "lab.pages", "lab.runs", "lab.api",
                                                       "lab.cli"))] == []


def test_help_lists_family_commands_from_the_seam():
    done = subprocess.run([sys.executable, "-m", "lab", "--help"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for command in ("generate", "profile", "embed", "codec", "new-run", "launch"):
        assert f"    {command}" in done.stdout


FAKE_FAMILY = '''
from dataclasses import dataclass, field
from lab.families.spec import FamilySpec, Lazy

@dataclass
class Section:
    size: int = 1

@dataclass
class Config:
    model: Section = field(default_factory=Section)
    data: Section = field(default_factory=Section)
    optim: Section = field(default_factory=Section)
    train: Section = field(default_factory=Section)

PRESETS = {"baseline": Config, "tiny": Config}
PROVENANCE = {"baseline": "heavy_baseline", "repository": "https://example.org/heavy", "config": "c.json"}
SPEC = FamilySpec(name="heavy", config=__import__(__name__), build_model=Lazy("heavy_runtime:build"),
                  build_data=Lazy("heavy_runtime:data"), training_loss=Lazy("heavy_runtime:loss"),
                  evaluate=Lazy("heavy_runtime:evaluate"), eval_metrics=("val/loss",),
                  requires=("heavy_accelerator_kit",), install="pip install 'heavy[gpu]'")
'''


def test_a_family_whose_packages_are_missing_says_what_to_install(repo, tmp_path):
    (tmp_path / "heavy_family.py").write_text(FAKE_FAMILY)
    env = lab_env(LAB_FAMILY_MODULES="heavy_family", PYTHONPATH=f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}")
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60, cwd=repo, env=env)
    assert run([sys.executable, "-m", "lab", "init"]).returncode == 0
    done = run([sys.executable, "-m", "lab", "new-run", "hv_001", "--family", "heavy", "--hypothesis", "h"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lab: error: the heavy family needs heavy_accelerator_kit, not installed here: pip install 'heavy[gpu]'"]
    assert not (repo / "logs" / "runs" / "hv_001").exists()
    listed = run([sys.executable, "-m", "lab", "runs"])
    assert listed.returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="only the light install lacks torch")
def test_the_light_install_names_the_trainers_extra(repo):
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60, cwd=repo, env=lab_env())
    assert run([sys.executable, "-m", "lab", "init"]).returncode == 0
    done = run([sys.executable, "-m", "lab", "new-run", "dia_001", "--family", "dia", "--hypothesis", "h"])
    assert done.returncode == 2
    assert "pip install 'lab[trainers]'" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    script = repo / "train.py"
    script.write_text("from lab import tracker\nfor step in range(3):\n    tracker.log(step, loss=1.0 / (step + 1))\n")
    assert run([sys.executable, "-m", "lab", "new-run", "s_001", "--hypothesis", "a script"]).returncode == 0
    launched = run([sys.executable, "-m", "lab", "launch", "s_001", "--no-commit", "--", sys.executable, "train.py"])
    assert launched.returncode == 0, launched.stderr
    assert run([sys.executable, "-m", "lab", "report", "s_001"]).returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="only the light install lacks torch")
def test_a_family_command_in_the_light_install_names_the_trainers_extra(repo):
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60, cwd=repo, env=lab_env())
    assert run([sys.executable, "-m", "lab", "init"]).returncode == 0
    for command in (["generate", "dia_001"], ["profile", "sash_001"], ["embed", "rdn_001", "--audio", "a.wav"]):
        done = run([sys.executable, "-m", "lab", *command])
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "pip install 'lab[trainers]'" in done.stderr and len(done.stderr.strip().splitlines()) == 1
