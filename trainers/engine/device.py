"""Where training runs: the `accelerate` Accelerator for CPU, CUDA and multi-process runs, and for XLA (TPU).

accelerate switches itself to XLA whenever torch_xla is importable, so the choice is made through its
`USE_TORCH_XLA` switch before accelerate is first imported. `PJRT_DEVICE=CPU` with `train.device=xla` runs the
XLA path on an ordinary CPU.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import sys

import torch

from lab.errors import ConfigError
from trainers.family.config import TrainConfig


def resolve_device(requested: str) -> str:
    """'cpu', 'cuda' or 'xla' for `train.device`; 'auto' takes CUDA, else a TPU (PJRT_DEVICE=TPU), else the CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if os.environ.get("PJRT_DEVICE") == "TPU" and importlib.util.find_spec("torch_xla") is not None:
            return "xla"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but torch sees no CUDA device; use train.device=cpu or auto")
    if requested == "xla" and importlib.util.find_spec("torch_xla") is None:
        raise ConfigError("train.device=xla needs torch_xla: pip install torch_xla (PJRT_DEVICE=CPU runs it on a CPU)")
    return requested


def _select_accelerate_backend(device: str) -> None:
    """Make accelerate use XLA exactly when `device` is 'xla' (its switch is read once, at import)."""
    want_xla = device == "xla"
    if "accelerate" in sys.modules:
        from accelerate.utils import is_torch_xla_available

        if is_torch_xla_available() != want_xla:
            raise ConfigError(
                f"train.device={device} cannot run in this process: accelerate was already imported "
                f"{'without' if want_xla else 'with'} XLA; start a fresh process"
            )
        return
    os.environ["USE_TORCH_XLA"] = "1" if want_xla else "0"
    if want_xla:
        try:
            import torch_xla  # noqa: F401  (fail here, in one line, rather than deep inside accelerate)
        except ImportError as error:
            raise ConfigError(f"train.device=xla: torch_xla does not import: {error}") from None


def create_accelerator(train: TrainConfig):
    """The Accelerator for `train.device`, `train.precision` and `train.grad_accum`."""
    device = resolve_device(train.device)
    if train.precision == "fp16" and device != "cuda":
        raise ConfigError(f"train.precision=fp16 (loss-scaled) needs CUDA, not {device}; use bf16")
    _select_accelerate_backend(device)
    if device == "xla" and train.parallel == "fsdp":
        import torch_xla.runtime as xr

        xr.use_spmd()  # before any XLA computation: one process, every device, sharding by annotation
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    # Forget an earlier train() of this process (tests, notebooks): precision and accumulation are per run.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    return Accelerator(
        cpu=device == "cpu", mixed_precision=train.precision, gradient_accumulation_steps=train.grad_accum
    )


def seed_everything(seed: int, per_process: bool = False) -> None:
    """Seed python, numpy, torch and the accelerator; `per_process` adds the process index to the seed."""
    from accelerate.utils import set_seed

    set_seed(seed, device_specific=per_process)


def uses_xla(accelerator) -> bool:
    """Whether the accelerator runs on an XLA device."""
    return accelerator.device.type == "xla"


def finish_step(accelerator) -> None:
    """End the step on the device: XLA compiles and runs the step's graph here; other devices need nothing."""
    if uses_xla(accelerator):
        import torch_xla

        torch_xla.sync()


def skip_update(accelerator) -> None:
    """Leave the optimizer untouched this step, keeping the loss scaler and XLA's gradient sync consistent.

    A loss-scaled (fp16) run lowers its scale as it would have in a skipped `scaler.step`; on XLA the next step
    must all-reduce its gradients afresh.
    """
    if accelerator.scaler is not None:
        accelerator.scaler.update()
    if uses_xla(accelerator):
        accelerator.gradient_state.is_xla_gradients_synced = False


def any_process(accelerator, flag: bool) -> bool:
    """Whether `flag` is set on any process (every process gets the same answer)."""
    if accelerator.num_processes == 1:
        return flag
    count = accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), reduction="sum")
    return bool(count.item() > 0)


def peak_memory_mb(accelerator) -> float:
    """Peak memory of this process in MiB: CUDA's max allocated, an XLA device's peak, else the RSS high-water mark."""
    if accelerator.device.type == "cuda":
        return torch.cuda.max_memory_allocated(accelerator.device) / 2**20
    if uses_xla(accelerator):
        import torch_xla.core.xla_model as xm

        try:
            return xm.get_memory_info(accelerator.device)["peak_bytes_used"] / 2**20
        except (RuntimeError, KeyError):
            pass  # the PJRT CPU client keeps no allocator statistics
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
