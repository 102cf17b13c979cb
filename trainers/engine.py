"""The training loop every family shares.

    summary = train("neural_decoder", config)            # config: the family's Config dataclass

A family's spec (trainers/registry.py) provides the model, the data, the loss and the evaluations, and
optionally parameter groups; the engine owns everything else: devices and processes (accelerate, or XLA),
sharding (`train.parallel=fsdp`, trainers/sharding.py),
mixed precision, gradient accumulation, the optimizer, the learning-rate schedule, gradient clipping,
skipping non-finite updates, staged freezing, starting from given weights (`train.init_from`), evaluation
stages on their own cadence, best and last checkpoints, early stopping, exact resume, and the metrics sent to
the lab tracker.

Metrics, from the main process only: every step `train/loss` (mean over the update's micro-batches and
processes), `train/grad_norm` (global norm before clipping), `train/lr`, `train/skipped_steps` (cumulative) and
the family's training metrics (`train/<name>`); every `train.log_every` steps also `train/samples_per_s` and
`train/peak_mem_mb`; every evaluation the family's `val/...` metrics.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from lab import tracker
from lab.errors import ConfigError
from lab.families import registry
from lab.families.spec import EvalStage, FamilySpec
from lab.records.config import to_dict
from trainers import checkpoint, sharding
from trainers.config import TrainConfig
from trainers.device import (
    any_process,
    create_accelerator,
    finish_step,
    peak_memory_mb,
    seed_everything,
    skip_update,
)
from trainers.family import Context, DataBundle, one_line
from trainers.optim import LearningRateSchedule, build_optimizer, parameter_groups
from trainers.spec import stage_interval
from trainers.tensors import map_tensors

CHECKPOINT_FORMAT = 1


@dataclass
class Progress:
    """Where training stands: what an exact resume needs besides weights, optimizer, schedule and generators."""

    step: int = 0  # updates attempted, applied or skipped
    epoch: int = 0
    position: int = 0  # micro-batches of `epoch` this process has consumed
    skipped_steps: int = 0
    best_value: float | None = None
    best_step: int | None = None
    evaluations_since_best: int = 0
    last_loss: float | None = None  # the latest finite training loss


@dataclass
class Run:
    """The pieces of one training run that the loop's functions share."""

    family: FamilySpec
    config: Any
    accelerator: Any
    model: nn.Module  # as prepared by accelerate (wrapped for multi-process runs), or sharded (train.parallel=fsdp)
    optimizer: Any
    schedule: LearningRateSchedule
    data: DataBundle
    frozen: list[nn.Parameter]
    checkpoints: Path
    context: Context
    on_row: Callable[[dict], bool] | None
    progress: Progress = field(default_factory=Progress)
    last_metrics: dict[str, float] = field(default_factory=dict)
    stop_requested: bool = False
    writer: checkpoint.BackgroundWriter = field(default_factory=checkpoint.BackgroundWriter)
    mesh: Any = None  # the SPMD mesh of train.parallel=fsdp on XLA

    @property
    def family_name(self) -> str:
        return self.family.name

    @property
    def train_config(self) -> TrainConfig:
        return self.config.train

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def sharded(self) -> bool:
        """Whether the model is sharded by FSDP2 (on XLA, SPMD needs none of its collectives)."""
        return self.train_config.parallel == "fsdp" and self.mesh is None


@dataclass
class StepResult:
    """One optimizer update as seen from the host."""

    loss: float  # mean over micro-batches and processes
    grad_norm: float  # global norm before clipping
    lr: float
    applied: bool  # False when the loss or the gradients were not finite
    metrics: dict[str, float]  # the family's training metrics, averaged over micro-batches


@dataclass
class Throughput:
    """Time spent in training steps (evaluation and checkpoints excluded), overall and since the last report."""

    samples_per_step: int
    seconds: float = 0.0
    steps: int = 0
    window_seconds: float = 0.0
    window_steps: int = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.steps += 1
        self.window_seconds += seconds
        self.window_steps += 1

    def overall(self) -> float:
        """Samples per second over the whole run."""
        return self.steps * self.samples_per_step / self.seconds if self.seconds else 0.0

    def take_window(self) -> float:
        """Samples per second since the previous call."""
        rate = self.window_steps * self.samples_per_step / self.window_seconds if self.window_seconds else 0.0
        self.window_seconds, self.window_steps = 0.0, 0
        return rate


