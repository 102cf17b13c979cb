"""The families this environment knows, found through the `lab.families` entry-point group (the way pytest
finds its plugins) and the modules named in `LAB_FAMILY_MODULES`. Imports no torch.

    from lab.families import registry
    spec = registry.get("neural_decoder")
    values = spec.resolve(preset="tiny", overrides=["optim.lr=1e-3"])   # one config path for every caller

A package declares its families in its metadata:

    [project.entry-points."lab.families"]
    dia = "trainers.dia.spec:SPEC"

`LAB_FAMILY_MODULES` names further modules (comma-separated) that export `SPEC = FamilySpec(...)`; tests
register a family in-process with `register` and forget it with `unregister`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os

from lab.errors import ConfigError
from lab.families.spec import Command, FamilySpec

ENTRY_POINT_GROUP = "lab.families"
FAMILY_MODULES_VARIABLE = "LAB_FAMILY_MODULES"

_registered: dict[str, FamilySpec] = {}
_discovered = False  # the entry points have been read
_modules_read: str | None = None  # the LAB_FAMILY_MODULES value whose families are registered
_from_modules: dict[str, FamilySpec] = {}  # the families that value registered
_origins: dict[str, str] = {}  # family name -> the file of the module its spec came from


def register(spec: FamilySpec) -> FamilySpec:
    """Make `spec` known by its name (replacing an earlier spec of that name); returns it."""
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"register takes a FamilySpec, got {type(spec).__name__}")
    _registered[spec.name] = spec
    _origins.pop(spec.name, None)
    directions.cache_clear()
    return spec


def unregister(name: str) -> None:
    """Forget the family `name` (tests register toy families for their own duration)."""
    _registered.pop(name, None)
    _origins.pop(name, None)
    directions.cache_clear()


def _discover() -> None:
    """Register the families of installed entry points (once per process) and of LAB_FAMILY_MODULES (again
    whenever its value changes, forgetting the families an earlier value named, so a `lab.cli.main` call in a
    process that already ran one sees its own environment's families).

    Raises ConfigError naming the entry point or module that does not load or exports no FamilySpec.
    """
    global _discovered, _modules_read
    if not _discovered:
        _discovered = True
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                spec = entry.load()
            except ImportError as error:
                raise ConfigError(f"the family {entry.name!r} ({entry.value}) does not import: {error}") from None
            if not isinstance(spec, FamilySpec):
                raise ConfigError(f"the entry point {entry.name!r} ({entry.value}) is not a FamilySpec")
            if _registered.setdefault(spec.name, spec) is spec:
                _origins[spec.name] = _module_file(entry.module)
    modules = os.environ.get(FAMILY_MODULES_VARIABLE, "")
    if modules == _modules_read:
        return
    _modules_read = modules
    for name, spec in _from_modules.items():
        if _registered.get(name) is spec:
            del _registered[name]
            _origins.pop(name, None)
    _from_modules.clear()
    directions.cache_clear()
    for module_name in (name.strip() for name in modules.split(",")):
        if not module_name:
            continue
        try:
            spec = getattr(importlib.import_module(module_name), "SPEC", None)
        except ImportError as error:
            raise ConfigError(f"{FAMILY_MODULES_VARIABLE} names {module_name!r}, which does not import: "
                              f"{error}") from None
        if not isinstance(spec, FamilySpec):
            raise ConfigError(f"{FAMILY_MODULES_VARIABLE} names {module_name!r}, which has no SPEC = FamilySpec(...)")
        if _registered.setdefault(spec.name, spec) is spec:
            _from_modules[spec.name] = spec
            _origins[spec.name] = _module_file(module_name)


def _module_file(name: str) -> str:
    """The file module `name` (imported) was loaded from, '' for one without a file."""
    return str(getattr(importlib.import_module(name), "__file__", None) or "")


def origin(name: str) -> str | None:
    """The file of the module that declared family `name` (an entry point's or a LAB_FAMILY_MODULES module),
    None for a family registered in process or an unknown one: what tells two families of one name apart."""
    _discover()
    return _origins.get(name)


def known() -> list[str]:
    """Names of every known family."""
    _discover()
    return sorted(_registered)


def get(name: str) -> FamilySpec:
    """The spec of family `name`, or ConfigError naming the known families."""
    _discover()
    if name not in _registered:
        names = ", ".join(known()) or "none (install the trainers: pip install 'lab[trainers]')"
        raise ConfigError(f"unknown family {name!r}; known families: {names}")
    return _registered[name]


def find(name: str | None) -> FamilySpec | None:
    """The spec of family `name`, or None for a script's run (no family) or a family this machine lacks."""
    if not name:
        return None
    try:
        return get(name)
    except ConfigError:
        return None


@functools.lru_cache(maxsize=32)
def directions(name: str | None) -> dict[str, str | None]:
    """The metric directions a family declares ({} for none, or for a family this machine does not know)."""
    spec = find(name)
    return dict(spec.metric_directions) if spec else {}


def commands() -> list[Command]:
    """The CLI commands the known families bring, each once, in the order first declared."""
    seen: dict[str, Command] = {}
    for name in known():
        for command in _registered[name].commands:
            seen.setdefault(command.name, command)
    return list(seen.values())
