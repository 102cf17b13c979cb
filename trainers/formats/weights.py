"""Weights files published with the original repositories: read them, recognise their format by their keys,
convert them to this project's keys (imports torch).

    original = read("dia-v0_1.pth")          # tensors (flat), what else the file holds, its config.json
    converted = convert(original)             # Converted: family, format, project keys, config read from the file
    converted = convert(original, "dia")      # ConfigError unless the file is one of dia's formats

A family converts its originals in `trainers/<family>/weights.py`, a module with
`convert(original: Original) -> Converted | None` (None: not one of its formats). `load_initial_weights`
(`train.init_from`, `lab new-run --init-from`) converts through here, and `lab weights inspect|convert` is built
on `describe` and `write`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lab.errors import ConfigError
from lab.families import registry

CONTAINERS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")  # where files nest their weights
PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel and torch.compile wrappers


@dataclass
class Original:
    """A weights file as read: its tensors under their own names, the rest of the file, its config.json."""

    path: Path
    container: str  # "safetensors" or "torch.save"
    tensors: dict[str, torch.Tensor]
    extras: dict[str, Any] = field(default_factory=dict)  # the file's entries that are not weights (stored configs)
    sidecar: dict[str, Any] = field(default_factory=dict)  # config.json beside the file, when there is one


@dataclass
class Converted:
    """An original file in this project's keys."""

    family: str
    format: str  # what the file was recognised as, e.g. "nari-labs/dia Dia-1.6B first release"
    weights: dict[str, torch.Tensor]
    config: dict[str, Any]  # dotted settings of the model the file holds ("model.n_units": 1024)
    settings: dict[str, Any] = field(default_factory=dict)  # of `config`, those that carry no weights: set on load
    dropped: list[str] = field(default_factory=list)  # original keys left out on purpose: constants,
    # unused layers, a training head over the original's speakers


def read(path: str | Path, key: str | None = None) -> Original:
    """The tensors of a .safetensors or torch.save file (a state dict, possibly nested in a checkpoint), with
    `module.`/`_orig_mod.` prefixes removed. `key` ('a.b') names the nested entry to take. ConfigError when the
    file is missing, a directory, unreadable or holds no tensors."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory: name the weights file in it")
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    sidecar = path.with_name("config.json")
    try:
        side = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (ValueError, OSError):
        side = {}
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            tensors = load_file(path)
            with safe_open(path, "pt") as stream:
                metadata = stream.metadata() or {}
        except (SafetensorError, OSError) as error:
            raise ConfigError(f"{path}: cannot read it as safetensors ({' '.join(str(error).split())[:200]})") \
                from None
        return Original(path, "safetensors", {_unprefixed(name): value for name, value in tensors.items()},
                        extras=metadata, sidecar=side)
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # checkpoints that also pickle generator states or training configs
            state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ModuleNotFoundError, AttributeError) as error:
        raise ConfigError(f"{path}: cannot read it ({' '.join(str(error).split())[:200]})") from None
    tensors, extras = _weights_of(state, key, path)
    tensors = {_unprefixed(name): value for name, value in tensors.items()}
    return Original(path, "torch.save", tensors, extras, side)


def _unprefixed(name: str) -> str:
    for prefix in PREFIXES:
        name = name.removeprefix(prefix)
    return name


def _is_state(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(item, torch.Tensor) for item in value.values())


def _weights_of(state: Any, key: str | None, path: Path) -> tuple[dict, dict]:
    """(state dict, the other entries of the dict that held it)."""
    if key is not None:
        for part in key.split("."):
            if not isinstance(state, dict) or part not in state:
                keys = ", ".join(sorted(map(str, state))[:10]) if isinstance(state, dict) else type(state).__name__
                raise ConfigError(f"{path}: no key {part!r} in the file (its keys: {keys})")
            state = state[part]
    if _is_state(state):
        return state, {}
    if isinstance(state, dict):
        for name in CONTAINERS:
            if _is_state(state.get(name)):
                extras = {other: value for other, value in state.items()
                          if other != name and not _is_state(value) and not isinstance(value, torch.Tensor)}
                return state[name], extras
    raise ConfigError(f"{path}: the file holds no state dict of tensors; name one with PATH:KEY")


def families() -> dict[str, Any]:
    """{family name: its converter module} for every installed family that has one."""
    found = {}
    for name in registry.known():
        module = f"trainers.{name}.weights"
        if importlib.util.find_spec(module.rpartition(".")[0]) and importlib.util.find_spec(module):
            found[name] = importlib.import_module(module)
    return found


def recognise(original: Original) -> Converted | None:
    """The first family whose converter recognises the file, converted; None when none does."""
    for module in families().values():
        converted = module.convert(original)
        if converted is not None:
            return converted
    return None


def convert(original: Original, family: str | None = None) -> Converted:
    """`original` in this project's keys, for `family` when given. ConfigError when no converter knows it."""
    converters = families()
    if family is not None and family not in converters:
        raise ConfigError(f"no converter for family {family!r} (families with one: {', '.join(converters)})")
    converted = recognise(original)
    if converted is None:
        raise ConfigError(f"{original.path}: not a format this lab knows ({len(original.tensors)} tensors, first "
                          f"keys: {', '.join(list(original.tensors)[:3])})")
    if family is not None and converted.family != family:
        raise ConfigError(f"{original.path} is {converted.format}, a {converted.family} file, not {family}")
    return converted