def train(
    family: str | FamilySpec,
    config: Any,
    *,
    resume: str | Path | None = None,
    out_dir: str | Path | None = None,
    on_row: Callable[[dict], bool] | None = None,
) -> dict:
    """Train `family` (a registered name or a spec) with `config` (its Config dataclass); returns the summary.

    `resume` continues exactly from a checkpoint written by this engine; otherwise `train.init_from` names
    the weights to start from. Checkpoints go to the lab attempt's
    artefacts, else to `out_dir/checkpoints` (default artefacts/standalone/<family>). `on_row` receives every
    logged row `{"step": ..., **metrics}` on the main process and returns True to stop the run.
    Raises ConfigError (one line) for a config, data file or checkpoint the engine cannot use.
    """
    started = time.perf_counter()
    spec = family if isinstance(family, FamilySpec) else registry.get(family)
    spec.build_config(to_dict(config))
    accelerator = create_accelerator(config.train)
    run = assemble(spec, config, accelerator, out_dir, on_row, init=resume is None)
    if resume is not None:
        restore(run, checkpoint.load(resume))
    else:
        seed_everything(config.train.seed, per_process=True)
    try:
        throughput, stop_reason = loop(run)
    except BaseException:
        with contextlib.suppress(Exception):
            run.writer.wait()  # the checkpoint in flight lands whole; the run's own error is the one raised
        raise
    run.writer.wait()
    summary = summarise(run, throughput, stop_reason, time.perf_counter() - started)
    if run.is_main:
        tracker.summary(**summary)
    if run.sharded:
        sharding.finish()
    if accelerator.num_processes == 1:
        # A multi-process run keeps its process group until the process leaves (trainers.__main__.leave):
        # destroyed here, its last reference would go with DDP's reducer, whose release can hang in gloo.
        accelerator.end_training()
    return summary


