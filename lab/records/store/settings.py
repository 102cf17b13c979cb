"""lab.json, the lab's settings: every key the lab reads is checked for its kind of value when it is read."""

from __future__ import annotations

from lab.errors import LabError

SETTINGS_FILE = "lab.json"
SECTIONS = ("wandb", "prefixes", "launch", "capture", "remote", "commit", "secrets", "samples")  # keys holding objects
TEXTS = ("logs", "artefacts", "timezone")  # ... holding text
NUMBERS = {("launch", "kill_grace_seconds"): 0, ("launch", "output_head_mb"): 0, ("launch", "output_tail_mb"): 0,
           ("remote", "timeout_s"): 0, (None, "device_memory_gb"): 0,
           ("samples", "max_mb"): 0}  # numbers and their least value (exclusive
# for the device size and the remote's timeout)
DEFAULTS = {"logs": "logs", "artefacts": "artefacts", "prefixes": {}, "wandb": {}}  # a new lab's lab.json


def check_settings(settings: dict) -> dict:
    """`settings` (lab.json) when every key the lab reads has the right kind of value; LabError naming the first
    that does not (a section that is not an object, a path that is not text, a number that is not one)."""
    for key in SECTIONS:
        if key in settings and not isinstance(settings[key], dict):
            raise LabError(f'lab.json "{key}" must be an object ({{...}}), not {json_kind(settings[key])}')
    for key in TEXTS:
        if key in settings and not isinstance(settings[key], str):
            raise LabError(f'lab.json "{key}" must be text, not {json_kind(settings[key])}')
    for (section, key), least in NUMBERS.items():
        holder = settings.get(section, {}) if section else settings
        if key not in holder:
            continue
        value = holder[key]
        strict = key in ("device_memory_gb", "timeout_s")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > least if strict else
                                                                                   value >= least):
            name = f"{section}.{key}" if section else key
            raise LabError(f'lab.json "{name}" must be a number {">" if strict else ">="} {least}, not {value!r}')
    return settings


def updated(current: dict, settings: dict) -> dict:
    """`current` with `settings` merged in: a dict value updates its section (None values left out), any
    other value replaces the key unless it is None."""
    for key, value in settings.items():
        if isinstance(value, dict):
            current.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
        elif value is not None:
            current[key] = value
    return current


def json_kind(value: object) -> str:
    """The JSON word for a value's kind: 'a list', 'text', 'a number' ..."""
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)
