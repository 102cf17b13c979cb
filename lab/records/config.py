"""Config machinery shared by the notebook and the trainers: dataclass <-> dict, dotted overrides, diffs.

Nothing here imports torch, so record-only commands stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from lab.errors import ConfigError


def to_dict(config: Any) -> dict:
    """A config dataclass as plain nested dicts (JSON-serialisable)."""
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict, _prefix: str = "") -> Any:
    """Build the dataclass `cls` from nested dicts, refusing unknown keys and nested shape mistakes."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key {_prefix + unknown[0]!r}; valid keys: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {_prefix + name!r} must be a section (object), got {value!r}")
            kwargs[name] = from_dict(hint, value, f"{_prefix}{name}.")
        else:
            kwargs[name] = checked_value(_prefix + name, value, hint)
    return cls(**kwargs)


def checked_value(key: str, value: Any, hint: Any) -> Any:
    """`value` if it fits the type hint of `key` (an int is accepted for a float), else ConfigError."""
    origin = get_origin(hint) or hint
    if origin in (types.UnionType, typing.Union):
        for option in get_args(hint):
            try:
                return checked_value(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"config key {key!r} has {value!r}, which is not a {hint}")
    if hint is type(None):
        if value is None:
            return value
    elif origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif origin is list and isinstance(value, list):
        (item,) = get_args(hint) or (Any,)
        return [checked_value(f"{key}[{i}]", element, item) for i, element in enumerate(value)]
    elif origin is Any or (isinstance(value, origin) and not (isinstance(value, bool) and origin is int)):
        return value
    raise ConfigError(f"config key {key!r} has {value!r}, which is not a {getattr(hint, '__name__', hint)}")


def read_config_file(config_file: str | Path) -> dict:
    """A JSON config file as a dict, or a one-line ConfigError."""
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
        raise ConfigError(f"config file {config_file} is not valid JSON: {reason}{where}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {config_file} must hold a JSON object")
    return loaded


def merge(base: dict, update: dict) -> dict:
    """`base` with `update` merged in, section by section (nested dicts merge; other values replace)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one flat dict with dotted keys: {'optim': {'lr': 1}} -> {'optim.lr': 1}.

    A key that itself holds a dot keeps it, unless that would merge it with a nested key: then it is quoted,
    so {'optim': {'lr': 0.5}, 'optim.lr': 0.1} -> {'optim.lr': 0.5, '"optim.lr"': 0.1}.
    """
    leaves = list(_leaves(values, ()))
    names = [".".join(path) for path, _ in leaves]
    taken = Counter(names)
    flat: dict[str, Any] = {}
    for (path, value), name in zip(leaves, names):
        if taken[name] > 1 and any("." in part for part in path):
            name = ".".join(json.dumps(part) if "." in part else part for part in path)
        flat[prefix + name] = value
    return flat


