"""Config sections every family shares: the optimizer with its schedule, and the training loop.

Presets are plain functions returning config dataclasses; this module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OptimConfig:
    """Optimizer, parameter groups and learning-rate schedule."""

    name: str = "adamw"  # adam | adamw | adamw8bit
    lr: float = 1e-3  # peak learning rate
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    no_decay_embed: bool = False  # keep embeddings out of weight decay (biases and norms always are)
    schedule: str = "constant"  # constant | linear | cosine | plateau
    warmup_steps: int = 0
    lr_end: float = 0.0  # final learning rate of linear and cosine schedules
    plateau_factor: float = 0.2
    plateau_patience: int = 20  # evaluations without improvement before the LR is cut


@dataclass
class TrainConfig:
    """The training loop: device, precision, batch, length, evaluation, checkpoints, stopping."""

    device: str = "auto"  # auto | cpu | cuda | xla
    precision: str = "no"  # no | bf16 | fp16
    batch_size: int = 32
    grad_accum: int = 1
    max_steps: int = 1000
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping (the norm is still logged)
    eval_every: int = 100
    log_every: int = 10
    best_metric: str = "val/loss"
    best_mode: str = "min"  # min | max
    early_stop_patience: int = 0  # evaluations without improvement; 0 disables
    frozen: list[str] = field(default_factory=list)  # parameter-name prefixes frozen at the start
    unfreeze_step: int = 0  # step at which frozen groups are released; 0 keeps them frozen
    stop_on: list[str] = field(default_factory=list)  # health rules that stop the run when they fire
    seed: int = 0
    num_workers: int = 0
