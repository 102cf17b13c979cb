"""`train.parallel=fsdp`: parameters, gradients and optimizer state sharded over the processes with torch's
FSDP2 (`fully_shard`), one block at a time, then the root; on XLA, over the devices of one process with
torch_xla's SPMD (a mesh with an `fsdp` axis, parameters and batches split on their first dimension, as
FSDPv2 does; the compiler inserts the gathers and reduce-scatters).

    model = shard(model, spec.shard_modules(model), device)      # before the optimizer is built
    weights, optimizer_state = full_state(model, optimizer)      # every process calls; rank 0 gets the tensors

Each block gathers its full parameters just before its forward (and before any method the family names) and
frees them after; gradients are reduce-scattered to the shards (averaged over processes, as DDP does).
Checkpoints are consolidated: one full state on rank 0, in the same file format as an unsharded run, so
`--init-from`, `lab generate` and `lab weights` read them as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor

from trainers.engine.tensors import map_tensors


def shard(model: nn.Module, blocks: list[Any], device: torch.device) -> nn.Module:
    """`model` on `device`, sharded in place over every process: each of `blocks` (a module, or (module,
    method names) for methods called from outside it), then the root (unless listed; with no blocks the whole
    model is one unit). Returns the model."""
    model.to(device)
    world = dist.get_world_size() if dist.is_initialized() else 1
    if not dist.is_initialized():  # one process: a group of one (ended by `finish`), the same code path
        dist.init_process_group("gloo" if device.type == "cpu" else "nccl", store=dist.HashStore(), rank=0,
                                world_size=1)
    mesh = init_device_mesh(device.type, (world,), mesh_dim_names=("fsdp",))
    sharded_root = False
    for block in blocks:
        module, methods = block if isinstance(block, tuple) else (block, ())
        fully_shard(module, mesh=mesh)
        for method in methods:
            register_fsdp_forward_method(module, method)
        sharded_root = sharded_root or module is model
    if not sharded_root:
        fully_shard(model, mesh=mesh)
    return model


def finish() -> None:
    """End the one-process group `shard` started, if it did (a multi-process group is accelerate's to end)."""
    if dist.is_initialized() and dist.get_world_size() == 1:
        dist.destroy_process_group()


def full_tensor(value: torch.Tensor) -> torch.Tensor:
    """A sharded tensor (a DTensor: the total gradient norm) gathered whole; a plain tensor as it is."""
    return value.full_tensor() if isinstance(value, DTensor) else value


def set_gradient_sync(model: nn.Module, sync: bool) -> None:
    """Whether the next backward reduce-scatters gradients (off for all micro-batches but an update's last)."""
    model.set_requires_gradient_sync(sync)


OPTIONS = StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The whole model and optimizer state on the CPU of rank 0 (empty elsewhere); every process must call.

    The optimizer's state is keyed by parameter name (torch.distributed.checkpoint's format).
    """
    return get_state_dict(model, optimizer, options=OPTIONS)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optimizer_state: dict) -> None:
    """Shard a `full_state` (read by every process) back into `model` and `optimizer`."""
    set_state_dict(model, optimizer, model_state_dict=weights, optim_state_dict=optimizer_state,
                   options=StateDictOptions(full_state_dict=True))


def xla_mesh():
    """The SPMD mesh of every XLA device of this process, one `fsdp` axis."""
    import torch_xla.distributed.spmd as xs
    import torch_xla.runtime as xr

    count = xr.global_runtime_device_count()
    return xs.Mesh(np.arange(count), (count,), ("fsdp",))


def split_first_dimension(tensor: torch.Tensor, mesh) -> torch.Tensor:
    """Annotate `tensor` (on the XLA device) as split over the mesh on its first dimension, when that divides
    evenly; otherwise it stays replicated. Returns the tensor."""
    import torch_xla.distributed.spmd as xs

    if tensor.dim() and tensor.shape[0] % mesh.size() == 0:
        xs.mark_sharding(tensor, mesh, ("fsdp",) + (None,) * (tensor.dim() - 1))
    return tensor


def shard_xla(model: nn.Module, mesh) -> None:
    """Split every parameter of `model` (already on the XLA device) over `mesh`; gradients and optimizer
    state follow through sharding propagation."""
    for parameter in model.parameters():
        split_first_dimension(parameter, mesh)


def split_batch(batch: Any, mesh) -> Any:
    """`batch` with each tensor split over `mesh` on its first (batch) dimension."""
    return map_tensors(batch, lambda tensor: split_first_dimension(tensor, mesh))
