"""The training data's order and the batches on the device: one permutation per (seed, epoch) dealt out to the
processes (or the family's batch sampler), resumable at any micro-batch, and the validation set in its stored
order."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from trainers.engine import sharding
from trainers.engine.state import Run
from trainers.engine.tensors import to_device
from trainers.family.config import TrainConfig
from trainers.family.context import DataBundle


def batches_per_epoch(items: int, batch_size: int, processes: int) -> int:
    """Full micro-batches each process gets in an epoch (the remainder of the permutation is dropped)."""
    return items // (batch_size * processes)


def shuffled_batches(
    dataset: Any, batch_size: int, seed: int, epoch: int, rank: int, processes: int
) -> list[list[int]]:
    """The default order: one process's full index batches of a permutation that depends on (seed, epoch) only.

    The permutation is dealt out to the processes in turn and cut into full batches.
    """
    items = len(dataset)
    count = batches_per_epoch(items, batch_size, processes)
    permutation = np.random.default_rng([seed, epoch]).permutation(items)  # (items,)
    indices = permutation[: count * batch_size * processes][rank::processes]  # (count * batch_size,)
    return [indices[batch * batch_size : (batch + 1) * batch_size].tolist() for batch in range(count)]


def epoch_batches(
    data: DataBundle, train_config: TrainConfig, epoch: int, rank: int, processes: int
) -> list[list[int]]:
    """This process's training batches for `epoch`: the family's batch sampler, else `shuffled_batches`."""
    sampler = data.batch_sampler or shuffled_batches
    return sampler(data.train, train_config.batch_size, train_config.seed, epoch, rank, processes)


class ResumableOrder(Sampler):
    """An epoch's index batches from batch `start` on (a resumed run skips what it has consumed)."""

    def __init__(self, batches: list[list[int]], start: int):
        self.batches = batches[start:]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


def micro_batches(run: Run) -> Iterator[Any]:
    """Training micro-batches on the device, epoch after epoch, keeping `run.progress.epoch/position` current."""
    progress, train_config, accelerator = run.progress, run.train_config, run.accelerator
    while True:
        batches = epoch_batches(run.data, train_config, progress.epoch, accelerator.process_index,
                                accelerator.num_processes)
        order = ResumableOrder(batches, start=progress.position)
        # A private generator: creating the loader's iterator must not draw from torch's global RNG.
        entropy = [train_config.seed, progress.epoch, accelerator.process_index]
        generator = torch.Generator().manual_seed(int(np.random.default_rng(entropy).integers(2**62)))
        loader = DataLoader(
            run.data.train, batch_sampler=order, collate_fn=run.data.collate,
            num_workers=train_config.num_workers, generator=generator,
        )
        for batch in loader:
            progress.position += 1
            batch = to_device(batch, accelerator.device)
            yield batch if run.mesh is None else sharding.split_batch(batch, run.mesh)
        progress.epoch += 1
        progress.position = 0


def validation_batches(run: Run) -> Iterator[Any]:
    """The validation set in its stored order, batched by the bundle's validation batch size and collate."""
    train_config, data = run.train_config, run.data
    loader = DataLoader(
        data.val, batch_size=data.val_batch_size or train_config.batch_size, shuffle=False,
        collate_fn=data.val_collate or data.collate, num_workers=train_config.num_workers,
        generator=torch.Generator().manual_seed(train_config.seed),
    )
    return (to_device(batch, run.accelerator.device) for batch in loader)
