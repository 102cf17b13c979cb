"""Sizing a family's model without weights: its parameter count, its memory plan per device, the settings a
weights file fixes, and the structural check `lab new-run` prints. Each runs the family's torch code in a child
process killed after a bound, so the `lab` process never imports torch and an absurd size never hangs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from lab.errors import ConfigError, say
from lab.families import registry
from lab.records import config as config_tools
from lab.records.files import cache_home, read_json, write_json
from lab.records.store import Store


def parameter_count(family: str, values: dict) -> int | dict[str, int]:
    """Parameters of the family's model for a config, from the family's `parameter_count` hook (which builds it
    without weights): an int, or {"model": n, "training head": m} for a model with a training-only head.
    ConfigError when the family cannot size its model or the model cannot be built."""
    spec = registry.get(family)
    if spec.parameter_count is None:
        raise ConfigError(f"the {family} family does not say how to count its parameters")
    return spec.parameter_count(spec, config_tools.from_dict(spec.config.Config, values))


BUILD_SECONDS = 60  # a model that takes longer than this to build on the meta device has an absurd size


def parameter_counts(family: str, configs: list[dict], seconds: float | None = None) -> list[int | dict[str, int]]:
    """`parameter_count` of each config, in a child process killed after `seconds` (default BUILD_SECONDS), so
    that an absurd size (100,000 layers) is refused in bounded time instead of hanging `lab new-run`."""
    return sizes(family, configs, seconds=seconds)[0]


def sizes(family: str, configs: list[dict], *, plan: dict | None = None, seconds: float | None = None,
          cache: Path | None = None) -> tuple[list[int | dict[str, int]], dict | None]:
    """The parameter count of each config and, with `plan` ({"processes": N, "device_gb": X or None}), the
    family's memory plan of the first (its `memory_plan` hook: bytes per device and the `lines` to print),
    computed in one child process killed after `seconds`. ConfigError when a model cannot be built.

    With a `cache` folder, each answer is kept there and given again without a child (which imports torch and
    builds the model: seconds) while the code it came from is unchanged: every module file the child loaded
    outside the installed packages, and the installed packages' folders (pip changes them), keep their
    modification time and size."""
    seconds = BUILD_SECONDS if seconds is None else seconds
    keys = [_cache_key(family, values) for values in configs]
    plan_key = _cache_key(family, configs[0], plan) if plan is not None else None
    wanted = [*keys, *([plan_key] if plan_key else [])]
    known = {key: _cached(cache, key) for key in wanted} if cache else {}
    if cache and all(known[key] is not None for key in wanted):
        return [known[key]["value"] for key in keys], known[plan_key]["value"] if plan_key else None
    answer = _in_child("count_from_stdin", {"family": family, "configs": configs, "plan": plan}, seconds,
                       f"the {family} model took over {seconds:g} s to build without weights; check its sizes "
                       "(layers, widths) in the config")
    for key, value in zip(wanted if cache else [], [*answer["counts"], answer["plan"]]):
        try:
            write_json(cache / f"{key}.json", {"value": value, "sources": answer["sources"]})
        except OSError:
            break  # a full disk or a read-only clone: the answer stands, the next asking recomputes it
    return answer["counts"], answer["plan"]


def cache_folder() -> Path | None:
    """Where this machine keeps the answers of `sizes`, for every lab and clone on it (out of git's reach: they
    hold this machine's memory): ~/.cache/lab/sizes, in the user's cache folder (`lab.records.files.cache_home`);
    None for a user without a home folder (nothing is kept)."""
    try:
        return cache_home() / "lab" / "sizes"
    except RuntimeError:
        return None


def _cache_key(family: str, values: dict, plan: dict | None = None) -> str:
    """A name for one answer: the family and the file that declared it (two labs' families of one name differ),
    the config, the plan asked for, and what decides the device the plan is for (this machine, its visible GPUs,
    PJRT_DEVICE, the Python that runs the family)."""
    where = [socket.gethostname(), sys.executable, *(os.environ.get(name) for name in DEVICE_VARIABLES)]
    text = json.dumps([family, registry.origin(family), values, plan, where], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "PJRT_DEVICE", "TPU_VISIBLE_CHIPS")


def _cached(cache: Path, key: str) -> dict | None:
    """The kept answer named `key` while every source it came from that still exists is unchanged, else None
    (also for an unreadable entry, which the next answer overwrites)."""
    try:
        entry = read_json(cache / f"{key}.json")
        for path, (mtime_ns, size) in entry["sources"].items():
            stat = _stat(path)
            if stat is not None and (stat.st_mtime_ns, stat.st_size) != (mtime_ns, size):
                return None
        return entry if "value" in entry else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stat(path: str) -> os.stat_result | None:
    """`path`'s status, None once it is gone (code generated into a temporary file, as torch.distributed's
    remote module template: a file that no longer exists cannot change the next answer)."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _sources() -> dict[str, list[int]]:
    """[modification time in ns, size in bytes] of each module file this process loaded outside the installed
    packages and the standard library, and of the installed packages' folders (pip adds and removes entries)."""
    paths = sysconfig.get_paths()
    installed = tuple(dict.fromkeys(paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")))
    files = [paths["purelib"], paths["platlib"]]
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and os.path.isabs(path) and not path.startswith(installed):
            files.append(path)
    sources = {}
    for path in dict.fromkeys(files):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        sources[path] = [stat.st_mtime_ns, stat.st_size]
    return sources


def file_settings(family: str, source: str) -> dict[str, str]:
    """The settings without weights that the weights file `source` fixes for its model, as override values
    ({"model.cross_rope": "false"} for Dia-1.6B-0626), from the family's `weights_settings` hook run in a child
    process (it reads the file with torch); {} when the family has no such hook. ConfigError when the file
    cannot be read."""
    if registry.get(family).weights_settings is None:
        return {}
    return _in_child("settings_from_stdin", {"family": family, "source": source}, READ_SECONDS,
                     f"reading {source} took over {READ_SECONDS} s")


READ_SECONDS = 600  # reading a weights file's keys and config (a 6 GB Dia-1.6B file takes seconds)


def _in_child(function: str, request: dict, seconds: float, too_long: str):
    """JSON answer of `lab.runs.sizing.<function>()` run in a child process with `request` (JSON) on stdin, killed after
    `seconds` (ConfigError `too_long`); a child's `lab: error:` line becomes a ConfigError."""
    code = f"from lab.runs.sizing import {function}; {function}()"
    try:
        result = subprocess.run([sys.executable, "-c", code], input=json.dumps(request), capture_output=True,
                                text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise ConfigError(too_long) from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise ConfigError(lines[-1].removeprefix("lab: error: "))
    return json.loads(result.stdout)


def count_from_stdin() -> None:
    """The child of `sizes`: {"family", "configs", "plan"} on stdin, {"counts", "plan"} as JSON on stdout."""
    request = json.load(sys.stdin)
    family, plan = request["family"], request.get("plan")
    try:
        counts = [parameter_count(family, values) for values in request["configs"]]
        spec = registry.get(family)
        if plan is not None and spec.memory_plan is not None:
            config = config_tools.from_dict(spec.config.Config, request["configs"][0])
            plan = spec.memory_plan(spec, config, processes=plan["processes"], device_gb=plan.get("device_gb"))
        else:
            plan = None
    except ConfigError as error:
        say(f"error: {error}")
        raise SystemExit(2) from None
    print(json.dumps({"counts": counts, "plan": plan, "sources": _sources()}))


def settings_from_stdin() -> None:
    """The child of `file_settings`: {"family", "source"} on stdin, the settings as JSON on stdout."""
    request = json.load(sys.stdin)
    try:
        settings = registry.get(request["family"]).weights_settings(request["source"])
    except ConfigError as error:
        say(f"error: {error}")
        raise SystemExit(2) from None
    print(json.dumps(settings))


def model_part(count: int | dict[str, int]) -> int:
    """The model's parameters of a `parameter_count`: the int itself, or the "model" part of a split count."""
    return count["model"] if isinstance(count, dict) else count


def count_text(count: int | dict[str, int]) -> str:
    """'2,155,098', or for a split count '1,012,345 model + 1,142,753 training head'."""
    if isinstance(count, dict):
        return " + ".join(f"{value:,} {name}" for name, value in count.items())
    return f"{count:,}"


def memory_plan(store: Store, family: str, values: dict, processes: int) -> dict | None:
    """The family's memory plan of `values` on `processes` devices (None when it has none), sized against
    `device_memory_gb` of lab.json when set (TPU chips, whose size torch cannot read)."""
    device_gb = store.settings.get("device_memory_gb")
    return sizes(family, [values], plan={"processes": processes, "device_gb": device_gb},
                 cache=cache_folder())[1]


def structural_check(family: str, values: dict, reference: str, reference_values: dict,
                     device_gb: float | None = None, cache: Path | None = None) -> tuple[list[str], list]:
    """Model size against where a new run starts (`reference`), its memory plan on one device (sized against
    `device_gb` when given) and structural smells of its config; `cache` as `sizes`.

    Returns (the lines `lab new-run` prints, the health findings to record).
    """
    from lab.health import rules as health

    (count, reference_count), plan = sizes(family, [values, reference_values],
                                           plan={"processes": 1, "device_gb": device_gb}, cache=cache)
    findings = health.structural_findings(values, model_part(count), model_part(reference_count))
    lines = [f"parameters: {count_text(count)} ({reference}: {count_text(reference_count)})",
             *(plan["lines"] if plan else [])]
    lines += [line for finding in findings
              for line in (f"health [{finding.severity}] {finding.rule}: {finding.message}",
                           f"    suggestion: {finding.suggestion}")]
    return lines, findings
