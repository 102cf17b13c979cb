"""Peak tensor memory of a piece of work, on any device (CPU included), by watching every tensor created.

    with TensorMemory() as memory:
        loss = model(x).sum(); loss.backward()
    memory.peak_mb            # the most tensor bytes alive at once inside the block (parameters excluded)

A dispatch mode sees each operator's outputs, counts their storages once, and subtracts them when they are
freed. On CUDA, `torch.cuda.max_memory_allocated` says the same with the allocator's rounding.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorMemory(TorchDispatchMode):
    """Live and peak bytes of the tensors created while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                storage = value.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self._seen:
                    self._seen.add(key)
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._freed, key, size)
        return result

    def _freed(self, key: int, size: int) -> None:
        if key in self._seen:
            self._seen.discard(key)
            self.live -= size

    def reset_peak(self) -> None:
        """Start a new phase: its peak counts from what is alive now."""
        self.peak = self.live

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    @property
    def live_mb(self) -> float:
        return self.live / 2**20
