"""Log metrics from any training script to the current lab attempt.

    from lab import tracker
    tracker.log(step, **{"train/loss": 0.7, "train/lr": 1e-3})
    tracker.summary(best_per=0.21)

Inside `lab launch` the current attempt is found from `LAB_ATTEMPT_DIR`. Outside it, `tracker.init("nsd_001")`
opens a new attempt of that run; with neither, every call is a no-op so a script runs unchanged without the
lab. Only the main process of a multi-process launch writes (RANK 0). Metrics are mirrored to W&B when the
launch turned W&B on (`LAB_WANDB=1`); W&B trouble (not installed, failing to start or to log) costs one
warning line and never the run: the lab's own records go on.

The module functions are a facade over one `Tracker`, the current one (`current()`); code that manages
attempts itself makes its own `Tracker(attempt_dir)`.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lab.records.files import fresh_line_prefix, read_json

if TYPE_CHECKING:
    from lab.records.store import Store

EXIT_CODES = {"finished": 0, "failed": 1, "killed": 130}  # what `finish(status)` records for an init attempt


EXIT_POLL_SECONDS = 0.2  # how often the W&B worker looks whether the script's main thread has ended
MAX_EXACT = 2**53  # integers beyond this are stored as floats (pages and W&B read them as floats anyway)


def is_main_process() -> bool:
    """Whether this is the main process of a launch (RANK and LOCAL_RANK 0 or unset)."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def clean(metrics: dict[str, Any]) -> dict[str, Any]:
    """Values as JSON can hold them: tensors and numpy scalars as numbers, non-finite floats as strings."""
    cleaned = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            try:
                value = value.item()
            except (ValueError, RuntimeError):  # an array of several values stays as it is (and is skipped)
                pass
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT:
            value = float(value) if abs(value) < 1e308 else (math.inf if value > 0 else -math.inf)
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        cleaned[key] = value
    return cleaned


