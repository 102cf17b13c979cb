"""Zero-code capture: what a script started by `lab launch` logs through wandb, TensorBoard, Hugging Face's
`Trainer`, Hydra or argparse is recorded on its attempt, without an edit to the script.

The launcher puts `site/` (next to this file) first on the command's PYTHONPATH; its `sitecustomize` calls
`install()` in each Python process the command starts, then runs any `sitecustomize` it hides, in the way
`opentelemetry-instrument` and `ddtrace-run` instrument a program. `install` does nothing unless the lab started
the process (LAB_ATTEMPT_DIR set, LAB_AUTOLOG not "0") and it is the launch's main process (rank 0). Otherwise it
adds an import hook that patches a library once the script imports it (the lab imports none of them itself,
nor anything of its own until a patch applies, so a process costs a few milliseconds more to start); `hooks`
holds the patches, and `rows` the row streams they feed through the tracker.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing's names only: importing `types` or more of `typing` costs each process's start-up
    from types import ModuleType
    from typing import Any, Callable

PATCHED_MODULES = {  # module -> name of its patch in lab.tracking.autolog.hooks
    "argparse": "patch_argparse",
    "wandb": "patch_wandb",
    "torch.utils.tensorboard.writer": "patch_summary_writer",
    "tensorboardX.writer": "patch_summary_writer",
    "transformers.trainer": "patch_trainer",
    "hydra.core.utils": "patch_hydra",
    "lightning.fabric.loggers.tensorboard": "patch_lightning_tensorboard",
    "lightning_fabric.loggers.tensorboard": "patch_lightning_tensorboard",
}


def enabled() -> bool:
    """Whether this process is one the lab launched and records: LAB_ATTEMPT_DIR set, LAB_AUTOLOG not "0", and
    the launch's main process (lab.tracking.ranks: torchrun's, SLURM's or MPI's rank 0)."""
    from lab.tracking.ranks import is_main_process

    return bool(os.environ.get("LAB_ATTEMPT_DIR")) and os.environ.get("LAB_AUTOLOG", "1") != "0" and \
        is_main_process()


def install() -> bool:
    """Patch the libraries of PATCHED_MODULES already imported, and add the import hook for the others;
    returns whether capture is on (False, doing nothing, when `enabled()` is not)."""
    if not enabled() or any(isinstance(finder, PatchingFinder) for finder in sys.meta_path):
        return False
    for name in PATCHED_MODULES:
        if name in sys.modules:
            patch(name, sys.modules[name])
    sys.meta_path.insert(0, PatchingFinder())
    return True


def patch(name: str, module: ModuleType) -> None:
    """Apply the patch of `name` to its freshly imported module; a failure turns capture off with a warning."""
    from lab.tracking.autolog import hooks, rows

    rows.guarded(getattr(hooks, PATCHED_MODULES[name]), module)


class PatchingFinder:
    """A meta path finder (importlib.abc.MetaPathFinder, not imported: it costs every start-up) that finds the
    modules of PATCHED_MODULES through the other finders and patches each once it has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in PATCHED_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = PatchingLoader(spec.loader, lambda module: patch(name, module))
                return spec
        return None


class PatchingLoader:
    """A loader running the module's own loader, then the patch; the module keeps its own as `__loader__`."""

    def __init__(self, loader: Any, after: Callable[[ModuleType], None]):
        self.loader, self.after = loader, after

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.after(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
