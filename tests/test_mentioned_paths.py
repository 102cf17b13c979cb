"""Every file, folder and module that the docs name exists: the README, and the docstrings and comments of
`lab/`, `trainers/` and `models/`. A mention is a path under one of the project's folders (`trainers/engine/`,
`lab/records/files.py`, `trainers/<family>/weights.py`, where `<...>` stands for any name) or a dotted module
name (`trainers.formats.weights`, `lab.families.spec.FamilySpec`, whose last parts may name what the module
defines). Read from the source; nothing is imported."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

pytestmark = pytest.mark.light  # reads files only

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("lab", "trainers", "models", "templates", "tests", "benchmarks", "examples")
PACKAGES = ("lab", "trainers", "models")
SOURCES = ("lab", "trainers", "models")  # whose docstrings and comments are read
DOCUMENTS = ("README.md",)
PATH = re.compile(rf"(?<![\w./<>-])(?:{'|'.join(FOLDERS)})/[\w.<>*/-]*")
MODULE = re.compile(rf"(?<![\w./<>-])(?:{'|'.join(PACKAGES)})(?:\.(?:[A-Za-z_][\w]*|<\w+>))+")
FILE_SUFFIXES = (".json", ".jsonl", ".md", ".py", ".txt", ".toml", ".log", ".pt", ".j2")  # `lab.json` is a file


def docs_of(path: Path) -> str:
    """The docstrings and comments of a Python file, one after another."""
    source = path.read_text(encoding="utf-8")
    texts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            texts.append(ast.get_docstring(node, clean=False) or "")
    texts += [token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
              if token.type == tokenize.COMMENT]
    return "\n".join(texts)


def texts() -> dict[str, str]:
    """{file, relative to the root: the text whose mentions are checked}."""
    found = {name: (ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTS}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[str(path.relative_to(ROOT))] = docs_of(path)
    return found


def path_exists(mention: str) -> bool:
    """Whether a mentioned path names something here (`<...>` and `*` match any name; a trailing / a folder)."""
    mention = mention.rstrip(".,;:")
    pattern = re.sub(r"<[^>/]*>", "*", mention).rstrip("/")
    matches = list(ROOT.glob(pattern)) if "*" in pattern else [ROOT / pattern] if (ROOT / pattern).exists() else []
    return any(match.is_dir() for match in matches) if mention.endswith("/") else bool(matches)


def module_file(parts: list[str]) -> Path | None:
    """The source file of the module `parts` names ('<...>' matching any folder), or None."""
    pattern = "/".join("*" if part.startswith("<") else part for part in parts)
    for candidate in (f"{pattern}.py", f"{pattern}/__init__.py"):
        matches = sorted(ROOT.glob(candidate))
        if matches:
            return matches[0]
    return None


def module_exists(mention: str) -> bool:
    """Whether a dotted mention is a module here, or a module followed by a name its source defines or uses."""
    if mention.endswith(FILE_SUFFIXES):
        return True
    parts = mention.split(".")
    for length in range(len(parts), 0, -1):
        source = module_file(parts[:length])
        if source is not None:
            rest = parts[length:]
            if not rest or rest[0].startswith("<"):  # `lab.runs.<function>`: any name
                return True
            return re.search(rf"\b{re.escape(rest[0])}\b", source.read_text(encoding="utf-8")) is not None
    return False


def stale_mentions() -> list[str]:
    stale = []
    for name, text in texts().items():
        stale += [f"{name}: {mention}" for mention in PATH.findall(text) if not path_exists(mention)]
        stale += [f"{name}: {mention}" for mention in MODULE.findall(text) if not module_exists(mention)]
    return stale


def test_every_mentioned_path_and_module_exists():
    assert stale_mentions() == []


def test_a_mention_of_a_module_that_is_gone_is_found():
    assert not path_exists("trainers/registry.py") and not module_exists("trainers.registry")
    assert not path_exists("trainers/<family>/nothing.py") and not path_exists("lab/records/files.py/")
    assert path_exists("trainers/<family>/weights.py") and path_exists("trainers/engine/")
    assert module_exists("trainers.formats.weights") and module_exists("lab.families.spec.FamilySpec")
    assert not module_exists("lab.families.spec.NoSuchThing")
    assert module_exists("trainers.<family>.weights") and module_exists("lab.json") and module_exists("lab.runs.<f>")
    assert PATH.findall("see `trainers/engine/loop.py`, and lab/records/") == ["trainers/engine/loop.py",
                                                                            "lab/records/"]
