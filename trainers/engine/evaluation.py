"""Evaluations: which stages are due at a step, their metrics (computed on the main process and shared), and
the best value of `train.best_metric` tracked on the actual metric."""

from __future__ import annotations

import math

import torch

from lab.errors import ConfigError
from lab.families.spec import EvalStage
from trainers.engine.batches import validation_batches
from trainers.engine.state import Run
from trainers.family.spec import stage_interval


def due_stages(run: Run, final: bool = False) -> list[EvalStage]:
    """The evaluation stages due at the current step: each on its own cadence; every enabled stage at the first
    evaluation (so a misnamed best metric fails early) and at the end (`final`)."""
    step, first = run.progress.step, run.train_config.eval_every
    due = []
    for stage in run.family.stages():
        every = stage_interval(stage, run.config)
        if every > 0 and (final or step == first or step % every == 0):
            due.append(stage)
    return due


def evaluate(run: Run, stages: list[EvalStage]) -> dict[str, float]:
    """The metrics of `stages`, computed on the main process and shared with the others (a sharded model needs
    every process in its forward: each computes them)."""
    accelerator = run.accelerator
    metrics = None
    if run.is_main or run.sharded:
        model = accelerator.unwrap_model(run.model)
        context = run.context
        context.step, context.epoch = run.progress.step, run.progress.epoch
        model.eval()
        metrics = {}
        try:
            with torch.no_grad(), accelerator.autocast():
                for stage in stages:
                    metrics.update(stage.evaluate(model, validation_batches(run), context))
        finally:
            model.train()
        metrics = {name: float(value) for name, value in metrics.items()}
    if accelerator.num_processes > 1 and not run.sharded:
        from accelerate.utils import broadcast_object_list

        metrics = broadcast_object_list([metrics])[0]
    return metrics


def judge_best(run: Run, metrics: dict[str, float], stages: list[EvalStage]) -> bool:
    """Track the best metric when this evaluation computed it (or ran every enabled stage, so that a best metric
    no stage reports fails), and tell the schedule; True when it improved."""
    every_stage = len(stages) == sum(stage_interval(stage, run.config) > 0 for stage in run.family.stages())
    if run.train_config.best_metric not in metrics and not every_stage:
        return False
    improved = track_best(run, metrics)
    run.schedule.observe(improved)
    return improved


def track_best(run: Run, metrics: dict[str, float]) -> bool:
    """Compare the actual value of `train.best_metric` with the best so far; True when it improved."""
    name, mode = run.train_config.best_metric, run.train_config.best_mode
    if name not in metrics:
        raise ConfigError(
            f"train.best_metric {name!r} is not an evaluation metric; the family reports: {', '.join(sorted(metrics))}"
        )
    value, progress = metrics[name], run.progress
    best = progress.best_value
    improved = math.isfinite(value) and (best is None or (value < best if mode == "min" else value > best))
    if improved:
        progress.best_value, progress.best_step, progress.evaluations_since_best = value, progress.step, 0
    else:
        progress.evaluations_since_best += 1
    return improved
