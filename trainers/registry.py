"""The families the lab knows, each described by a `FamilySpec`. Imports no torch.

    from trainers import registry
    spec = registry.get("neural_decoder")
    values = spec.resolve(preset="tiny", overrides=["optim.lr=1e-3"])   # one config path for every caller

A family is a package `trainers/<name>/` whose `__init__.py` exports `SPEC = FamilySpec(...)`; it is found
without being listed anywhere. A family outside this package is named in the environment variable
`LAB_FAMILY_MODULES` (comma-separated modules exporting `SPEC`), or registered in-process with `register`.
The spec's callables that need torch are `Lazy` references, so reading a spec (presets, validation, health
rules, metric directions) never imports torch.
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Callable, Mapping

from lab import config as config_tools
from lab.config import ConfigError
from lab.health import RULES, Rule

FAMILY_MODULES_VARIABLE = "LAB_FAMILY_MODULES"
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
class FamilySpec:
    """What a family provides to the engine and to the notebook.

    Required: `name`; `config`, its torch-free module holding `Config` (a dataclass with `model`, `data`,
    `optim` and `train` sections), presets as functions in `PRESETS` (`baseline` and `tiny` at least) and
    `PROVENANCE` (`baseline` name, repository, config file); and the four callables

        build_model(config) -> nn.Module
        build_data(config) -> DataBundle                           (trainers.family)
        training_loss(model, batch, ctx) -> (loss, metrics)        ctx: trainers.family.Context
        evaluate(model, batches, ctx) -> {"val/<name>": float}     (at least `eval_metrics`)

    Optional hooks: `validate(config)` raises ConfigError for family-level mistakes, at `lab new-run`;
    `param_groups(model, config)` returns optimizer groups (each with its own `lr` if it wants one);
    `eval_stages` adds evaluations on their own cadence; `health_rules` adds rules to the global ones
    (`lab.health`) and `suggestions` rewrites a global rule's suggestion for this family (a function of the
    config dict); `metric_directions` says which metrics are better lower ('min') or higher ('max');
    `report_panels` adds plots to the training report. Behind commands: `generate(model, config, **request)
    -> (audio (C, N), rate)` for `lab generate`, and `profile(model, batch, ctx) -> {component: MiB}` for
    `lab profile`, and `embed(model, config, paths) -> (N, D) tensor` for `lab embed`.
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
    health_rules: Mapping[str, Rule] = field(default_factory=dict)
    metric_directions: Mapping[str, str] = field(default_factory=dict)
    report_panels: tuple[Panel, ...] = ()
    suggestions: Mapping[str, Callable[[dict], str]] = field(default_factory=dict)
    generate: Callable | None = None
    profile: Callable | None = None
    embed: Callable | None = None

    def __post_init__(self) -> None:
        for attribute in ("Config", "PRESETS", "PROVENANCE"):
            if not hasattr(self.config, attribute):
                raise TypeError(f"family {self.name}: its config module has no {attribute}")
        missing = {"baseline", "tiny"} - set(self.config.PRESETS)
        if missing:
            raise TypeError(f"family {self.name}: presets {sorted(missing)} are missing")
        clashes = set(self.health_rules) & set(RULES)
        if clashes:
            raise TypeError(f"family {self.name}: health rules {sorted(clashes)} clash with the global rules")
        bad = {metric: mode for metric, mode in self.metric_directions.items() if mode not in (*DIRECTIONS, None)}
        if bad:
            raise TypeError(f"family {self.name}: metric directions must be 'min', 'max' or None, got {bad}")

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
        """The family's Config dataclass from nested dicts, checked: keys, types, the engine's limits, the
        device and precision, and the family's own `validate` hook. Raises ConfigError (one line)."""
        from trainers.config import validate

        config = config_tools.from_dict(self.config.Config, values)
        validate(config.optim, config.train, rules=self.rules())
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

    # -- evaluation and health -------------------------------------------------------------------------

    def stages(self) -> tuple[EvalStage, ...]:
        """Every evaluation stage: the main 'val' one first."""
        return (EvalStage("val", self.evaluate, metrics=self.eval_metrics), *self.eval_stages)

    def rules(self) -> dict[str, Rule]:
        """The global health rules (with the family's suggestions) and the family's own."""
        rules = {name: with_suggestion(rule, self.suggestions[name]) if name in self.suggestions else rule
                 for name, rule in RULES.items()}
        return {**rules, **self.health_rules}


def with_suggestion(rule: Rule, suggest: Callable[[dict], str]) -> Rule:
    """`rule` whose findings carry `suggest(config)` as their suggestion."""

    def suggested(rows: list, config: dict) -> list:
        return [replace(finding, suggestion=suggest(config)) for finding in rule(rows, config)]

    suggested.on_evaluation = getattr(rule, "on_evaluation", False)
    suggested.__doc__ = rule.__doc__
    return suggested


def stage_interval(stage: EvalStage, config: Any) -> int:
    """Steps between runs of `stage` under `config` (0: never)."""
    if isinstance(stage.every, int):
        return stage.every
    node = config
    for part in stage.every.split("."):
        node = getattr(node, part)
    if not isinstance(node, int) or isinstance(node, bool) or node < 0 or not math.isfinite(node):
        raise ConfigError(f"{stage.every}={node!r} must be a whole number of steps (0 turns {stage.name} off)")
    return node


# -- the registry ------------------------------------------------------------------------------------------

_registered: dict[str, FamilySpec] = {}
_discovered = False


def register(spec: FamilySpec) -> FamilySpec:
    """Make `spec` known by its name (replacing an earlier spec of that name); returns it."""
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"register takes a FamilySpec, got {type(spec).__name__}")
    _registered[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget the family `name` (tests register toy families for their own duration)."""
    _registered.pop(name, None)


def _spec_of(module_name: str) -> FamilySpec | None:
    module = importlib.import_module(module_name)
    spec = getattr(module, "SPEC", None)
    return spec if isinstance(spec, FamilySpec) else None


def _discover() -> None:
    """Register the families of this package and of LAB_FAMILY_MODULES (once per process)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import trainers

    names = [f"trainers.{info.name}" for info in pkgutil.iter_modules(trainers.__path__) if info.ispkg]
    extra = [name.strip() for name in os.environ.get(FAMILY_MODULES_VARIABLE, "").split(",") if name.strip()]
    for module_name in names + extra:
        try:
            spec = _spec_of(module_name)
        except ImportError as error:
            if module_name in extra:
                raise ConfigError(f"{FAMILY_MODULES_VARIABLE} names {module_name!r}, which does not import: "
                                  f"{error}") from None
            raise
        if spec is None and module_name in extra:
            raise ConfigError(f"{FAMILY_MODULES_VARIABLE} names {module_name!r}, which has no SPEC = FamilySpec(...)")
        if spec is not None:
            _registered.setdefault(spec.name, spec)


def known() -> list[str]:
    """Names of every known family."""
    _discover()
    return sorted(_registered)


def get(name: str) -> FamilySpec:
    """The spec of family `name`, or ConfigError naming the known families."""
    _discover()
    if name not in _registered:
        raise ConfigError(f"unknown family {name!r}; known families: {', '.join(known())}")
    return _registered[name]
