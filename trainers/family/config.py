"""Config sections every family shares: the optimizer with its schedule, and the training loop.

Presets are plain functions returning config dataclasses; this module imports no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lab.errors import ConfigError
from lab.health.rules import RULES, Rule

OPTIMIZERS = ("adam", "adamw", "adamw8bit")
SCHEDULES = ("constant", "linear", "cosine", "plateau")
DEVICES = ("auto", "cpu", "cuda", "xla")
PRECISIONS = ("no", "bf16", "fp16")
PARALLELS = ("ddp", "fsdp")
BEST_MODES = ("min", "max")


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
    parallel: str = "ddp"  # ddp (replicated) | fsdp (parameters, gradients and optimizer state sharded; on XLA
    # one process drives every device through SPMD, and batch_size is the global batch)
    batch_size: int = 32  # per process and micro-batch; one update sees batch_size * grad_accum * processes
    grad_accum: int = 1  # micro-batches per optimizer update
    max_steps: int = 1000
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping (the norm is still logged)
    eval_every: int = 100
    log_every: int = 10  # steps between throughput and memory figures (loss, grad norm and lr are logged every step)
    best_metric: str = "val/loss"
    best_mode: str = "min"  # min | max
    early_stop_patience: int = 0  # evaluations without improvement; 0 disables
    frozen: list[str] = field(default_factory=list)  # parameter-name prefixes frozen at the start
    unfreeze_step: int = 0  # step at which frozen groups are released; 0 keeps them frozen
    stop_on: list[str] = field(default_factory=list)  # health rules that stop the run when they fire
    init_from: str = ""  # start from these weights (PATH or PATH:KEY); a resume ignores it
    init_strict: bool = True  # refuse init_from unless every key matches in name and shape
    seed: int = 0
    num_workers: int = 0


def require_at_least(section: str, values: object, minimums: dict[str, int | float]) -> None:
    """ConfigError (one line naming the key) for the first field of `values` below its minimum."""
    for name, least in minimums.items():
        value = getattr(values, name)
        if not value >= least:
            raise ConfigError(f"{section}.{name}={value!r} must be at least {least}")


def validate(optim: OptimConfig, train: TrainConfig, rules: dict[str, Rule] = RULES) -> None:
    """Raise ConfigError (one line naming the key) for a value the engine cannot run with.

    `rules` are the health rules `train.stop_on` may name (the global ones plus the family's).
    """
    for key, value, choices in (
        ("optim.name", optim.name, OPTIMIZERS),
        ("optim.schedule", optim.schedule, SCHEDULES),
        ("train.device", train.device, DEVICES),
        ("train.precision", train.precision, PRECISIONS),
        ("train.parallel", train.parallel, PARALLELS),
        ("train.best_mode", train.best_mode, BEST_MODES),
    ):
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    require_at_least("train", train, {"batch_size": 1, "grad_accum": 1, "max_steps": 1, "eval_every": 1,
                                      "log_every": 1, "num_workers": 0, "unfreeze_step": 0,
                                      "early_stop_patience": 0, "grad_clip": 0})
    require_at_least("optim", optim, {"warmup_steps": 0, "lr_end": 0, "weight_decay": 0, "plateau_patience": 0})
    for key, value in (("optim.lr", optim.lr), ("optim.lr_end", optim.lr_end), ("optim.eps", optim.eps),
                       ("optim.weight_decay", optim.weight_decay), ("train.grad_clip", train.grad_clip),
                       *((f"optim.betas[{i}]", beta) for i, beta in enumerate(optim.betas))):
        if not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} must be a finite number")
    if not optim.lr > 0:
        raise ConfigError(f"optim.lr={optim.lr!r} must be positive")
    if train.precision == "fp16" and train.device in ("cpu", "xla"):
        raise ConfigError(f"train.precision=fp16 (loss-scaled) needs CUDA, not train.device={train.device}; use bf16")
    if not 0 < optim.plateau_factor < 1:
        raise ConfigError(f"optim.plateau_factor={optim.plateau_factor!r} must lie between 0 and 1")
    if len(optim.betas) != 2:
        raise ConfigError(f"optim.betas={optim.betas!r} must hold two numbers")
    unknown_rules = sorted(set(train.stop_on) - set(rules))
    if unknown_rules:
        raise ConfigError(f"train.stop_on names unknown health rules {unknown_rules}; rules: {', '.join(rules)}")