def for_model(original: Original, expected: set[str]) -> Converted:
    """The file's weights for a model whose keys are `expected`: as they are when they are this project's keys
    (format 'lab'; the same keys, or a model of other sizes sharing some), else converted by the family that
    recognises them, else as they are (format 'unrecognised', for the key report to list)."""
    if set(original.tensors) == expected:
        return Converted(family="", format="lab", weights=original.tensors, config={})
    converted = recognise(original)
    if converted is not None:
        return converted
    known = "lab" if set(original.tensors) & expected else "unrecognised"
    return Converted(family="", format=known, weights=original.tensors, config={})


def describe(original: Original, converted: Converted | None) -> list[str]:
    """The lines `lab weights inspect` prints: family, format, container, size, config."""
    parameters = sum(value.numel() for value in original.tensors.values())
    megabytes = sum(value.numel() * value.element_size() for value in original.tensors.values()) / 2**20
    dtypes = sorted({str(value.dtype).removeprefix("torch.") for value in original.tensors.values()})
    lines = [f"{original.path}: {original.container}, {len(original.tensors)} tensors, {parameters:,} values, "
             f"{megabytes:.1f} MiB ({', '.join(dtypes)})"]
    if converted is None and "family" in original.extras:  # written by `write`
        lines.append(f"family: {original.extras['family']}")
        lines.append(f"format: this project's keys, converted from {original.extras.get('format', 'an original')}")
        return lines
    if converted is None:
        lines.append("format: no original repository's format this lab knows (this project's own keys load as they "
                     "are); first keys: " + ", ".join(list(original.tensors)[:5]))
        return lines
    lines.append(f"family: {converted.family}")
    lines.append(f"format: {converted.format}")
    if converted.dropped:
        lines.append(f"left out: {len(converted.dropped)} tensors (constants, unused layers, the original's "
                     "training head): "
                     + ", ".join(converted.dropped[:3]) + (" ..." if len(converted.dropped) > 3 else ""))
    if converted.config:
        lines.append("config: " + " ".join(assignments(converted)))
    return lines


def setting_text(value: Any) -> str:
    """A config value as one shell word: booleans lower-case, lists without spaces ([2,2])."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(setting_text(item) for item in value) + "]"
    return str(value)


def split_source(source: str) -> tuple[Path, str | None]:
    """'PATH' or 'PATH:KEY' -> (path, key); a path that exists as given is never split."""
    path = Path(source)
    if path.exists() or ":" not in source:
        return path, None
    name, _, key = source.rpartition(":")
    return Path(name), key or None


def file_settings(source: str) -> dict[str, str]:
    """{"model.cross_rope": "false"}: the settings without weights that the file at `source` ('PATH[:KEY]') fixes
    for its model (the format's `settings`, as override values); {} for this project's own files and unknown
    formats. ConfigError when the file cannot be read."""
    converted = recognise(read(*split_source(source)))
    return {name: setting_text(value) for name, value in converted.settings.items()} if converted else {}


def assignments(converted: Converted) -> list[str]:
    """'KEY=VALUE' overrides that build a model matching the file."""
    return [f"{name}={setting_text(value)}" for name, value in converted.config.items()]


def overrides(converted: Converted) -> str:
    """The `--set KEY=VALUE` options that build a model matching the file."""
    return " ".join(f"--set {assignment}" for assignment in assignments(converted))


def write(converted: Converted, out: str | Path) -> Path:
    """Write the converted weights as a plain state dict: safetensors for a .safetensors name, else torch.save.
    ConfigError when `out` is a directory."""
    from lab.records.files import atomic_write

    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory: name the file to write")
    weights = {name: value.contiguous() for name, value in converted.weights.items()}
    if out.suffix == ".safetensors":
        from safetensors.torch import save

        data = save(weights, metadata={"family": converted.family, "format": converted.format})
        atomic_write(out, lambda stream: stream.write(data))
    else:
        atomic_write(out, lambda stream: torch.save(weights, stream))
    return out
