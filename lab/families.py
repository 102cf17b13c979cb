"""The model families the lab knows: name -> its config module and its trainer module.

Config modules import no torch (they hold dataclasses and presets); trainer modules do.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lab.config import ConfigError, from_dict, to_dict

FAMILIES = {
    "neural_decoder": ("trainers.neural_decoder.config", "trainers.neural_decoder.family"),
}


def known() -> list[str]:
    """Names of the registered families."""
    return sorted(FAMILIES)


def _check(name: str) -> None:
    if name not in FAMILIES:
        raise ConfigError(f"unknown family {name!r}; known families: {', '.join(known())}")


def config_module(name: str) -> ModuleType:
    """The torch-free module with the family's `Config`, `PRESETS` and `PROVENANCE`."""
    _check(name)
    return importlib.import_module(FAMILIES[name][0])


def trainer_module(name: str) -> ModuleType:
    """The module that builds the family's model, data, loss and evaluation (imports torch)."""
    _check(name)
    return importlib.import_module(FAMILIES[name][1])


def preset(name: str, preset_name: str) -> dict:
    """The family's named preset as a plain nested dict."""
    module = config_module(name)
    if preset_name not in module.PRESETS:
        raise ConfigError(
            f"unknown preset {preset_name!r} for {name}; presets: {', '.join(sorted(module.PRESETS))}"
        )
    return to_dict(module.PRESETS[preset_name]())


def validated(name: str, values: dict) -> dict:
    """A family config checked against its dataclass (keys, types) and the engine's limits, defaults filled in."""
    from trainers.config import validate

    config = from_dict(config_module(name).Config, values)
    validate(config.optim, config.train)
    return to_dict(config)
