"""A tiny regression family for the engine's tests, in the shape of a real family module.

    y = sin(x @ w) + bias[id] + noise; the model sees x (B, F) and an id (B,) through an embedding.

It doubles as its own config module and exports its `SPEC`; tests register it with `registry.register`, and
subprocesses find it through `LAB_FAMILY_MODULES=toy_family`. Test hooks live in the data config:
`poison_index` puts NaN into one training item (the batch holding it has a non-finite loss), `scripted` makes
evaluation report `val/scripted` from that list, one value per evaluation, so best-checkpoint and
early-stopping tests control the metric exactly, and `probe_every` adds an evaluation stage `val/probe` on
its own cadence that also logs a media file through the context.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

from lab.errors import ConfigError
from lab.families.spec import EvalStage
from trainers.family.config import OptimConfig, TrainConfig
from trainers.family.context import Context, DataBundle
from trainers.family.spec import family_spec

PROVENANCE = {"baseline": "toy", "repository": "tests/trainers/toy_family.py"}


@dataclass
class ModelConfig:
    features: int = 6
    width: int = 16
    ids: int = 4
    dropout: float = 0.1


@dataclass
class DataConfig:
    train_items: int = 40
    val_items: int = 16
    noise: float = 0.05
    seed: int = 0
    poison_index: int = -1  # a training item whose inputs are NaN; -1 for none
    scripted: list[float] = field(default_factory=list)  # successive values of val/scripted
    probe_every: int = 0  # steps between runs of the `probe` evaluation stage; 0 turns it off


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def tiny() -> Config:
    """A few-second CPU run."""
    return Config(
        optim=OptimConfig(name="adamw", lr=1e-2, weight_decay=0.01),
        train=TrainConfig(device="cpu", batch_size=4, max_steps=12, eval_every=4, log_every=2, seed=3),
    )


PRESETS = {"baseline": tiny, "tiny": tiny}


class ToyNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(config.ids, config.width)
        self.body = nn.Linear(config.features, config.width)
        self.norm = nn.LayerNorm(config.width)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.width, 1)
        self.evaluations = 0  # counted by `evaluate`, for scripted metrics

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(self.body(x) + self.embed(ids))  # (B, W)
        return self.head(self.dropout(torch.tanh(hidden))).squeeze(-1)  # (B,)


class ToyDataset(Dataset):
    def __init__(self, items: int, config: Config, seed: int, poison_index: int = -1):
        generator = torch.Generator().manual_seed(seed)
        features = config.model.features
        weights = torch.randn(features, generator=generator)  # (F,)
        self.x = torch.randn(items, features, generator=generator)  # (N, F)
        self.ids = torch.randint(0, config.model.ids, (items,), generator=generator)  # (N,)
        offsets = torch.linspace(-1, 1, config.model.ids)  # (ids,)
        noise = config.data.noise * torch.randn(items, generator=generator)  # (N,)
        self.y = torch.sin(self.x @ weights) + offsets[self.ids] + noise  # (N,)
        if 0 <= poison_index < items:
            self.x[poison_index] = float("nan")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple:
        return self.x[index], self.ids[index], self.y[index]


def collate(items: list[tuple]) -> dict:
    x, ids, y = zip(*items)
    return {"x": torch.stack(x), "ids": torch.stack(ids), "y": torch.stack(y)}


def build_model(config: Config) -> ToyNet:
    return ToyNet(config.model)


def build_data(config: Config) -> DataBundle:
    train = ToyDataset(config.data.train_items, config, config.data.seed, config.data.poison_index)
    val = ToyDataset(config.data.val_items, config, config.data.seed + 1)
    return DataBundle(train=train, val=val, collate=collate, info={"train_items": len(train), "val_items": len(val)})


def training_loss(model: nn.Module, batch: dict, ctx: Context) -> tuple[torch.Tensor, dict]:
    prediction = model(batch["x"], batch["ids"])  # (B,)
    error = prediction - batch["y"]  # (B,)
    return error.pow(2).mean(), {"abs_error": error.detach().abs().mean()}


@torch.no_grad()
def evaluate(model: ToyNet, batches, ctx: Context) -> dict[str, float]:
    config = ctx.config
    squared, count = 0.0, 0
    for batch in batches:
        squared += (model(batch["x"], batch["ids"]) - batch["y"]).pow(2).sum().item()
        count += len(batch["y"])
    metrics = {"val/loss": squared / count}
    if config.data.scripted:
        metrics["val/scripted"] = config.data.scripted[model.evaluations % len(config.data.scripted)]
    model.evaluations += 1
    return metrics


@torch.no_grad()
def probe(model: ToyNet, batches, ctx: Context) -> dict[str, float]:
    """A second evaluation stage: the mean prediction, and a short tone logged as a media sample."""
    predictions = torch.cat([model(batch["x"], batch["ids"]) for batch in batches])  # (N,)
    ctx.log_media("probe/tone", torch.sin(torch.arange(800) * 0.1) * 0.5, kind="audio", sample_rate=8000)
    return {"val/probe": predictions.mean().item()}


def validate(config: Config) -> None:
    if config.model.width < 2:
        raise ConfigError(f"model.width={config.model.width} must be at least 2")


SPEC = family_spec(
    name="toy",
    config=sys.modules[__name__],
    build_model=build_model,
    build_data=build_data,
    training_loss=training_loss,
    evaluate=evaluate,
    eval_metrics=("val/loss",),
    validate=validate,
    eval_stages=(EvalStage("probe", probe, every="data.probe_every", metrics=("val/probe",)),),
    metric_directions={"val/scripted": "min", "train/abs_error": "min"},
)
