"""What the steps of one training run share: its pieces (`Run`), where training stands (`Progress`: what an
exact resume restores besides the states of the model, optimizer, schedule and generators) and the time spent
in training steps (`Throughput`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from lab import tracker
from lab.families.spec import FamilySpec
from trainers.engine.checkpoints import BackgroundWriter
from trainers.engine.optim import LearningRateSchedule
from trainers.family.config import TrainConfig
from trainers.family.context import Context, DataBundle


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
    """The pieces of one training run that the loop's steps share."""

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
    writer: BackgroundWriter = field(default_factory=BackgroundWriter)
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

    def report(self, row: dict) -> None:
        """Log `row` ({"step": ..., **metrics}) to the tracker and hand it to `on_row` (main process only); an
        `on_row` that returns True asks the run to stop."""
        if not self.is_main:
            return
        tracker.log(row["step"], **{key: value for key, value in row.items() if key != "step"})
        if self.on_row is not None and self.on_row(row):
            self.stop_requested = True


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
