"""Model sizes without weights: a family's model built on the meta device (the `parameter_count` hook)."""

from __future__ import annotations

from typing import Any

import torch

from lab.errors import ConfigError
from lab.families.spec import FamilySpec


def parameter_count(spec: FamilySpec, config: Any) -> int | dict[str, int]:
    """Parameters of `spec`'s model for `config`, built on the meta device (no memory, no weights).

    A model whose `training_only` attribute names submodules used only by the training loss (ReDimNet's AAM
    head over the training speakers) is counted apart, as the originals publish their sizes:
    {"model": parameters without them, "training head": theirs}; any other model gives one int.
    ConfigError (one line) when the model cannot be built from the config.
    """
    try:
        with torch.device("meta"):
            model = spec.build_model(config)
    except (ValueError, RuntimeError, TypeError) as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"the {spec.name} model cannot be built from this config: {reason}") from None
    total = sum(parameter.numel() for parameter in model.parameters())
    names = getattr(model, "training_only", ())
    if not names:
        return total
    head = sum(parameter.numel() for name in names for parameter in getattr(model, name).parameters())
    return {"model": total - head, "training head": head}
