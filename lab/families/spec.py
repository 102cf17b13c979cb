"""What a model family declares to the notebook and to the engine. Imports no torch.

    SPEC = FamilySpec(name="dia", config=config_module, build_model=Lazy("trainers.dia.family:build_model"), ...)

The notebook reads a spec's torch-free parts (presets, validation, metric directions, health rules, report
panels, commands); the callables that need torch are `Lazy` references resolved on first call, by the engine
or by a family's command, never by a record-only command.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from lab.errors import ConfigError
from lab.records import config as config_tools

DIRECTIONS = ("min", "max")


class Lazy:
    """A function named as 'module:function', imported on first call (keeps torch out of a spec's import)."""

    def __init__(self, target: str):
        self.target = target
        self._function: Callable | None = None

    def resolve(self) -> Callable:
        """The function itself."""
        if self._function is None:
            module, _, name = self.target.partition(":")
            self._function = getattr(importlib.import_module(module), name)
        return self._function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.target!r})"


@dataclass(frozen=True)
class EvalStage:
    """An evaluation with its own cadence: `evaluate(model, batches, ctx) -> {"val/<name>": float}`.

    `every` is a step count or the dotted config key holding one (0 there turns the stage off). The spec's
    main `evaluate` is the stage 'val' every `train.eval_every` steps; extra stages suit costly work
    (generated samples, EER over trial lists).
    """

    name: str
    evaluate: Callable
    every: int | str = "train.eval_every"
    metrics: tuple[str, ...] = ()  # what `evaluate` returns


@dataclass(frozen=True)
class Panel:
    """A report panel: a title and the metrics drawn in it."""

    title: str
    metrics: tuple[str, ...]
    log_scale: bool = False


