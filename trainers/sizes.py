"""Model sizes without weights: a family's model built on the meta device (the `parameter_count` hook)."""

from __future__ import annotations

from typing import Any

import torch

from lab.errors import ConfigError
from lab.families.spec import FamilySpec


def parameter_count(spec: FamilySpec, config: Any) -> int:
    """Parameters of `spec`'s model for `config`, built on the meta device (no memory, no weights).

    ConfigError (one line) when the model cannot be built from the config.
    """
    try:
        with torch.device("meta"):
            model = spec.build_model(config)
    except (ValueError, RuntimeError, TypeError) as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"the {spec.name} model cannot be built from this config: {reason}") from None
    return sum(parameter.numel() for parameter in model.parameters())