def _leaves(values: dict, path: tuple[str, ...]):
    """(key path, value) of every leaf of nested dicts (an empty dict is a leaf)."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, str(key)))
        else:
            yield (*path, str(key)), value


def parse_value(key: str, text: str, current: Any) -> Any:
    """Parse the override text for `key` to the type of its current value, or raise ConfigError."""
    def fail(kind: str) -> ConfigError:
        return ConfigError(f"override {key}={text!r}: expected {kind} (current value {current!r})")

    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise fail("a boolean (true/false)")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise fail("an integer") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise fail("a number") from None
    if isinstance(current, str):
        return text
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        if current is None:
            return text
        raise fail("a JSON value") from None
    if current is not None and type(parsed) is not type(current):
        raise fail(type(current).__name__)
    return parsed


def apply_overrides(values: dict, assignments: list[str]) -> dict:
    """Return a copy of nested `values` with `key=value` assignments applied, type-checked.

    An unknown key raises ConfigError naming the valid keys. A config with no keys at all (a wrapped script's
    run that has recorded none) takes any key, its value read as JSON (else as text).
    """
    result = json.loads(json.dumps(values))
    valid = flatten(result)
    free = not valid
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {assignment!r} is not of the form key=value")
        if free and key not in valid:
            valid[key] = free_value(text)
            set_dotted(result, key, valid[key])
            continue
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listing = ", ".join(sorted(valid)) or "(this run has no config)"
            raise ConfigError(f"unknown override key {key!r}{hint}; valid keys: {listing}")
        valid[key] = parse_value(key, text, valid[key])
        set_dotted(result, key, valid[key])
    return result


def set_values(config: dict, assignments: list[str], inherited: dict | None = None) -> dict[str, Any]:
    """The values `--set` chose: {dotted key: its value in `config`} for the keys of `assignments` ('key=value'),
    over `inherited` (a parent run's own), in the order given."""
    flat = flatten(config)
    chosen = {key: flat[key] for key in (item.partition("=")[0].strip() for item in assignments) if key in flat}
    return {**(inherited or {}), **chosen}


def arguments_config(command: list[str]) -> dict:
    """The options of a command line as a config, for a script that reports none: `--lr 2e-4`, `--lr=2e-4`
    and a bare `--flag` (true) become {"lr": 0.0002, "flag": true}; dashes in names become underscores, as
    argparse makes them."""
    config, index = {}, 0
    while index < len(command):
        token = command[index]
        index += 1
        if not token.startswith("--") or token == "--":
            continue
        name, sep, text = token[2:].partition("=")
        if not sep and index < len(command) and not command[index].startswith("--"):
            text, sep = command[index], "="
            index += 1
        config[name.replace("-", "_")] = free_value(text) if sep else True
    return config


PYTHON_LITERALS = {"True": True, "False": False, "None": None}  # as Python scripts spell them: --compile=False


def free_value(text: str) -> Any:
    """A value given for a key no config declares: JSON when it parses (1, 0.5, true, [1, 2]), Python's True,
    False and None, else the text."""
    if text in PYTHON_LITERALS:
        return PYTHON_LITERALS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_dotted(values: dict, key: str, value: Any) -> None:
    """`values[a][b] = value` for key 'a.b', making the inner dicts a key needs."""
    *parents, leaf = key.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[leaf] = value


COMPONENT_WORDS = [
    ("schedule", {"lr", "schedule", "warmup", "plateau", "cosine"}),
    ("clipping", {"clip"}),
    ("precision", {"precision", "amp", "fp16", "bf16", "dtype"}),
    ("augmentation", {"noise", "offset", "mask", "augment", "shuffle", "tag"}),
    ("regularisation", {"dropout", "decay", "l2", "smoothing"}),
    ("optimizer", {"optim", "optimizer", "betas", "beta1", "beta2", "eps", "momentum"}),
]


COMPONENT_ORDER = ["schedule", "optimizer", "clipping", "precision", "augmentation", "regularisation", "model",
                   "data", "training", "bookkeeping"]
# Keys that say how long, where or how often, not what is learnt: a changelog lists them but never calls them
# what works or what does not.
BOOKKEEPING = {"max_steps", "init_from", "seed", "device", "num_workers", "out_dir", "resume", "processes"}


def is_bookkeeping(key: str) -> bool:
    """Whether a dotted config key is bookkeeping (BOOKKEEPING, or a cadence like `train.eval_every`)."""
    last = key.rsplit(".", 1)[-1]
    return last in BOOKKEEPING or last.endswith("_every")


def component_of(key: str) -> str:
    """The component a dotted config key belongs to, for grouping diffs and changelogs.

    Bookkeeping keys (`is_bookkeeping`) come first; then whole words of the key's last part
    (`train.grad_clip` -> clipping), then its section.
    """
    if is_bookkeeping(key):
        return "bookkeeping"
    words = set(key.rsplit(".", 1)[-1].lower().split("_"))
    for component, vocabulary in COMPONENT_WORDS:
        if words & vocabulary:
            return component
    section = key.split(".", 1)[0]
    if section in ("model", "data"):
        return section
    if section == "optim":
        return "optimizer"
    return "training"


@dataclass(frozen=True)
class Change:
    """One key-level difference between two configs."""

    key: str
    before: Any
    after: Any

    @property
    def component(self) -> str:
        return component_of(self.key)

    def describe(self) -> str:
        return f"{self.key}: {format_value(self.before)} -> {format_value(self.after)}"


MISSING = "(absent)"


def diff(before: dict, after: dict) -> list[Change]:
    """Key-level differences from `before` to `after` (nested dicts), in COMPONENT_ORDER, then by key."""
    flat_before, flat_after = flatten(before), flatten(after)
    changes = [
        Change(key, flat_before.get(key, MISSING), flat_after.get(key, MISSING))
        for key in sorted(set(flat_before) | set(flat_after))
        if flat_before.get(key, MISSING) != flat_after.get(key, MISSING)
    ]
    return sorted(changes, key=lambda change: (COMPONENT_ORDER.index(change.component), change.key))


def format_value(value: Any) -> str:
    """A config value as researchers write it in notes: compact JSON for containers, plain otherwise."""
    if isinstance(value, str):
        return value
    return json.dumps(value)