@dataclass(frozen=True)
class Command:
    """A CLI command a family brings (`lab generate`, `lab embed` ...), shown in `lab --help` only when a family
    that declares it is installed. Several families may declare the same command object; it appears once.

    `arguments(parser)` adds its options (torch-free); `run(args) -> exit status` does the work (a `Lazy`, so
    torch is imported only when the command runs). `example` is one line for the help's epilog.
    """

    name: str
    summary: str
    example: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class FamilySpec:
    """What a family provides to the engine and to the notebook.

    Required: `name`; `config`, its torch-free module holding `Config` (a dataclass with `model`, `data`,
    `optim` and `train` sections), presets as functions in `PRESETS` (`baseline` and `tiny` at least) and
    `PROVENANCE` (`baseline` name, repository, config file); and the four callables

        build_model(config) -> nn.Module
        build_data(config) -> DataBundle                           (trainers.family.context)
        training_loss(model, batch, ctx) -> (loss, metrics)        ctx: trainers.family.context.Context
        evaluate(model, batches, ctx) -> {"val/<name>": float}     (at least `eval_metrics`)

    Optional hooks: `validate(config)` raises ConfigError for mistakes in a config (at `lab new-run`);
    `param_groups(model, config)` returns optimizer groups; `eval_stages` adds evaluations on their own cadence;
    `health_rules` adds rules to the global ones (`lab.health.rules`) and `suggestions` rewrites a global rule's
    suggestion for this family (a function of the config dict); `stage_boundaries(rows, config) -> [(step, what
    changed)]` finds where the family's own schedules start a new stage in a run's metric rows and config dict
    (torch-free; the loss rules judge the last stage, the report marks each in its table and plots);
    `metric_directions` says which metrics are better lower ('min') or higher ('max'); `report_panels` adds
    plots to the training report; `commands` are the family's own CLI commands; `generate`, `profile` and
    `embed` are what those commands call (`generate(model, config, progress=callback(done, total), **request)
    -> (audio, rate)`, also given `data_info`, the recorded training data info, when it takes that keyword).
    `parameter_count(spec, config) -> int | {"model": n, "training head": m}` sizes the model without weights,
    a training-only head apart (run in a child process by `lab new-run`); `memory_plan(spec, config,
    processes, device_gb) -> dict` estimates one device's memory (bytes of weights, gradients, optimizer,
    activations, total, and the `lines` to print; run in that child too), from `activation_bytes(config) ->
    bytes` (one micro-batch's activations, torch-free) and the blocks `shard_modules(model) -> [module or
    (module, method names)]` that `train.parallel=fsdp` shards one by one (the names are methods other than
    forward called from outside the block, which must gather its parameters too); `trainer_command(family,
    config_path, processes, resume) -> argv` starts its trainer (with `nodes`, `node_rank` and `main_address`
    keywords across machines).
    `weights_settings(source) -> {"model.key": "value"}` names the settings without weights that a weights
    file fixes for its model (Dia-1.6B-0626: `model.cross_rope=false`), which `lab new-run --init-from` writes
    into the run's config (run in a child process, as it reads the file with torch).
    `requires` names the modules the family needs at run time and `install` the command that brings them: a
    family whose modules are missing is listed but refused in one line naming that command. `data_paths` names
    the config keys holding input paths, checked before an attempt starts.
    """

    name: str
    config: ModuleType
    build_model: Callable
    build_data: Callable
    training_loss: Callable
    evaluate: Callable
    eval_metrics: tuple[str, ...]
    validate: Callable[[Any], None] | None = None
    param_groups: Callable | None = None
    eval_stages: tuple[EvalStage, ...] = ()
    health_rules: Mapping[str, Callable] = field(default_factory=dict)
    metric_directions: Mapping[str, str | None] = field(default_factory=dict)
    report_panels: tuple[Panel, ...] = ()
    suggestions: Mapping[str, Callable[[dict], str]] = field(default_factory=dict)
    stage_boundaries: Callable[[list, dict], list[tuple[int, str]]] | None = None
    commands: tuple[Command, ...] = ()
    generate: Callable | None = None
    profile: Callable | None = None
    embed: Callable | None = None
    parameter_count: Callable | None = None
    memory_plan: Callable | None = None
    activation_bytes: Callable | None = None
    shard_modules: Callable | None = None
    trainer_command: Callable | None = None
    weights_settings: Callable | None = None
    requires: tuple[str, ...] = ()
    install: str = ""
    data_paths: tuple[str, ...] = ()  # dotted config keys holding input files or folders ('synthetic': none)

    def __post_init__(self) -> None:
        for attribute in ("Config", "PRESETS", "PROVENANCE"):
            if not hasattr(self.config, attribute):
                raise TypeError(f"family {self.name}: its config module has no {attribute}")
        missing = {"baseline", "tiny"} - set(self.config.PRESETS)
        if missing:
            raise TypeError(f"family {self.name}: presets {sorted(missing)} are missing")
        bad = {metric: mode for metric, mode in self.metric_directions.items() if mode not in (*DIRECTIONS, None)}
        if bad:
            raise TypeError(f"family {self.name}: metric directions must be 'min', 'max' or None, got {bad}")

    def missing_data(self, values: dict) -> list[str]:
        """'KEY=VALUE' for each of `data_paths` in a config (nested dicts) naming a file or folder that does not
        exist (relative to the working directory); empty values and 'synthetic' name none."""
        missing = []
        for key in self.data_paths:
            value = config_tools.flatten(values).get(key)
            if isinstance(value, str) and value not in ("", "synthetic") and not Path(value).expanduser().exists():
                missing.append(f"{key}={value}")
        return missing

    # -- configs ---------------------------------------------------------------------------------------

    @property
    def provenance(self) -> dict:
        return dict(self.config.PROVENANCE)

    def presets(self) -> list[str]:
        return sorted(self.config.PRESETS)

    def preset(self, name: str) -> dict:
        """The named preset as plain nested dicts."""
        if name not in self.config.PRESETS:
            raise ConfigError(f"unknown preset {name!r} for {self.name}; presets: {', '.join(self.presets())}")
        return config_tools.to_dict(self.config.PRESETS[name]())

    def build_config(self, values: dict) -> Any:
        """The family's Config dataclass from nested dicts, checked: keys, types and the family's `validate`
        hook (which, for the built-in trainers, includes the engine's limits). Raises ConfigError (one line)."""
        config = config_tools.from_dict(self.config.Config, values)
        if self.validate is not None:
            self.validate(config)
        return config

    def resolve(
        self, *, preset: str | None = None, base: dict | None = None, file_values: dict | None = None,
        overrides: list[str] = (),
    ) -> dict:
        """The one way a config is made, for `lab new-run`, `lab launch` and `python -m trainers` alike:
        `base` (a parent run's config) or the preset (default `baseline`), a JSON file's values merged in
        section by section, then `key=value` overrides; checked by `build_config`, defaults filled in."""
        values = base if base is not None else self.preset(preset or "baseline")
        if file_values:
            values = config_tools.merge(values, file_values)
        values = config_tools.apply_overrides(values, list(overrides))
        return config_tools.to_dict(self.build_config(values))

    # -- what it needs to run ---------------------------------------------------------------------------

    def missing_requirements(self) -> list[str]:
        """The modules of `requires` this environment lacks (found without importing them)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    def check_installed(self) -> None:
        """ConfigError (one line naming what to install) when the family cannot run here."""
        missing = self.missing_requirements()
        if missing:
            hint = f": {self.install}" if self.install else ""
            raise ConfigError(f"the {self.name} family needs {', '.join(missing)}, not installed here{hint}")

    def stages(self) -> tuple[EvalStage, ...]:
        """Every evaluation stage: the main 'val' one first."""
        return (EvalStage("val", self.evaluate, metrics=self.eval_metrics), *self.eval_stages)
