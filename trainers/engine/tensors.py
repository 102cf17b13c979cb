"""Walks over the tensors inside nested containers, and the copies between device and host they serve: a batch
moved to the device, a checkpoint's snapshot on the CPU, a step's metrics read in one transfer."""

from __future__ import annotations

from typing import Any, Callable

import torch


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`value` with `fn` applied to every tensor inside (nested dicts, lists, tuples); other items unchanged."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {key: map_tensors(item, fn) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(map_tensors(item, fn) for item in value)
    return value


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor inside (nested dicts, lists, tuples) moved to `device`."""
    return map_tensors(batch, lambda tensor: tensor.to(device))


def to_cpu(value: Any) -> Any:
    """`value` with every tensor inside (nested dicts, lists, tuples) copied to the CPU: a snapshot that
    training may not change (a tensor already on the CPU is cloned)."""
    return map_tensors(value, lambda tensor: tensor.detach().to("cpu", copy=True))


def to_host(values: dict[str, Any]) -> dict[str, float]:
    """`values` as floats; its tensors (scalars) are copied to the host together, in one transfer."""
    tensors = {name: value for name, value in values.items() if isinstance(value, torch.Tensor)}
    host = {}
    if tensors:
        device = next(iter(tensors.values())).device
        stacked = torch.stack([value.detach().float().reshape(()).to(device) for value in tensors.values()])  # (n,)
        host = dict(zip(tensors, stacked.tolist()))
    return {name: host[name] if name in host else float(value) for name, value in values.items()}
