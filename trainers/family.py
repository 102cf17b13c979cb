"""What every family's trainer module provides to the shared engine.

A family module (for example `trainers.neural_decoder.family`) defines four functions:

    build_model(config) -> torch.nn.Module
    build_data(config) -> DataBundle
    training_loss(model, batch, config) -> (loss, metrics)     # loss: scalar tensor; metrics: name -> value
    evaluate(model, batches, config) -> {"val/<name>": float}  # the model is already in eval mode

Augmentations happen inside `training_loss` on the batch's device, drawing from torch's global RNG so that an
exact resume replays them. Models do no logging and no I/O.

Training metrics are floats or detached scalar tensors; the engine copies the tensors to the host with the loss, in
one transfer per step. `build_model` and `build_data` raise OSError or ValueError for input they cannot use.
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


def one_line(text: object) -> str:
    """`text` as a string with every run of whitespace, newlines included, collapsed to one space."""
    return " ".join(str(text).split())
