"""The training loop as a list of named steps: take an update, make its metrics row, show progress, report the
row, evaluate and checkpoint when a stage is due, and stop at max_steps, on early stopping or when `on_row`
asks."""

from __future__ import annotations

import time
from typing import Any, Iterator

from lab.families.spec import EvalStage
from trainers.engine.batches import micro_batches
from trainers.engine.console import Console
from trainers.engine.device import any_process, peak_memory_mb
from trainers.engine.evaluation import due_stages, evaluate, judge_best
from trainers.engine.resume import checkpoint_payload, write_checkpoints
from trainers.engine.state import Run, Throughput
from trainers.engine.step import StepResult, train_step


def loop(run: Run) -> tuple[Throughput, str]:
    """Train until max_steps, early stopping or a stop from `on_row`; returns the throughput and the reason
    ('max_steps', 'early_stop' or 'on_row'). The last step is always evaluated and checkpointed."""
    train_config, progress = run.train_config, run.progress
    throughput = Throughput(train_config.batch_size * train_config.grad_accum * run.accelerator.num_processes)
    batches = micro_batches(run)
    console = Console(run)
    run.model.train()
    stop_reason, evaluated_step = "max_steps", None
    while progress.step < train_config.max_steps:
        result = timed_step(run, batches, throughput)
        row = step_row(run, result, throughput)
        console.step(row)
        run.report(row)
        stages = due_stages(run, final=progress.step == train_config.max_steps)
        if stages:
            evaluated_step = progress.step
            if evaluate_and_checkpoint(run, stages, console):
                stop_reason = "early_stop"
                break
        if any_process(run.accelerator, run.stop_requested):
            stop_reason = "on_row"
            break
    if evaluated_step != progress.step:
        evaluate_and_checkpoint(run, due_stages(run, final=True), console)
    console.close()
    return throughput, stop_reason


def timed_step(run: Run, batches: Iterator[Any], throughput: Throughput) -> StepResult:
    """One update, its time added to `throughput`, counted in `run.progress.step`."""
    began = time.perf_counter()
    result = train_step(run, batches)
    throughput.add(time.perf_counter() - began)
    run.progress.step += 1
    return result


def step_row(run: Run, result: StepResult, throughput: Throughput) -> dict:
    """The metrics row of the step just taken, counting it when it was skipped; every `train.log_every` steps
    (and at the last) with the throughput since the previous such row and the peak memory."""
    progress, train_config = run.progress, run.train_config
    if result.applied:
        progress.last_loss = result.loss
    else:
        progress.skipped_steps += 1
    row = {
        "step": progress.step,
        "train/loss": result.loss,
        "train/grad_norm": result.grad_norm,
        "train/lr": result.lr,
        "train/skipped_steps": progress.skipped_steps,
        **result.metrics,
    }
    if progress.step % train_config.log_every == 0 or progress.step == train_config.max_steps:
        row["train/samples_per_s"] = throughput.take_window()
        row["train/peak_mem_mb"] = peak_memory_mb(run.accelerator)
    return row


def evaluate_and_checkpoint(run: Run, stages: list[EvalStage], console: Console) -> bool:
    """Run the due evaluation stages, track the best metric when it was computed, write the best and last
    checkpoints; True when early stopping is due."""
    metrics = evaluate(run, stages)
    run.last_metrics.update(metrics)
    run.report({"step": run.progress.step, **metrics})
    improved = judge_best(run, metrics, stages)
    payload = checkpoint_payload(run)
    if run.is_main:
        write_checkpoints(run, payload, improved)
        console.evaluation(metrics)
    patience = run.train_config.early_stop_patience
    return patience > 0 and run.progress.evaluations_since_best >= patience
