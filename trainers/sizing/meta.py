"""Model sizes without weights: a family's model built on the meta device (the `parameter_count` and
`memory_plan` hooks)."""

from __future__ import annotations

import os
from typing import Any

import torch

from lab.errors import ConfigError
from lab.families.spec import FamilySpec
from trainers.sizing import plan as plan_tools


def meta_model(spec: FamilySpec, config: Any) -> torch.nn.Module:
    """`spec`'s model for `config` on the meta device (no memory, no weights); ConfigError (one line) when the
    model cannot be built from the config."""
    try:
        with torch.device("meta"):
            return spec.build_model(config)
    except (ValueError, RuntimeError, TypeError) as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"the {spec.name} model cannot be built from this config: {reason}") from None


def parameter_count(spec: FamilySpec, config: Any) -> int | dict[str, int]:
    """Parameters of `spec`'s model for `config`, built on the meta device (ConfigError as `meta_model`).

    A model whose `training_only` attribute names submodules used only by the training loss (ReDimNet's AAM
    head over the training speakers) is counted apart, as the originals publish their sizes:
    {"model": parameters without them, "training head": theirs}; any other model gives one int.
    """
    model = meta_model(spec, config)
    total = sum(parameter.numel() for parameter in model.parameters())
    names = getattr(model, "training_only", ())
    if not names:
        return total
    head = sum(parameter.numel() for name in names for parameter in getattr(model, name).parameters())
    return {"model": total - head, "training head": head}


def memory_plan(spec: FamilySpec, config: Any, processes: int = 1, device_gb: float | None = None) -> dict:
    """The memory plan (`trainers.sizing.plan`) of training `spec`'s model with `config` on `processes` devices,
    with the lines to print (`lines`) and the device's size (`device_bytes`: `device_gb` when given, else CUDA's total
    memory or the host's RAM; unknown on XLA). ConfigError (one line) when the model cannot be built."""
    from trainers.engine.device import resolve_device

    model = meta_model(spec, config)
    train = config.train
    parameters = sum(parameter.numel() for parameter in model.parameters())
    frozen = tuple(train.frozen) if train.frozen and train.unfreeze_step == 0 else ()
    trainable = sum(parameter.numel() for name, parameter in model.named_parameters()
                    if not (frozen and name.startswith(frozen)))
    blocks = [unit[0] if isinstance(unit, tuple) else unit for unit in spec.shard_modules(model)] \
        if spec.shard_modules else []
    plan = plan_tools.memory_plan(
        parameters=parameters, trainable=trainable, optimizer=config.optim.name, parallel=train.parallel,
        processes=processes, largest_block=largest_unit(model, blocks),
        activation_bytes=spec.activation_bytes(config) if spec.activation_bytes else None)
    try:
        device = resolve_device(train.device)
    except ConfigError:
        device = train.device  # planned on a machine without that device
    device_bytes = device_gb * 1e9 if device_gb else device_size(device)
    return {**plan, "device": device, "device_bytes": device_bytes,
            "lines": plan_tools.describe(plan, device_bytes, device)}


def largest_unit(model: torch.nn.Module, blocks: list[torch.nn.Module]) -> int:
    """Parameters of the largest unit FSDP gathers at once: each block owns its parameters but those of the
    blocks inside it, and the root owns what no block does."""
    owner: dict[int, int] = {}
    units = sorted({id(block): block for block in [*blocks, model]}.values(),
                   key=lambda block: sum(parameter.numel() for parameter in block.parameters()))
    sizes = [0] * len(units)
    for index, unit in enumerate(units):
        for parameter in unit.parameters():
            if id(parameter) not in owner:
                owner[id(parameter)] = index
                sizes[index] += parameter.numel()
    return max(sizes)


def device_size(device: str) -> float | None:
    """Bytes of memory of one `device`: CUDA's first device, the host's RAM for the CPU, None for XLA."""
    if device == "cuda":
        return float(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else None
    if device == "cpu":
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return None
