"""Optimizers with their parameter groups, and the learning-rate schedule the engine applies every update."""

from __future__ import annotations

import math

import torch
from torch import nn

from lab.errors import ConfigError
from trainers.family.config import OptimConfig


def parameter_groups(model: nn.Module, optim: OptimConfig) -> list[dict]:
    """The trainable parameters in two groups: with weight decay, and without.

    Parameters with fewer than two dimensions (biases, norm gains) never decay; embedding tables join them when
    `optim.no_decay_embed` is set. Each group keeps its parameter names under `param_names`.
    """
    embeddings = set()
    if optim.no_decay_embed:
        embeddings = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    decayed, exempt = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        excluded = parameter.ndim < 2 or id(parameter) in embeddings
        (exempt if excluded else decayed).append((name, parameter))
    groups = []
    for members, weight_decay in ((decayed, optim.weight_decay), (exempt, 0.0)):
        if members:
            groups.append({
                "params": [parameter for _, parameter in members],
                "param_names": [name for name, _ in members],
                "weight_decay": weight_decay,
            })
    return groups


def build_optimizer(groups: list[dict], optim: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer `optim.name` (adam, adamw, adamw8bit) over parameter `groups`.

    Groups come from `parameter_groups` or a family's `param_groups` hook; a group's own `lr` is its peak rate
    (`initial_lr`), which the schedule scales like the others.
    """
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    for group in groups:
        group["initial_lr"] = group.get("lr", group.get("initial_lr", optim.lr))
        if not math.isfinite(group["initial_lr"]) or group["initial_lr"] <= 0:
            raise ConfigError(f"a parameter group has lr {group['initial_lr']!r}; rates must be positive")
    settings = {"lr": optim.lr, "betas": tuple(optim.betas), "eps": optim.eps}
    if optim.name == "adam":
        return torch.optim.Adam(groups, **settings)
    if optim.name == "adamw":
        return torch.optim.AdamW(groups, **settings)
    try:
        import bitsandbytes
    except ImportError:
        raise ConfigError("adamw8bit needs bitsandbytes: pip install bitsandbytes") from None
    return bitsandbytes.optim.AdamW8bit(groups, **settings)


class LearningRateSchedule:
    """The learning rate of every update: linear warmup, then the schedule's shape, times the plateau cuts.

    Update u (counting from 0) runs at peak * u+1 / warmup_steps during warmup. After it, `constant` and
    `plateau` stay at the peak, `linear` and `cosine` decay so that the update at max_steps - 1 runs at
    `lr_end`. `plateau` multiplies the rate by `plateau_factor` after more than `plateau_patience` evaluations
    without improvement (as torch's ReduceLROnPlateau), never going below `lr_end`. Skipped updates do not
    advance the schedule.
    """

    def __init__(self, optim: OptimConfig, max_steps: int):
        self.shape = optim.schedule
        self.warmup_steps = optim.warmup_steps
        self.max_steps = max_steps
        self.end_ratio = optim.lr_end / optim.lr
        self.plateau_factor = optim.plateau_factor
        self.plateau_patience = optim.plateau_patience
        self.updates = 0
        self.plateau_scale = 1.0
        self.evaluations_without_improvement = 0

    def factor(self, update: int) -> float:
        """The multiplier of the peak learning rate for update number `update` (from 0)."""
        if update < self.warmup_steps:
            return (update + 1) / self.warmup_steps
        if self.shape == "plateau":
            return self.plateau_scale
        if self.shape == "constant":
            return 1.0
        decay_updates = max(1, self.max_steps - self.warmup_steps - 1)
        progress = min(1.0, (update - self.warmup_steps) / decay_updates)
        if self.shape == "linear":
            return 1.0 - progress * (1.0 - self.end_ratio)
        return self.end_ratio + (1.0 - self.end_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Set every group's rate for the next update; returns the first group's."""
        factor = self.factor(self.updates)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        return optimizer.param_groups[0]["lr"]

    def advance(self) -> None:
        """Count an applied update."""
        self.updates += 1

    def observe(self, improved: bool) -> None:
        """Take one evaluation's verdict on the best metric; a `plateau` schedule may cut the rate."""
        if self.shape != "plateau":
            return
        if improved:
            self.evaluations_without_improvement = 0
            return
        self.evaluations_without_improvement += 1
        if self.evaluations_without_improvement > self.plateau_patience:
            self.plateau_scale = max(self.plateau_scale * self.plateau_factor, self.end_ratio)
            self.evaluations_without_improvement = 0

    def state_dict(self) -> dict:
        return {
            "updates": self.updates,
            "plateau_scale": self.plateau_scale,
            "evaluations_without_improvement": self.evaluations_without_improvement,
        }

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.plateau_scale = state["plateau_scale"]
        self.evaluations_without_improvement = state["evaluations_without_improvement"]