def numbers(metrics: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the metrics that are numbers, cleaned; the names of those that are not, which a metric row skips)."""
    kept, skipped = {}, []
    for key, value in clean(metrics).items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
                isinstance(value, str) and value not in ("nan", "inf", "-inf")):
            skipped.append(key)
        else:
            kept[key] = value
    return kept, skipped


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"lab: warning: {message}", file=sys.stderr, flush=True)


class WandbMirror:
    """W&B's copy of an attempt, sent from a background thread so W&B's cost stays off the training thread.

    The W&B run starts on first use from the launch's WANDB_* variables; later calls are queued in order and
    applied by one worker; `finish` drains the queue. The lab's own records are written before a call is
    queued, so nothing recorded depends on W&B. Any failure (wandb missing, init or a call raising) prints one
    warning and turns the mirror off.
    """

    def __init__(self) -> None:
        self.run: Any = None
        self.failed = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # (action, args, kwargs), None to stop
        self._worker: threading.Thread | None = None

    def call(self, action: str, *args: Any, **kwargs: Any) -> None:
        """Queue `run.<action>(*args, **kwargs)`; `action` may be dotted ('summary.update')."""
        if self.failed:
            return
        if self._worker is None:
            try:
                self.run = self._start()  # on the calling thread: W&B sets up its own exit hooks as it starts
            except Exception as error:  # noqa: BLE001 - W&B must never stop a training run
                self._turn_off(error)
                return
            self._worker = threading.Thread(target=self._drain, name="lab-wandb")
            self._worker.start()
        self._queue.put((action, args, kwargs))

    def media(self, name: str, path: Path, step: int, kind: str, sample_rate: int | None) -> None:
        """Queue a file to send as wandb.Audio or wandb.Image."""
        self.call("media", name, path, step, kind, sample_rate)

    def finish(self) -> None:
        """Send what is queued, finish the W&B run, and stop the worker."""
        if self._worker is None:
            return
        self._queue.put(("finish", (), {}))
        self._queue.put(None)
        self._worker.join()
        self._worker = None

    def _drain(self) -> None:
        """Apply queued calls in order until `finish`, or until the script's main thread has ended and the
        queue is empty: the worker is not a daemon, so the interpreter waits for it to send everything and
        finish the W&B run before it exits (and before W&B's own exit hook runs)."""
        while True:
            try:
                item = self._queue.get(timeout=EXIT_POLL_SECONDS)
            except queue.Empty:
                if threading.main_thread().is_alive():
                    continue
                item = ("finish", (), {})
                self._queue.put(None)
            if item is None:
                return
            if not self.failed or item[0] == "finish":
                self._apply(*item)

    def _apply(self, action: str, args: tuple, kwargs: dict) -> None:
        try:
            if action == "finish":
                if self.run is not None:
                    self.run.finish()
                    self.run = None
                return
            if self.run is None:
                return
            if action == "media":
                name, path, step, kind, sample_rate = args
                import wandb

                item = wandb.Audio(str(path), sample_rate=sample_rate) if kind == "audio" else wandb.Image(str(path))
                action, args, kwargs = "log", ({name: item},), {"step": int(step)}
            target = self.run
            for part in action.split("."):
                target = getattr(target, part)
            target(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - W&B must never stop a training run
            self._turn_off(error)

    def _turn_off(self, error: Exception) -> None:
        self.failed = True
        warn(f"W&B is off for the rest of this run ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
             "; the lab's own records go on")

    @staticmethod
    def _start() -> Any:
        import wandb

        return wandb.init(
            id=os.environ.get("WANDB_RUN_ID"),
            project=os.environ.get("WANDB_PROJECT"),
            entity=os.environ.get("WANDB_ENTITY") or None,
            group=os.environ.get("WANDB_RUN_GROUP") or None,
            notes=os.environ.get("WANDB_NOTES") or None,
            resume="allow",
        )


class Tracker:
    """Records of one attempt: metrics.jsonl, summary.json, events, checkpoints and media, mirrored to W&B.

    `attempt_dir` None makes every call a no-op (no lab, or not the main process). An attempt the tracker
    opened itself (`owns`) is closed by `finish`.
    """

    def __init__(self, attempt_dir: Path | None, *, wandb: bool = False, owns: bool = False):
        self.attempt_dir = Path(attempt_dir) if attempt_dir is not None else None
        self.owns = owns
        self.wandb = WandbMirror() if wandb and self.attempt_dir is not None else None
        self._metrics: TextIO | None = None
        self._warned: set[str] = set()
        self._identity: tuple[Store, str, int] | None = None
        self._keys: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return self.attempt_dir is not None

    def _plain_fields(self, metrics: dict[str, Any]) -> str | None:
        """The row's JSON fields when every value is a plain number (the common case, written without a JSON
        encoder), else None."""
        parts = []
        for key, value in metrics.items():
            kind = type(value)
            if kind is float and value - value == 0 or kind is int and -MAX_EXACT <= value <= MAX_EXACT:
                parts.append(f", {self._json_key(key)}: {value!r}")
            else:
                return None
        return "".join(parts)

    def _json_key(self, key: str) -> str:
        """A metric name as a JSON string, encoded once per name."""
        encoded = self._keys.get(key)
        if encoded is None:
            encoded = self._keys[key] = json.dumps(str(key))
        return encoded

    def identity(self) -> tuple[Store, str, int]:
        """The store, run id and attempt number, looked up once."""
        if self._identity is None:
            from lab.records.store import Store

            record = read_json(self.attempt_dir / "attempt.json", {})
            root = os.environ.get("LAB_ROOT")  # a running attempt's folder is in .git/lab, not under the lab
            store = Store(Path(root)) if root else Store.find(self.attempt_dir)
            self._identity = (store, record["run"], record["number"])
        return self._identity

    def artefacts_dir(self) -> Path | None:
        """Where heavy files of this attempt belong (git-ignored)."""
        location = os.environ.get("LAB_ARTEFACTS_DIR")
        if location:
            return Path(location)
        if self.attempt_dir is None:
            return None
        record = read_json(self.attempt_dir / "attempt.json", {})
        return Path(record["artefacts"]) if record.get("artefacts") else None

    def log(self, step: int, **metrics: Any) -> None:
        """Append one row of metrics at `step` to metrics.jsonl (and W&B when on).

        Values that are not single numbers are skipped with one warning per name; a step that is not a whole
        number from 0 to 2**53 skips the row with a warning.
        """
        if self.attempt_dir is None:
            return
        if isinstance(step, bool) or not isinstance(step, int) and not float(step).is_integer() \
                or not 0 <= step <= MAX_EXACT:
            warn(f"tracker.log skips a row with step {step!r}: steps are whole numbers from 0 to 2**53")
            return
        if self._metrics is None:
            path = self.attempt_dir / "metrics.jsonl"
            with open(path, "a+b") as probe:
                prefix = fresh_line_prefix(probe)
            self._metrics = open(path, "a", buffering=1, encoding="utf-8")
            self._metrics.write(prefix)
        fields = self._plain_fields(metrics)
        if fields is None:
            row, skipped = numbers(metrics)
            fresh = [key for key in skipped if key not in self._warned]
            if fresh:
                self._warned.update(fresh)
                warn(f"tracker.log skips values that are not single numbers: {', '.join(fresh)} "
                     "(log a float per key)")
            fields = "".join(f", {self._json_key(key)}: {json.dumps(value)}" for key, value in row.items())
        else:
            row = metrics
        self._metrics.write(f'{{"step": {int(step)}, "time": {time.time():.3f}{fields}}}\n')
        if self.wandb is not None:
            finite = {key: value for key, value in row.items() if isinstance(value, (int, float))}
            self.wandb.call("log", finite, step=int(step))

    def config(self, values: Any) -> dict:
        """Record the script's own config (a dict, or an argparse Namespace) in the attempt's config.json, where
        the pages diff it, and in W&B's run config. A key the lab set (`lab launch --set`) to another value
        is named in a warning. Returns the recorded config."""
        if not isinstance(values, dict):
            values = vars(values)
        reported = clean(dict(values))
        if self.attempt_dir is None:
            return reported
        from lab.records.config import flatten, merge
        from lab.records.files import write_json

        path = self.attempt_dir / "config.json"
        recorded = read_json(path, {})
        given, told = flatten(recorded), flatten(reported)
        differing = sorted(key for key in given.keys() & told.keys() if given[key] != told[key])
        if differing:
            warn("the script reports " + ", ".join(f"{key}={told[key]!r}" for key in differing[:5]) +
                 " but the lab recorded " + ", ".join(f"{given[key]!r}" for key in differing[:5]) +
                 "; the pages show what the script reports")
        store = self.identity()[0]
        write_json(path, store.redact(merge(recorded, reported)))
        if self.wandb is not None:
            self.wandb.call("config.update", reported, allow_val_change=True)
        return reported

    def summary(self, **values: Any) -> None:
        """Merge `values` into summary.json (final and best figures)."""
        if self.attempt_dir is None:
            return
        from lab.records.files import write_json

        path = self.attempt_dir / "summary.json"
        write_json(path, {**read_json(path, {}), **clean(values)})
        if self.wandb is not None:
            self.wandb.call("summary.update", clean(values))

    def event(self, kind: str, **data: Any) -> None:
        """Record an event (a health finding, an init_from report) on the run, with the attempt number."""
        if self.attempt_dir is None:
            return
        store, run_id, number = self.identity()
        store.add_event(run_id, kind, attempt=number, attempt_key=self.attempt_dir.name, **clean(data))
        if self.wandb is not None and kind == "health":
            self.wandb.call("alert", title=str(data.get("rule", kind)), text=str(data.get("message", "")))

    def checkpoint(self, kind: str, path: str | Path, step: int, **info: Any) -> None:
        """Record that a checkpoint of `kind` ('best', 'last') was written to `path` at `step`."""
        if self.attempt_dir is None:
            return
        entry = {"path": str(path), "step": int(step), **clean(info)}

        def add_checkpoint(record: dict) -> dict:
            return {"checkpoints": {**record.get("checkpoints", {}), kind: entry}}

        self.identity()[0].update_attempt(self.attempt_dir, merge=add_checkpoint)

    def media(self, name: str, path: str | Path, step: int, *, kind: str = "audio",
              sample_rate: int | None = None) -> None:
        """Record a sample file (audio or image) in media.jsonl, and send it to W&B when on."""
        if self.attempt_dir is None:
            return
        from lab.records.files import append_jsonl

        entry = {"step": int(step), "name": name, "path": str(path), "kind": kind, "time": round(time.time(), 3)}
        if sample_rate:
            entry["sample_rate"] = sample_rate
        append_jsonl(self.attempt_dir / "media.jsonl", entry)
        if self.wandb is not None:
            self.wandb.media(name, Path(path), step, kind, sample_rate)

    def finish(self, status: str = "finished") -> None:
        """Close the streams; an attempt this tracker opened is marked `status`."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.wandb is not None:
            self.wandb.finish()
        if self.owns and self.attempt_dir is not None:
            self.identity()[0].end_attempt(self.attempt_dir, exit_code=EXIT_CODES.get(status), status=status)
            self.owns = False


_current: Tracker | None = None
_previous_excepthook: Any = None


def current() -> Tracker:
    """The current tracker: set by `use` or `init`, else the launch's attempt (`LAB_ATTEMPT_DIR`), else a no-op."""
    global _current
    if _current is None:
        location = os.environ.get("LAB_ATTEMPT_DIR")
        attempt = Path(location) if location and is_main_process() else None
        _current = Tracker(attempt, wandb=os.environ.get("LAB_WANDB") == "1")
    return _current


def use(tracker: Tracker | None) -> None:
    """Make `tracker` the current one, finishing the previous; None goes back to the environment's attempt."""
    global _current
    if _current is not None and _current is not tracker:
        _current.finish()
    _current = tracker


def init(run_id: str, *, root: str | Path = ".", command: list[str] | None = None) -> Path:
    """Open a new attempt of `run_id` (outside a launch) and make it the current one; returns its folder."""
    from lab.records.store import Store

    store = Store.find(Path(root))
    attempt = store.begin_attempt(run_id, command=command or ["python", *sys.argv], pid=os.getpid())
    use(Tracker(attempt, owns=True))
    _catch_uncaught_exceptions()
    atexit.unregister(finish)
    atexit.register(finish)
    return attempt


def _catch_uncaught_exceptions() -> None:
    """Until `finish`, an uncaught exception ends the init-opened attempt `failed` (`killed` for Ctrl-C), and
    SIGTERM (when the script has no handler of its own) ends it `killed`."""
    global _previous_excepthook
    if _previous_excepthook is None:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _on_uncaught_exception
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_terminate)


def _on_terminate(signum: int, frame: Any) -> None:
    """End the init-opened attempt `killed`, then die of SIGTERM as the script would have."""
    finish("killed")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _on_uncaught_exception(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    (_previous_excepthook or sys.__excepthook__)(kind, error, traceback)
    finish("killed" if issubclass(kind, KeyboardInterrupt) else "failed")


def active() -> bool:
    """Whether calls are recorded (an attempt is current and this is the main process)."""
    return current().active


def attempt_dir() -> Path | None:
    """The current attempt's folder, or None."""
    return current().attempt_dir


def artefacts_dir() -> Path | None:
    """Where heavy files of this attempt belong (git-ignored): `LAB_ARTEFACTS_DIR`, or None outside the lab."""
    return current().artefacts_dir()


def log(step: int, **metrics: Any) -> None:
    """Append one row of metrics at `step` to the current attempt (see `Tracker.log`)."""
    current().log(step, **metrics)


def config(values: Any) -> dict:
    """Record the script's config (a dict or an argparse Namespace) on the current attempt (see `Tracker.config`)."""
    return current().config(values)


def summary(**values: Any) -> None:
    """Merge `values` into the current attempt's summary.json."""
    current().summary(**values)


def event(kind: str, **data: Any) -> None:
    """Record an event on the current attempt's run."""
    current().event(kind, **data)


def checkpoint(kind: str, path: str | Path, step: int, **info: Any) -> None:
    """Record a checkpoint of the current attempt."""
    current().checkpoint(kind, path, step, **info)


def media(name: str, path: str | Path, step: int, *, kind: str = "audio", sample_rate: int | None = None) -> None:
    """Record a sample file of the current attempt."""
    current().media(name, path, step, kind=kind, sample_rate=sample_rate)


def finish(status: str = "finished") -> None:
    """Close the current tracker (an attempt opened by `init` is marked `status`) and forget it."""
    global _current, _previous_excepthook
    if _current is not None:
        _current.finish(status)
        _current = None
    if _previous_excepthook is not None:
        if sys.excepthook is _on_uncaught_exception:
            sys.excepthook = _previous_excepthook
        _previous_excepthook = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is _on_terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
