"""How the built-in families declare themselves to the lab: `family_spec(...)` is `lab.families.spec.FamilySpec`
with what every family trained on this engine shares filled in. Imports no torch.

    SPEC = family_spec(name="dia", config=config, build_model=Lazy("trainers.dia.family:build_model"), ...)

Filled in: the engine's own config checks before the family's `validate` (`trainers.family.config.validate`,
with the family's health rules for `train.stop_on`), parameter counting and the memory plan on the meta device
(`trainers.sizing.meta`), the settings a weights file fixes (`trainers.formats.weights`), the trainer's command
line (`trainers.family.launch`), and the modules the engine needs with the extra that installs them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from lab.errors import ConfigError
from lab.families.spec import EvalStage, FamilySpec, Lazy

REQUIRES = ("torch", "torchaudio", "accelerate")
INSTALL = "pip install 'lab[trainers]'"


def family_spec(*, validate: Callable[[Any], None] | None = None, **fields: Any) -> FamilySpec:
    """A FamilySpec for a family trained by this engine (fields as FamilySpec's); `validate` runs after the
    engine's checks."""
    spec: FamilySpec | None = None

    def checked(config: Any) -> None:
        from lab.health.diagnosis import rules_for
        from trainers.family.config import validate as engine_validate

        engine_validate(config.optim, config.train, rules=rules_for(spec))
        if validate is not None:
            validate(config)

    fields.setdefault("parameter_count", Lazy("trainers.sizing.meta:parameter_count"))
    fields.setdefault("weights_settings", Lazy("trainers.formats.weights:file_settings"))
    fields.setdefault("memory_plan", Lazy("trainers.sizing.meta:memory_plan"))
    fields.setdefault("trainer_command", Lazy("trainers.family.launch:launch_command"))
    fields.setdefault("requires", REQUIRES)
    fields.setdefault("install", INSTALL)
    spec = FamilySpec(validate=checked, **fields)
    return spec


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
