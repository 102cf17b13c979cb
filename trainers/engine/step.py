"""One optimizer update: gradients accumulated over `train.grad_accum` micro-batches, frozen parameters held
still, the global norm clipped, and the update applied or skipped (a non-finite loss or gradient)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from trainers.engine import sharding
from trainers.engine.device import finish_step, skip_update
from trainers.engine.state import Run
from trainers.engine.tensors import to_host


@dataclass
class StepResult:
    """One optimizer update as seen from the host."""

    loss: float  # mean over micro-batches and processes
    grad_norm: float  # global norm before clipping
    lr: float
    applied: bool  # False when the loss or the gradients were not finite
    metrics: dict[str, float]  # the family's training metrics, averaged over micro-batches


def train_step(run: Run, batches: Iterator[Any]) -> StepResult:
    """Accumulate gradients over `train.grad_accum` micro-batches, clip, and update unless anything is non-finite."""
    losses, metrics = accumulate_gradients(run, batches)
    if frozen_now(run):
        # Frozen parameters keep requires_grad (DDP fixes its gradient hooks when it wraps the model, so releasing
        # them later would leave them unsynchronised); dropping their gradients keeps the optimizer off them.
        for parameter in run.frozen:
            parameter.grad = None
    grad_norm = clip_gradients(run)
    loss = torch.stack(losses).mean()  # ()
    if run.accelerator.num_processes > 1:
        loss = run.accelerator.reduce(loss, reduction="mean")
    host = to_host({"loss": loss, "grad_norm": grad_norm, **mean_metrics(metrics)})
    loss_value, norm_value = host.pop("loss"), host.pop("grad_norm")
    applied = math.isfinite(loss_value) and math.isfinite(norm_value)
    lr = update(run, applied)
    return StepResult(loss_value, norm_value, lr, applied, host)


def accumulate_gradients(run: Run, batches: Iterator[Any]) -> tuple[list[torch.Tensor], list[dict]]:
    """Forward and backward over the update's micro-batches; their losses (scalars, on the device) and metrics."""
    accelerator, model, accumulation = run.accelerator, run.model, run.train_config.grad_accum
    context = run.context
    context.step, context.epoch = run.progress.step, run.progress.epoch
    losses, metrics = [], []
    for micro in range(accumulation):
        batch = next(batches)
        if run.sharded:
            sharding.set_gradient_sync(model, micro == accumulation - 1)
        with accelerator.accumulate(model):
            with accelerator.autocast():
                loss, batch_metrics = run.family.training_loss(model, batch, context)
            accelerator.backward(loss)
        losses.append(loss.detach().float())
        metrics.append(batch_metrics)
    return losses, metrics


def clip_gradients(run: Run) -> torch.Tensor:
    """Clip to `train.grad_clip` (0: no clipping); returns the global norm before clipping (a scalar tensor)."""
    max_norm = run.train_config.grad_clip if run.train_config.grad_clip > 0 else math.inf
    grad_norm = run.accelerator.clip_grad_norm_(run.model.parameters(), max_norm)
    return sharding.full_tensor(grad_norm) if run.sharded else grad_norm  # the whole gradient's, not this shard's


def update(run: Run, applied: bool) -> float:
    """Set the schedule's learning rate and take the optimizer step (or skip it); returns the rate."""
    lr = run.schedule.apply(run.optimizer)
    if applied:
        run.optimizer.step()
        run.schedule.advance()
    else:
        skip_update(run.accelerator)
    run.optimizer.zero_grad(set_to_none=True)
    finish_step(run.accelerator)
    return lr


def frozen_now(run: Run) -> bool:
    """Whether `train.frozen` parameters are held still at the current step."""
    unfreeze_step = run.train_config.unfreeze_step
    return bool(run.frozen) and (unfreeze_step == 0 or run.progress.step < unfreeze_step)


def mean_metrics(rows: list[dict]) -> dict[str, Any]:
    """The family's per-micro-batch training metrics averaged, named `train/<name>`; tensors stay on the device."""
    names = rows[0].keys() if rows else []
    return {(name if "/" in name else f"train/{name}"): sum(row[name] for row in rows) / len(rows) for name in names}
