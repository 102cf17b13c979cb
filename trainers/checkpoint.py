"""Checkpoint files and random-number-generator states: atomic writes, and what an exact resume needs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from lab import tracker
from lab.config import ConfigError
from trainers.tensors import map_tensors

LAST, BEST = "last", "best"


def checkpoint_dir(family_name: str, out_dir: str | Path | None) -> Path:
    """`<artefacts>/checkpoints` inside a lab attempt, else `<out_dir>/checkpoints`.

    `out_dir` defaults to artefacts/standalone/<family>.
    """
    artefacts = tracker.artefacts_dir()
    if artefacts is not None:
        return artefacts / "checkpoints"
    return Path(out_dir if out_dir is not None else Path("artefacts", "standalone", family_name)) / "checkpoints"


def save_atomic(payload: dict, path: Path) -> None:
    """torch.save `payload` to `path` through a temporary file and a rename, so `path` is never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load(path: str | Path) -> dict:
    """A checkpoint written by the engine, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def to_cpu(value):
    """`value` with every tensor inside (nested dicts, lists, tuples) copied to the CPU."""
    return map_tensors(value, lambda tensor: tensor.detach().cpu())


def rng_state(device: torch.device) -> dict:
    """This process's generator states: python, numpy, torch CPU and the accelerator's."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "xla":
        import torch_xla.core.xla_model as xm

        state["xla"] = xm.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore the generator states saved by `rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    if "xla" in state and device.type == "xla":
        import torch_xla.core.xla_model as xm

        xm.set_rng_state(state["xla"], device)
