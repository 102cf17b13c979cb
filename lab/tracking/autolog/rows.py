"""Row streams of captured sources, and the guard that keeps the lab's failures out of the script.

A `Stream` builds rows the way W&B does: values logged at one step merge into one row, which is written (through
`tracker.current().record`, so the tracker's rules apply) when the step moves on, when the source commits, and
at exit. Steps that go back are kept, not dropped as W&B drops them. Each row also goes to the live health
checks (lab.health.rules.LiveMonitor) that cost a row little: a non-finite loss or gradient norm at once, the
evaluation rules on each row with `val/` keys (with the mean train loss since the previous one); the rules over
the whole stream run when the attempt ends (`launch.report_health`), as a script may log thousands of rows a
second. A finding becomes a health event and one line on stderr.
"""

from __future__ import annotations

import atexit
import math
import sys
from typing import Any, Callable

from lab.tracking import tracker

STREAMS: list[Stream] = []
MONITOR: list = []  # the live health monitor of the process, made on its first row
LOSSES = [0.0, 0]  # sum and count of the train losses since the last row the monitor saw
WHOLE_STREAM_NEVER = 2**62  # rows between the monitor's runs of every rule over all rows: never, live
state = {"on": True}


class Stream:
    """One source's pending row (`step`, `row`) and how it is written."""

    def __init__(self, source: str):
        self.source = source
        self.step: int | None = None
        self.row: dict[str, Any] = {}
        if not STREAMS:
            atexit.register(flush_all)  # before a library starts, so it runs after the library's exit hooks
        STREAMS.append(self)

    def add(self, step: int | None, values: dict, commit: bool = False) -> None:
        """Merge `values` into the row at `step` (None: the pending row's step, else 0); write the row first
        when `step` is another, and after when `commit`."""
        if step is None:
            step = 0 if self.step is None else self.step
        if step != self.step:
            self.flush()
            self.step = step
        self.row.update(values)
        if commit:
            self.flush()

    def flush(self) -> None:
        """Write the pending row, if any (callers guard it: see `guarded`)."""
        if self.row and state["on"]:
            row, self.row = self.row, {}
            tracker.current().record(self.step, row, self.source)
            watch(self.step, row)


def watch(step: int, row: dict) -> None:
    """Run the live health checks on a captured row that calls for them (an evaluation, a non-finite loss or
    gradient norm), with the mean train loss since the previous one; record and print what they find."""
    loss = row.get("train/loss")
    if type(loss) is float or type(loss) is int:
        if loss - loss != 0:  # nan or inf
            return _observe({"step": step, **row})
        LOSSES[0] += loss
        LOSSES[1] += 1
    grad_norm = row.get("train/grad_norm")
    if type(grad_norm) is float and grad_norm - grad_norm != 0 or any(key.startswith("val/") for key in row):
        mean = {"train/loss": LOSSES[0] / LOSSES[1]} if LOSSES[1] else {}
        LOSSES[:] = [0.0, 0]
        _observe({"step": step, **row, **mean})


def _observe(row: dict) -> None:
    if not MONITOR:
        from lab.health.rules import LiveMonitor

        MONITOR.append(LiveMonitor(every=WHOLE_STREAM_NEVER))
    for finding in MONITOR[0].observe(row):
        tracker.event("health", **finding.to_dict())
        print(f"lab: health [{finding.rule}] step {finding.step}: {finding.message}", file=sys.stderr, flush=True)


def flush_all() -> None:
    """Write every stream's pending row (at exit, and when a W&B run finishes)."""
    for stream in STREAMS:
        guarded(stream.flush)


def guarded(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """`function(*args)`, or None when it raises: then capture turns off for the rest of the process with one
    warning, and the script goes on (its own call has already run)."""
    if not state["on"]:
        return None
    try:
        return function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the lab never raises into the script it wraps
        state["on"] = False
        tracker.warn(f"capture is off for the rest of this process ({type(error).__name__}: "
                     f"{' '.join(str(error).split())[:200]}); the script goes on")
        return None


def jsonable(value: Any) -> Any:
    """A config value as JSON holds it: numbers, text, booleans, None, lists and dicts of them; anything else
    (a Path, an enum) as its text. Non-finite floats become text, as the tracker stores them."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return str(value)


def report_config(values: dict, source: str) -> None:
    """Record `values` (keys starting with '_' and callables left out) as the attempt's config."""
    config = {str(key): jsonable(value) for key, value in values.items()
              if not str(key).startswith("_") and not callable(value)}
    if config:
        tracker.current().config(config, source=source)