def assemble(spec: FamilySpec, config: Any, accelerator, out_dir, on_row, init: bool = True) -> Run:
    """Build the family's model and data, the optimizer and the schedule, and place them with accelerate.

    With `init`, the model starts from `train.init_from` when that is set.
    """
    seed_everything(config.train.seed)  # the same initial weights (and generated data) on every process
    try:
        model = spec.build_model(config)
        data = spec.build_data(config)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{spec.name}: {one_line(error)}") from error
    train_config = config.train
    if init and train_config.init_from:
        report = checkpoint.load_initial_weights(model, train_config.init_from, strict=train_config.init_strict)
        if accelerator.is_main_process:
            print(report.describe(), flush=True)
            tracker.event("init_from", **report.to_dict())
    per_epoch = len(epoch_batches(data, train_config, epoch=0, rank=0, processes=accelerator.num_processes))
    if per_epoch == 0:
        raise ConfigError(
            f"the training set has {len(data.train)} items, fewer than one batch of train.batch_size="
            f"{train_config.batch_size} for each of {accelerator.num_processes} process(es)"
        )
    xla = accelerator.device.type == "xla"
    mesh = sharding.xla_mesh() if train_config.parallel == "fsdp" and xla else None  # SPMD
    fully_sharded = train_config.parallel == "fsdp" and not xla  # FSDP2
    if mesh is not None and train_config.batch_size % mesh.size():
        raise ConfigError(f"train.batch_size={train_config.batch_size} is the global batch of an XLA fsdp run and "
                          f"must divide over its {mesh.size()} devices")
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
    # looked up after prepare, which replaces the parameters when it moves the model to an XLA device
    frozen = frozen_parameters(accelerator.unwrap_model(model), train_config.frozen)
    folder = checkpoint.checkpoint_dir(spec.name, out_dir)
    return Run(
        family=spec,
        config=config,
        accelerator=accelerator,
        model=model,
        optimizer=optimizer,
        schedule=LearningRateSchedule(config.optim, train_config.max_steps),
        data=data,
        frozen=frozen,
        checkpoints=folder,
        context=Context(config=config, max_steps=train_config.max_steps, artefacts=folder.parent,
                        is_main=accelerator.is_main_process,
                        steps_per_epoch=max(1, per_epoch // train_config.grad_accum)),
        on_row=on_row,
        mesh=mesh,
    )


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


# Data order ---------------------------------------------------------------------------------------------------


def batches_per_epoch(items: int, batch_size: int, processes: int) -> int:
    """Full micro-batches each process gets in an epoch (the remainder of the permutation is dropped)."""
    return items // (batch_size * processes)


def shuffled_batches(
    dataset: Any, batch_size: int, seed: int, epoch: int, rank: int, processes: int
) -> list[list[int]]:
    """The default order: one process's full index batches of a permutation that depends on (seed, epoch) only.

    The permutation is dealt out to the processes in turn and cut into full batches.
    """
    items = len(dataset)
    count = batches_per_epoch(items, batch_size, processes)
    permutation = np.random.default_rng([seed, epoch]).permutation(items)  # (items,)
    indices = permutation[: count * batch_size * processes][rank::processes]  # (count * batch_size,)
    return [indices[batch * batch_size : (batch + 1) * batch_size].tolist() for batch in range(count)]


def epoch_batches(
    data: DataBundle, train_config: TrainConfig, epoch: int, rank: int, processes: int
) -> list[list[int]]:
    """This process's training batches for `epoch`: the family's batch sampler, else `shuffled_batches`."""
    sampler = data.batch_sampler or shuffled_batches
    return sampler(data.train, train_config.batch_size, train_config.seed, epoch, rank, processes)


class ResumableOrder(Sampler):
    """An epoch's index batches from batch `start` on (a resumed run skips what it has consumed)."""

    def __init__(self, batches: list[list[int]], start: int):
        self.batches = batches[start:]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor inside (nested dicts, lists, tuples) moved to `device`."""
    return map_tensors(batch, lambda tensor: tensor.to(device))


def micro_batches(run: Run) -> Iterator[Any]:
    """Training micro-batches on the device, epoch after epoch, keeping `run.progress.epoch/position` current."""
    progress, train_config, accelerator = run.progress, run.train_config, run.accelerator
    while True:
        batches = epoch_batches(run.data, train_config, progress.epoch, accelerator.process_index,
                                accelerator.num_processes)
        order = ResumableOrder(batches, start=progress.position)
        # A private generator: creating the loader's iterator must not draw from torch's global RNG.
        entropy = [train_config.seed, progress.epoch, accelerator.process_index]
        generator = torch.Generator().manual_seed(int(np.random.default_rng(entropy).integers(2**62)))
        loader = DataLoader(
            run.data.train, batch_sampler=order, collate_fn=run.data.collate,
            num_workers=train_config.num_workers, generator=generator,
        )
        for batch in loader:
            progress.position += 1
            batch = to_device(batch, accelerator.device)
            yield batch if run.mesh is None else sharding.split_batch(batch, run.mesh)
        progress.epoch += 1
        progress.position = 0


def validation_batches(run: Run) -> Iterator[Any]:
    """The validation set in its stored order, batched by the bundle's validation batch size and collate."""
    train_config, data = run.train_config, run.data
    loader = DataLoader(
        data.val, batch_size=data.val_batch_size or train_config.batch_size, shuffle=False,
        collate_fn=data.val_collate or data.collate, num_workers=train_config.num_workers,
        generator=torch.Generator().manual_seed(train_config.seed),
    )
    return (to_device(batch, run.accelerator.device) for batch in loader)


# One update ---------------------------------------------------------------------------------------------------


def train_step(run: Run, batches: Iterator[Any]) -> StepResult:
    """Accumulate gradients over `train.grad_accum` micro-batches, clip, and update unless anything is non-finite."""
    accelerator, model, optimizer, train_config = run.accelerator, run.model, run.optimizer, run.train_config
    losses, metrics = [], []
    context = run.context
    context.step, context.epoch = run.progress.step, run.progress.epoch
    for micro in range(train_config.grad_accum):
        batch = next(batches)
        if run.sharded:
            sharding.set_gradient_sync(model, micro == train_config.grad_accum - 1)
        with accelerator.accumulate(model):
            with accelerator.autocast():
                loss, batch_metrics = run.family.training_loss(model, batch, context)
            accelerator.backward(loss)
        losses.append(loss.detach().float())
        metrics.append(batch_metrics)
    if frozen_now(run):
        # Frozen parameters keep requires_grad (DDP fixes its gradient hooks when it wraps the model, so releasing
        # them later would leave them unsynchronised); dropping their gradients keeps the optimizer off them.
        for parameter in run.frozen:
            parameter.grad = None
    max_norm = train_config.grad_clip if train_config.grad_clip > 0 else math.inf
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)  # the norm before clipping
    if run.sharded:
        grad_norm = sharding.full_tensor(grad_norm)  # the norm of the whole gradient, not of this shard
    loss = torch.stack(losses).mean()
    if accelerator.num_processes > 1:
        loss = accelerator.reduce(loss, reduction="mean")
    host = to_host({"loss": loss, "grad_norm": grad_norm, **mean_metrics(metrics)})
    loss_value, norm_value = host.pop("loss"), host.pop("grad_norm")
    applied = math.isfinite(loss_value) and math.isfinite(norm_value)
    lr = run.schedule.apply(optimizer)
    if applied:
        optimizer.step()
        run.schedule.advance()
    else:
        skip_update(accelerator)
    optimizer.zero_grad(set_to_none=True)
    finish_step(accelerator)
    return StepResult(loss_value, norm_value, lr, applied, host)


def frozen_now(run: Run) -> bool:
    """Whether `train.frozen` parameters are held still at the current step."""
    unfreeze_step = run.train_config.unfreeze_step
    return bool(run.frozen) and (unfreeze_step == 0 or run.progress.step < unfreeze_step)


def mean_metrics(rows: list[dict]) -> dict[str, Any]:
    """The family's per-micro-batch training metrics averaged, named `train/<name>`; tensors stay on the device."""
    names = rows[0].keys() if rows else []
    return {(name if "/" in name else f"train/{name}"): sum(row[name] for row in rows) / len(rows) for name in names}


def to_host(values: dict[str, Any]) -> dict[str, float]:
    """`values` as floats; its tensors (scalars) are copied to the host together, in one transfer."""
    tensors = {name: value for name, value in values.items() if isinstance(value, torch.Tensor)}
    host = {}
    if tensors:
        device = next(iter(tensors.values())).device
        stacked = torch.stack([value.detach().float().reshape(()).to(device) for value in tensors.values()])
        host = dict(zip(tensors, stacked.tolist()))
    return {name: host[name] if name in host else float(value) for name, value in values.items()}


# The loop -----------------------------------------------------------------------------------------------------


PROGRESS_SECONDS = 10.0  # without a terminal (under `lab launch`), a progress line at most this often


def loop(run: Run) -> tuple[Throughput, str]:
    """Train until max_steps, early stopping or a stop from `on_row`; returns the throughput and the reason."""
    train_config, progress, accelerator = run.train_config, run.progress, run.accelerator
    throughput = Throughput(train_config.batch_size * train_config.grad_accum * accelerator.num_processes)
    batches = micro_batches(run)
    bar = tqdm(
        total=train_config.max_steps, initial=progress.step, desc=run.family_name, unit="step",
        disable=not (run.is_main and sys.stderr.isatty()), dynamic_ncols=True,
    )
    printed = None  # when the last progress line went out (no terminal: plain lines instead of the bar)
    run.model.train()
    stop_reason, evaluated_step = "max_steps", None
    while progress.step < train_config.max_steps:
        began = time.perf_counter()
        result = train_step(run, batches)
        progress.step += 1
        row = step_row(run, result)
        throughput.add(time.perf_counter() - began)
        if progress.step % train_config.log_every == 0 or progress.step == train_config.max_steps:
            row["train/samples_per_s"] = throughput.take_window()
            row["train/peak_mem_mb"] = peak_memory_mb(accelerator)
            bar.set_postfix(loss=f"{result.loss:.4g}", lr=f"{result.lr:.3g}", refresh=False)
            if bar.disable and run.is_main and (printed is None or time.monotonic() - printed >= PROGRESS_SECONDS):
                printed = time.monotonic()
                print(f"{run.family_name}: step {progress.step}/{train_config.max_steps}, loss {result.loss:.4g}, "
                      f"lr {result.lr:.3g}, {row['train/samples_per_s']:.4g} samples/s", flush=True)
        report(run, row)
        bar.update(1)
        stages = due_stages(run, final=progress.step == train_config.max_steps)
        if stages:
            evaluated_step = progress.step
            if evaluate_and_checkpoint(run, stages):
                stop_reason = "early_stop"
                break
        if any_process(accelerator, run.stop_requested):
            stop_reason = "on_row"
            break
    if evaluated_step != progress.step:
        evaluate_and_checkpoint(run, due_stages(run, final=True))
    bar.close()
    return throughput, stop_reason


def step_row(run: Run, result: StepResult) -> dict:
    """The metrics row of the step just taken, counting it when it was skipped."""
    progress = run.progress
    if result.applied:
        progress.last_loss = result.loss
    else:
        progress.skipped_steps += 1
    return {
        "step": progress.step,
        "train/loss": result.loss,
        "train/grad_norm": result.grad_norm,
        "train/lr": result.lr,
        "train/skipped_steps": progress.skipped_steps,
        **result.metrics,
    }


def report(run: Run, row: dict) -> None:
    """Log `row` to the tracker and hand it to `on_row` (main process only)."""
    if not run.is_main:
        return
    tracker.log(row["step"], **{key: value for key, value in row.items() if key != "step"})
    if run.on_row is not None and run.on_row(row):
        run.stop_requested = True


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


def evaluate_and_checkpoint(run: Run, stages: list[EvalStage]) -> bool:
    """Run the due evaluation stages, track the best metric when it was computed, write the best and last
    checkpoints; True when early stopping is due."""
    metrics = evaluate(run, stages)
    run.last_metrics.update(metrics)
    report(run, {"step": run.progress.step, **metrics})
    every_stage = len(stages) == sum(stage_interval(stage, run.config) > 0 for stage in run.family.stages())
    improved = False
    if run.train_config.best_metric in metrics or every_stage:
        improved = track_best(run, metrics)
        run.schedule.observe(improved)
    payload = checkpoint_payload(run)
    if run.is_main:
        write_checkpoints(run, payload, improved)
        print_progress(run, metrics)
    patience = run.train_config.early_stop_patience
    return patience > 0 and run.progress.evaluations_since_best >= patience


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


def print_progress(run: Run, metrics: dict[str, float]) -> None:
    """One console line per evaluation (so stdout.log shows progress without a terminal)."""
    progress, train_config = run.progress, run.train_config
    parts = [f"step {progress.step}/{train_config.max_steps}"]
    if progress.last_loss is not None:
        parts.append(f"train/loss={progress.last_loss:.4g}")
    parts += [f"{name}={value:.4g}" for name, value in metrics.items()]
    if progress.best_value is not None:
        parts.append(f"best {train_config.best_metric}={progress.best_value:.4g}@{progress.best_step}")
    parts.append(f"skipped={progress.skipped_steps}")
    tqdm.write(" ".join(parts))
    sys.stdout.flush()


# Checkpoints --------------------------------------------------------------------------------------------------


def checkpoint_payload(run: Run) -> dict:
    """Everything an exact resume needs; every process takes part (its generator states are gathered)."""
    accelerator = run.accelerator
    rng = [checkpoint.rng_state(accelerator.device)]
    if accelerator.num_processes > 1 and accelerator.device.type != "xla":
        from accelerate.utils import gather_object

        rng = gather_object(rng)
    scaler = accelerator.scaler
    if run.sharded:
        weights, optimizer_state = sharding.full_state(run.model, run.optimizer.optimizer)
    else:
        weights = checkpoint.to_cpu(accelerator.unwrap_model(run.model).state_dict())
        optimizer_state = checkpoint.to_cpu(run.optimizer.state_dict())
    return {
        "format": CHECKPOINT_FORMAT,
        "family": run.family_name,
        "config": to_dict(run.config),
        "processes": accelerator.num_processes,
        "parallel": run.train_config.parallel,
        "model": weights,
        "optimizer": optimizer_state,
        "schedule": run.schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(run.progress),
        "rng": rng,
    }


def write_checkpoints(run: Run, payload: dict, improved: bool) -> None:
    """Write last.pt, and make best.pt a second name of it when the best metric improved (one serialisation),
    on the background writer; each is recorded with the tracker once it is on disk."""
    name, step = run.train_config.best_metric, run.progress.step
    best_value, last_value = run.progress.best_value, run.last_metrics.get(name)
    last, best = run.checkpoints / f"{checkpoint.LAST}.pt", run.checkpoints / f"{checkpoint.BEST}.pt"

    def write() -> None:
        checkpoint.save_atomic(payload, last)
        if improved:
            checkpoint.link_atomic(last, best)
            tracker.checkpoint(checkpoint.BEST, best, step, metric=name, value=best_value)
        tracker.checkpoint(checkpoint.LAST, last, step, metric=name, value=last_value)

    run.writer.submit(write)


def restore(run: Run, state: dict) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule, loss scale, progress and generator states."""
    accelerator, train_config = run.accelerator, run.train_config
    if state.get("format") != CHECKPOINT_FORMAT or state.get("family") != run.family_name:
        raise ConfigError(
            f"the checkpoint is not a {run.family_name} checkpoint of this engine (family {state.get('family')!r})"
        )
    saved_batch_size = state["config"]["train"]["batch_size"]
    if (state["processes"], saved_batch_size) != (accelerator.num_processes, train_config.batch_size):
        raise ConfigError(
            f"the checkpoint was written by {state['processes']} process(es) with train.batch_size="
            f"{saved_batch_size}; resume with the same to replay the data order"
        )
    parallel = state.get("parallel", "ddp")
    if parallel != train_config.parallel:
        raise ConfigError(f"the checkpoint was written with train.parallel={parallel}; resume with the same "
                          "(train.init_from starts a new run from its weights under either)")
    model = accelerator.unwrap_model(run.model)
    saved, expected = state["model"], model.state_dict()
    changed = [name for name in expected if name in saved and saved[name].shape != expected[name].shape]
    if changed or saved.keys() != expected.keys():
        raise ConfigError(
            f"the checkpoint's model does not fit this config ({len(changed)} tensor(s) changed shape, e.g. "
            f"{', '.join(changed[:3]) or 'different parameter names'}); --resume continues the same model only "
            "(start a new run with train.init_from to reuse weights)"
        )
    peak_rates = [group["initial_lr"] for group in run.optimizer.param_groups]  # a resumed run may change them
    if run.sharded:
        sharding.load_full_state(model, run.optimizer.optimizer, saved, state["optimizer"])
    else:
        model.load_state_dict(saved)
        run.optimizer.load_state_dict(state["optimizer"])
    for group, rate in zip(run.optimizer.param_groups, peak_rates):
        group["initial_lr"] = rate
    run.schedule.load_state_dict(state["schedule"])
    if accelerator.scaler is not None and state["scaler"] is not None:
        accelerator.scaler.load_state_dict(state["scaler"])
    run.progress = Progress(**state["progress"])
    rank = accelerator.process_index
    if rank < len(state["rng"]):
        checkpoint.set_rng_state(state["rng"][rank], accelerator.device)
    else:  # more processes than the checkpoint has states for (XLA does not gather them)
        seed_everything(train_config.seed + run.progress.step, per_process=True)


# Summary ------------------------------------------------------------------------------------------------------


def summarise(run: Run, throughput: Throughput, stop_reason: str, wall_s: float) -> dict:
    """The figures of the run for summary.json: size, speed, memory, best and final values."""
    progress, accelerator = run.progress, run.accelerator
    parameters = list(accelerator.unwrap_model(run.model).parameters())
    held = {id(parameter) for parameter in run.frozen} if frozen_now(run) else set()  # never released
    trainable = [parameter for parameter in parameters if parameter.requires_grad and id(parameter) not in held]
    summary = {
        "steps": progress.step,
        "wall_s": round(wall_s, 3),
        "train_s": round(throughput.seconds, 3),
        "param_count": sum(parameter.numel() for parameter in parameters),
        "trainable_param_count": sum(parameter.numel() for parameter in trainable),
        "samples_per_s": throughput.overall(),
        "peak_mem_mb": peak_memory_mb(accelerator),
        "skipped_steps": progress.skipped_steps,
        "best_metric": run.train_config.best_metric,
        "best_value": progress.best_value,
        "best_step": progress.best_step,
        "stopped_early": stop_reason != "max_steps",
        "stop_reason": stop_reason,
        "device": str(accelerator.device),
        "processes": accelerator.num_processes,
        "data": run.data.info,
        "final/train/loss": progress.last_loss,
    }
    summary.update({f"final/{name}": value for name, value in run.last_metrics.items()})
    return summary
