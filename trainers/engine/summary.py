"""The figures of a finished run for its summary.json: size, speed, memory, best and final values."""

from __future__ import annotations

from trainers.engine.device import peak_memory_mb
from trainers.engine.state import Run, Throughput
from trainers.engine.step import frozen_now


def summarise(run: Run, throughput: Throughput, stop_reason: str, wall_s: float) -> dict:
    """The summary of `run`: steps, wall and training seconds, parameters (all and trainable at the end),
    samples/s, peak memory (MiB), skipped updates, the best metric with its step, why it stopped, the device
    and processes, the data's info and every final metric (`final/<name>`)."""
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
