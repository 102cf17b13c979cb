"""Log metrics from any training script to the current lab attempt.

    from lab import tracker
    tracker.log(step, **{"train/loss": 0.7, "train/lr": 1e-3})
    tracker.summary(best_per=0.21)

Inside `lab launch` the attempt is found from `LAB_ATTEMPT_DIR`. Outside it, `tracker.init("nsd_001")` opens a
new attempt of that run; with neither, every call is a no-op so a script runs unchanged without the lab. Only
the main process of a multi-process launch writes (RANK 0). Metrics are mirrored to W&B when the launch turned
W&B on (`LAB_WANDB=1`).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lab.records import read_json, write_json

if TYPE_CHECKING:
    from lab.store import Store

EXIT_CODES = {"finished": 0, "failed": 1, "killed": 130}  # what `finish(status)` records for an init attempt

_attempt_dir: Path | None = None
_metrics_stream: TextIO | None = None
_wandb_run: Any = None
_owns_attempt = False
_resolved = False
_attempt_store: tuple[Path, Store, str, int] | None = None  # (attempt folder, its store, run id, number)
_previous_excepthook: Any = None


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _current() -> Path | None:
    global _attempt_dir, _resolved
    if not _resolved:
        _resolved = True
        location = os.environ.get("LAB_ATTEMPT_DIR")
        if location and _is_main_process():
            _attempt_dir = Path(location)
    return _attempt_dir


def init(run_id: str, *, root: str | Path = ".", command: list[str] | None = None) -> Path:
    """Open a new attempt of `run_id` (outside a launch) and make it the current one; returns its folder."""
    global _attempt_dir, _resolved, _owns_attempt
    from lab.store import Store

    store = Store.find(Path(root))
    attempt = store.begin_attempt(run_id, command=command or ["python", *sys.argv], pid=os.getpid())
    finish()
    _attempt_dir, _resolved, _owns_attempt = attempt, True, True
    _catch_uncaught_exceptions()
    atexit.unregister(finish)
    atexit.register(finish)
    return attempt


def _catch_uncaught_exceptions() -> None:
    """Until `finish`, an uncaught exception ends the init-opened attempt `failed` (`killed` for Ctrl-C)."""
    global _previous_excepthook
    if _previous_excepthook is None:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _on_uncaught_exception


def _on_uncaught_exception(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    (_previous_excepthook or sys.__excepthook__)(kind, error, traceback)
    finish("killed" if issubclass(kind, KeyboardInterrupt) else "failed")


def _store() -> tuple[Store, str, int]:
    """The store, run id and number of the current attempt, looked up once per attempt."""
    global _attempt_store
    attempt = _current()
    if _attempt_store is None or _attempt_store[0] != attempt:
        from lab.store import Store

        record = read_json(attempt / "attempt.json", {})
        _attempt_store = (attempt, Store.find(attempt), record["run"], record["number"])
    return _attempt_store[1:]


def active() -> bool:
    """Whether calls are recorded (an attempt is current and this is the main process)."""
    return _current() is not None


def attempt_dir() -> Path | None:
    """The current attempt's folder, or None."""
    return _current()


def artefacts_dir() -> Path | None:
    """Where heavy files of this attempt belong (git-ignored): `LAB_ARTEFACTS_DIR`, or None outside the lab."""
    location = os.environ.get("LAB_ARTEFACTS_DIR")
    if location:
        return Path(location)
    attempt = _current()
    if attempt is None:
        return None
    record = read_json(attempt / "attempt.json", {})
    return Path(record["artefacts"]) if record.get("artefacts") else None


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    clean = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        clean[key] = value
    return clean


def log(step: int, **metrics: Any) -> None:
    """Append one row of metrics at `step` to the attempt's metrics.jsonl (and W&B when on)."""
    global _metrics_stream
    attempt = _current()
    if attempt is None:
        return
    if _metrics_stream is None:
        _metrics_stream = open(attempt / "metrics.jsonl", "a", buffering=1, encoding="utf-8")
    row = _clean(metrics)
    _metrics_stream.write(json.dumps({"step": int(step), "time": round(time.time(), 3), **row}) + "\n")
    run = _wandb()
    if run is not None:
        run.log({key: value for key, value in row.items() if isinstance(value, (int, float))}, step=int(step))


def summary(**values: Any) -> None:
    """Merge `values` into the attempt's summary.json (final and best figures)."""
    attempt = _current()
    if attempt is None:
        return
    path = attempt / "summary.json"
    merged = {**read_json(path, {}), **_clean(values)}
    write_json(path, merged)
    run = _wandb()
    if run is not None:
        run.summary.update(_clean(values))


def event(kind: str, **data: Any) -> None:
    """Record an event (for example a health finding) on the run, with a timestamp and the attempt number."""
    if _current() is None:
        return
    store, run_id, number = _store()
    store.add_event(run_id, kind, attempt=number, **_clean(data))
    run = _wandb()
    if run is not None and kind == "health":
        run.alert(title=str(data.get("rule", kind)), text=str(data.get("message", "")))


def checkpoint(kind: str, path: str | Path, step: int, **info: Any) -> None:
    """Record that a checkpoint of `kind` ('best', 'last') was written to `path` at `step`."""
    attempt = _current()
    if attempt is None:
        return
    entry = {"path": str(path), "step": int(step), **_clean(info)}

    def add_checkpoint(record: dict) -> dict:
        return {"checkpoints": {**record.get("checkpoints", {}), kind: entry}}

    _store()[0].update_attempt(attempt, merge=add_checkpoint)


def _wandb() -> Any:
    global _wandb_run
    if _wandb_run is None and os.environ.get("LAB_WANDB") == "1" and _current() is not None:
        import wandb

        _wandb_run = wandb.init(
            id=os.environ.get("WANDB_RUN_ID"),
            project=os.environ.get("WANDB_PROJECT"),
            entity=os.environ.get("WANDB_ENTITY") or None,
            group=os.environ.get("WANDB_RUN_GROUP") or None,
            notes=os.environ.get("WANDB_NOTES") or None,
            resume="allow",
        )
    return _wandb_run


def finish(status: str = "finished") -> None:
    """Close the streams; an attempt opened by `init` is marked `status` (exit code 0 only for `finished`)."""
    global _metrics_stream, _wandb_run, _attempt_dir, _owns_attempt, _resolved, _attempt_store, _previous_excepthook
    if _metrics_stream is not None:
        _metrics_stream.close()
        _metrics_stream = None
    if _wandb_run is not None:
        _wandb_run.finish()
        _wandb_run = None
    if _owns_attempt and _attempt_dir is not None:
        store = _store()[0]
        store.end_attempt(_attempt_dir, exit_code=EXIT_CODES.get(status), status=status)
        _owns_attempt = False
        _attempt_dir, _resolved = None, False
    _attempt_store = None
    if _previous_excepthook is not None:
        if sys.excepthook is _on_uncaught_exception:
            sys.excepthook = _previous_excepthook
        _previous_excepthook = None
