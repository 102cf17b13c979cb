"""`train`: one training run of a family, as named steps (set up, start or resume, loop, summarise, finish).

    summary = train("neural_decoder", config)            # config: the family's Config dataclass
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

from lab import tracker
from lab.families import registry
from lab.families.spec import FamilySpec
from lab.records.config import to_dict
from trainers.engine import sharding
from trainers.engine.checkpoints import load
from trainers.engine.device import create_accelerator, seed_everything
from trainers.engine.loop import loop
from trainers.engine.resume import restore
from trainers.engine.setup import setup
from trainers.engine.state import Run, Throughput
from trainers.engine.summary import summarise


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
    spec.build_config(to_dict(config))  # the checks of `lab new-run`, for a config made in Python
    run = setup(spec, config, create_accelerator(config.train), out_dir, on_row, init=resume is None)
    start(run, resume)
    throughput, stop_reason = loop_to_the_end(run)
    summary = summarise(run, throughput, stop_reason, time.perf_counter() - started)
    finish(run, summary)
    return summary


def start(run: Run, resume: str | Path | None) -> None:
    """Continue from the checkpoint at `resume`, or seed each process apart for a fresh start."""
    if resume is not None:
        restore(run, load(resume))
    else:
        seed_everything(run.train_config.seed, per_process=True)


def loop_to_the_end(run: Run) -> tuple[Throughput, str]:
    """The loop, with the checkpoint in flight landing whole before this returns or raises."""
    try:
        result = loop(run)
    except BaseException:
        with contextlib.suppress(Exception):
            run.writer.wait()  # the checkpoint in flight lands whole; the run's own error is the one raised
        raise
    run.writer.wait()
    return result


def finish(run: Run, summary: dict) -> None:
    """Record the summary (main process), end a one-process FSDP group, end accelerate's training."""
    if run.is_main:
        tracker.summary(**summary)
    if run.sharded:
        sharding.finish()
    if run.accelerator.num_processes == 1:
        # A multi-process run keeps its process group until the process leaves (trainers.__main__.leave):
        # destroyed here, its last reference would go with DDP's reducer, whose release can hang in gloo.
        run.accelerator.end_training()
