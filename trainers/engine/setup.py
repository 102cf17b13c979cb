"""A run's pieces before its first step, as named steps: the family's model and data, the starting weights
(`train.init_from`), the batches an epoch holds, the model placed (replicated by accelerate, sharded by FSDP2,
or split over an XLA mesh), the optimizer and the schedule, and the frozen parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from lab import tracker
from lab.errors import ConfigError
from lab.families.spec import FamilySpec
from trainers.engine import sharding
from trainers.engine.batches import epoch_batches
from trainers.engine.checkpoints import checkpoint_dir
from trainers.engine.device import seed_everything
from trainers.engine.initial_weights import load_initial_weights
from trainers.engine.optim import LearningRateSchedule, build_optimizer, parameter_groups
from trainers.engine.state import Run
from trainers.family.config import TrainConfig
from trainers.family.context import Context, DataBundle, one_line


def setup(spec: FamilySpec, config: Any, accelerator, out_dir: str | Path | None,
          on_row: Callable[[dict], bool] | None, init: bool = True) -> Run:
    """Build the family's model and data, the optimizer and the schedule, and place them with accelerate.

    With `init`, the model starts from `train.init_from` when that is set. ConfigError (one line) for a model
    or data the family cannot build from `config`, a training set smaller than one batch per process, or
    weights that do not fit.
    """
    train_config = config.train
    seed_everything(train_config.seed)  # the same initial weights (and generated data) on every process
    model, data = build_parts(spec, config)
    if init and train_config.init_from:
        initialise(model, train_config, accelerator.is_main_process)
    per_epoch = batches_per_process(data, train_config, accelerator.num_processes)
    mesh = xla_mesh(train_config, accelerator)
    model, optimizer = place(spec, config, model, accelerator, mesh)
    # looked up after prepare, which replaces the parameters when it moves the model to an XLA device
    frozen = frozen_parameters(accelerator.unwrap_model(model), train_config.frozen)
    folder = checkpoint_dir(spec.name, out_dir)
    context = Context(config=config, max_steps=train_config.max_steps, artefacts=folder.parent,
                      is_main=accelerator.is_main_process, steps_per_epoch=max(1, per_epoch // train_config.grad_accum))
    return Run(family=spec, config=config, accelerator=accelerator, model=model, optimizer=optimizer,
               schedule=LearningRateSchedule(config.optim, train_config.max_steps), data=data, frozen=frozen,
               checkpoints=folder, context=context, on_row=on_row, mesh=mesh)


def build_parts(spec: FamilySpec, config: Any) -> tuple[nn.Module, DataBundle]:
    """The family's model and data bundle; its OSError or ValueError becomes one ConfigError line."""
    try:
        return spec.build_model(config), spec.build_data(config)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{spec.name}: {one_line(error)}") from error


def initialise(model: nn.Module, train_config: TrainConfig, is_main: bool) -> None:
    """Load `train.init_from` into `model` and, on the main process, print and record the key report."""
    report = load_initial_weights(model, train_config.init_from, strict=train_config.init_strict)
    if is_main:
        print(report.describe(), flush=True)
        tracker.event("init_from", **report.to_dict())


def batches_per_process(data: DataBundle, train_config: TrainConfig, processes: int) -> int:
    """Micro-batches in one epoch of each process; ConfigError when there is not even one."""
    count = len(epoch_batches(data, train_config, epoch=0, rank=0, processes=processes))
    if count == 0:
        raise ConfigError(
            f"the training set has {len(data.train)} items, fewer than one batch of train.batch_size="
            f"{train_config.batch_size} for each of {processes} process(es)"
        )
    return count


def xla_mesh(train_config: TrainConfig, accelerator) -> Any:
    """The SPMD mesh of `train.parallel=fsdp` on XLA (None otherwise); its global batch must divide over it."""
    if train_config.parallel != "fsdp" or accelerator.device.type != "xla":
        return None
    mesh = sharding.xla_mesh()
    if train_config.batch_size % mesh.size():
        raise ConfigError(f"train.batch_size={train_config.batch_size} is the global batch of an XLA fsdp run and "
                          f"must divide over its {mesh.size()} devices")
    return mesh


def place(spec: FamilySpec, config: Any, model: nn.Module, accelerator, mesh) -> tuple[nn.Module, Any]:
    """The model on its device(s) with its optimizer: FSDP2-sharded before the optimizer is built
    (`train.parallel=fsdp` off XLA), else prepared by accelerate, and split over `mesh` on XLA."""
    fully_sharded = config.train.parallel == "fsdp" and accelerator.device.type != "xla"  # FSDP2
    if fully_sharded:
        model = sharding.shard(model, spec.shard_modules(model) if spec.shard_modules else [], accelerator.device)
    groups = spec.param_groups(model, config) if spec.param_groups else parameter_groups(model, config.optim)
    optimizer = build_optimizer(groups, config.optim)
    if fully_sharded:
        optimizer = accelerator.prepare(optimizer)  # the loss scale and accumulation; the model is already placed
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    if mesh is not None:
        sharding.shard_xla(accelerator.unwrap_model(model), mesh)
    return model, optimizer


def frozen_parameters(model: nn.Module, prefixes: list[str]) -> list[nn.Parameter]:
    """The parameters whose names start with one of `prefixes`; a prefix matching nothing is a ConfigError."""
    named = list(model.named_parameters())
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name, _ in named):
            tops = sorted({name.split(".")[0] for name, _ in named})
            raise ConfigError(
                f"train.frozen prefix {prefix!r} matches no parameter; top-level names: {', '.join(tops)}"
            )
    return [parameter for name, parameter in named if name.startswith(tuple(prefixes))]
