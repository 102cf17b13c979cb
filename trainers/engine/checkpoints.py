"""Checkpoint files and random-number-generator states: where checkpoints go, atomic writes and links, the
background writer, and the generator states an exact resume restores. What a checkpoint holds is
`trainers.engine.resume`'s."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lab import tracker
from lab.errors import ConfigError
from lab.records.files import TEMPORARY_SUFFIX, atomic_write

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
    atomic_write(path, lambda stream: torch.save(payload, stream))


def load(path: str | Path) -> dict:
    """A checkpoint written by the engine, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise ConfigError(f"checkpoint {path} cannot be read, damaged or truncated "
                          f"({' '.join(str(error).split())[:200]})") from None


def link_atomic(source: Path, path: Path) -> None:
    """Make `path` a second name of the file `source` (a hard link, renamed into place; a copy where the file
    system has no links): the same bytes without writing them again."""
    temporary = path.with_name(f".{path.name}.link{TEMPORARY_SUFFIX}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, path)


class BackgroundWriter:
    """Writes checkpoints on a thread of its own, one at a time, so that training goes on while a snapshot is
    serialised. `wait` blocks until the write in flight is done and raises what it raised."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Run `write()` in the background once the previous write has finished."""
        self.wait()

        def run() -> None:
            try:
                write()
            except BaseException as error:  # noqa: BLE001 - handed to the training thread by wait()
                self._error = error

        self._thread = threading.Thread(target=run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


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
