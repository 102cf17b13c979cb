"""What every family's trainer module provides to the shared engine.

A family module (for example `trainers.neural_decoder.family`) defines four functions:

    build_model(config) -> torch.nn.Module
    build_data(config) -> DataBundle
    training_loss(model, batch, config) -> (loss, metrics)     # loss: scalar tensor; metrics: name -> float
    evaluate(model, batches, config) -> {"val/<name>": float}  # the model is already in eval mode

Augmentations happen inside `training_loss` on the batch's device, drawing from torch's global RNG so that an
exact resume replays them. Models do no logging and no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class DataBundle:
    """A family's datasets: map-style train and validation sets, the collate function, and size facts."""

    train: Any  # torch.utils.data.Dataset
    val: Any  # torch.utils.data.Dataset
    collate: Callable[[list], dict]
    info: dict = field(default_factory=dict)  # for reports: {"train_items": 1536, "val_items": 256, ...}
