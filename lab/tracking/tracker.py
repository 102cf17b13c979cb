"""Log metrics from any training script to the current lab attempt.

    from lab import tracker
    tracker.log(step, **{"train/loss": 0.7, "train/lr": 1e-3})
    tracker.summary(best_per=0.21)

Inside `lab launch` the current attempt is found from `LAB_ATTEMPT_DIR`. Outside it, `tracker.init("nsd_001")`
opens a new attempt of that run; with neither, every call is a no-op so a script runs unchanged without the
lab. Only the main process of a multi-process launch writes (rank 0, from whichever launcher set the ranks:
lab.tracking.ranks). Metrics are mirrored to W&B when the
launch turned W&B on (`LAB_WANDB=1`); W&B trouble (not installed, failing to start or to log, a server that
cannot be reached or does not answer) costs one warning line and never the run: the lab's own records go on, and
no call of the script waits on W&B (its start, steps and exit are bounded, see WandbMirror). A tracker call never
raises into the script: bad input skips what it cannot record with one warning.

The module functions are a facade over one `Tracker`, the current one (`current()`); code that manages
attempts itself makes its own `Tracker(attempt_dir)`.
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

from lab.records.files import fresh_line_prefix, read_json
from lab.tracking.ranks import is_main_process

if TYPE_CHECKING:
    from lab.records.store import Store

EXIT_CODES = {"finished": 0, "failed": 1, "killed": 130}  # what `finish(status)` records for an init attempt


INIT_TIMEOUT_SECONDS = 30.0  # W&B's start (wandb.init), in the background; WANDB_INIT_TIMEOUT overrides it
EXIT_TIMEOUT_SECONDS = 30.0  # how long the script's exit waits for W&B to send what is queued and finish
MAX_EXACT = 2**53  # integers beyond this are stored as floats (pages and W&B read them as floats anyway)


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


def set_keys(record: dict) -> set[str]:
    """The dotted keys `--set` handed the attempt's script (attempt.json's `set`)."""
    return set(record.get("set") or {})


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


def whole_step(step: Any) -> int | None:
    """`step` as an int when it is a whole number from 0 to 2**53 (int, whole float, 0-d tensor or numpy
    scalar, numeric string), else None."""
    if hasattr(step, "item"):
        try:
            step = step.item()
        except (ValueError, RuntimeError):
            return None
    if isinstance(step, str):
        try:
            step = float(step.strip())
        except ValueError:
            return None
    if isinstance(step, bool) or not isinstance(step, (int, float)) or isinstance(step, float) and \
            not step.is_integer():
        return None
    return int(step) if 0 <= step <= MAX_EXACT else None


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"lab: warning: {message}", file=sys.stderr, flush=True)


class WandbMirror:
    """W&B's copy of an attempt, started and sent from a background thread so W&B's cost stays off the script.

    The W&B run starts in the worker on first use from the launch's WANDB_* variables (wandb.init bounded by
    INIT_TIMEOUT_SECONDS); calls are queued in order meanwhile. Online, an unreachable server is found first (a
    TCP connect, 5 s at most): W&B then runs offline for this attempt, so `lab sync` sends it later. The lab's
    own records are written before a call is queued, so nothing recorded depends on W&B. At the script's exit
    (or `finish`) W&B gets EXIT_TIMEOUT_SECONDS to send what is queued and finish; past that the script exits
    anyway, and the link stays pending. Any failure prints one warning and turns the mirror off. `on_finished`
    (with whether W&B was online) is called once W&B has every call and has finished, so the attempt can say W&B's
    copy is complete (and, online, synced).
    """

    def __init__(self, on_finished: Callable[[bool], None] | None = None,
                 on_started: Callable[[str], None] | None = None,
                 on_mirroring: Callable[[bool], None] | None = None) -> None:
        self.run: Any = None
        self.failed = False
        self.on_finished, self.on_started, self.on_mirroring = on_finished, on_started, on_mirroring
        self._starting = False  # while the mirror's own wandb.init runs (in its worker)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # (action, args, kwargs), None to stop
        self._worker: threading.Thread | None = None
        self._done = threading.Event()

    def call(self, action: str, *args: Any, **kwargs: Any) -> None:
        """Queue `run.<action>(*args, **kwargs)`; `action` may be dotted ('summary.update')."""
        if self.failed:
            return
        if self._worker is None:
            # Here, not in the worker: this import registers the thread pools' exit hook, which W&B's start needs
            # and which cannot be registered once the interpreter has begun to exit (a short script).
            import concurrent.futures.thread  # noqa: F401
            if self.on_mirroring is not None:
                self.on_mirroring(True)
            self._worker = threading.Thread(target=self._drain, name="lab-wandb", daemon=True)
            self._worker.start()
            threading.Thread(target=self._finish_at_exit, name="lab-wandb-exit").start()
        self._queue.put((action, args, kwargs))

    @property
    def starting(self) -> bool:
        """Whether this thread is the mirror's worker inside its own wandb.init (capture leaves that run alone)."""
        return self._starting and threading.current_thread() is self._worker

    @property
    def started(self) -> bool:
        """Whether the mirror has opened its W&B run."""
        return self._worker is not None

    def media(self, name: str, path: Path, step: int, kind: str, sample_rate: int | None) -> None:
        """Queue a file to send as wandb.Audio or wandb.Image."""
        self.call("media", name, path, step, kind, sample_rate)

    def finish(self) -> None:
        """Send what is queued and finish the W&B run, waiting EXIT_TIMEOUT_SECONDS at most."""
        if self._worker is None or self._done.is_set():
            return
        self._queue.put(("finish", (), {}))
        self._queue.put(None)
        self._worker.join(EXIT_TIMEOUT_SECONDS)
        self._done.set()
        if self._worker.is_alive() and not self.failed:
            self.failed = True
            self._stop_service()
            warn(f"W&B did not finish within {EXIT_TIMEOUT_SECONDS:g} s, so the script exits without it: W&B's copy "
                 "may be incomplete and its link stays pending; the lab's own records are complete")

    def _finish_at_exit(self) -> None:
        """Wait (not as a daemon, so the interpreter waits too) for the script's main thread to end, then finish:
        before the interpreter's exit hooks, W&B's own among them, run."""
        threading.main_thread().join()
        self.finish()

    def _drain(self) -> None:
        """Start W&B, then apply queued calls in order until `finish`."""
        try:
            self._starting = True
            try:
                self.run = self._start()
            finally:
                self._starting = False
            if self.on_started is not None:
                self.on_started(self.run.settings.sync_dir)  # where W&B really put it (a read-only folder: /tmp)
        except Exception as error:  # noqa: BLE001 - W&B must never stop a training run
            self._turn_off(error)
            self._stop_service()
            self._record_not_mirrored()
        while (item := self._queue.get()) is not None:
            if not self.failed or item[0] == "finish":
                self._apply(*item)

    def _record_not_mirrored(self) -> None:
        """`on_mirroring(False)`: W&B never started, there is no copy to speak of. A failure to record that (a full
        disk) is one warning; the worker goes on draining its queue."""
        if self.on_mirroring is None:
            return
        try:
            self.on_mirroring(False)
        except Exception as error:  # noqa: BLE001 - the worker must live to drain the queue and finish
            warn(f"could not record that W&B never started ({type(error).__name__}: "
                 f"{' '.join(str(error).split())[:200]})")

    def _apply(self, action: str, args: tuple, kwargs: dict) -> None:
        try:
            if action == "finish":
                if self.run is not None:
                    online = self.run.settings.mode == "online" if hasattr(self.run, "settings") else False
                    self.run.finish()
                    self.run = None
                    if not self.failed and self.on_finished is not None:
                        self.on_finished(online)
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
    def _stop_service() -> None:
        """Kill W&B's service process after W&B failed to start or to finish: W&B's own exit hook waits for that
        process, which may wait forever on a server that does not answer. This reaches into wandb's internals
        (0.25: `wandb_setup.singleton()._connection._proc._process`) and does nothing where they differ."""
        try:
            from wandb.sdk import wandb_setup

            wandb_setup.singleton()._connection._proc._process.kill()
        except Exception:  # noqa: BLE001, S110 - another wandb version: its exit is its own
            pass

    @staticmethod
    def _start() -> Any:
        import wandb

        if os.environ.get("WANDB_MODE", "online") == "online":
            from lab.tracking.wandb_server import check_answering
            from lab.errors import LabError

            try:
                check_answering()
            except LabError as error:
                os.environ["WANDB_MODE"] = "offline"
                warn(f"{str(error).split(';')[0]}: W&B logs offline for this attempt and its link stays pending; "
                     "`lab sync` sends it later")
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT") or INIT_TIMEOUT_SECONDS)
        return wandb.init(
            id=os.environ.get("WANDB_RUN_ID"),
            project=os.environ.get("WANDB_PROJECT"),
            entity=os.environ.get("WANDB_ENTITY") or None,
            group=os.environ.get("WANDB_RUN_GROUP") or None,
            notes=os.environ.get("WANDB_NOTES") or None,
            resume="allow",
            settings=wandb.Settings(init_timeout=timeout),
        )


class Tracker:
    """Records of one attempt: metrics.jsonl, summary.json, events, checkpoints and media, mirrored to W&B.

    `attempt_dir` None makes every call a no-op (no lab, or not the main process). An attempt the tracker
    opened itself (`owns`) is closed by `finish`.
    """

    def __init__(self, attempt_dir: Path | None, *, wandb: bool = False, owns: bool = False):
        self.attempt_dir = Path(attempt_dir) if attempt_dir is not None else None
        self.owns = owns
        self.wandb = WandbMirror(self.mark_wandb_finished, self._mark_started, self._mark_mirrored) \
            if wandb and self.attempt_dir is not None else None
        self._metrics: TextIO | None = None
        self._rows_lost = 0  # rows a full disk refused
        self._warned: set[str] = set()
        self._identity: tuple[Store, str, int] | None = None
        self._keys: dict[str, str] = {}
        self._source: str | None = None  # the first source that logged a row
        self._owners: dict[str, str] = {}  # metric -> the source that logged it first, once a second source logs
        self._clock: tuple[float, float] | None = None  # (wall, monotonic) seconds at the first row

    @property
    def active(self) -> bool:
        return self.attempt_dir is not None

    def _now(self) -> float:
        """A row's time (Unix seconds): the wall clock at the first row plus the monotonic time since, so rows keep
        the order they were logged in when the wall clock steps (NTP, a resumed VM)."""
        if self._clock is None:
            self._clock = (time.time(), time.monotonic())
        return self._clock[0] + time.monotonic() - self._clock[1]

    def _mark_started(self, folder: str) -> None:
        """Record the folder of W&B's run on the attempt, for `lab sync`."""
        if (self.attempt_dir / "attempt.json").is_file():
            self.identity()[0].attempts.update(self.attempt_dir, merge=lambda record: {
                "wandb": {**record["wandb"], "folder": folder}} if record.get("wandb") else {})

    def _mark_mirrored(self, mirrored: bool) -> None:
        """Record whether the tracker sends this attempt to W&B (`mirrored`): True at its first call, before W&B
        has started (a copy cut short then is one W&B was meant to have), False when W&B failed to start."""
        if (self.attempt_dir / "attempt.json").is_file():
            self.identity()[0].attempts.update(self.attempt_dir, merge=lambda record: {
                "wandb": {**record["wandb"], "mirrored": mirrored}} if record.get("wandb") else {})

    def mark_wandb_finished(self, online: bool) -> None:
        """W&B's copy of the attempt is complete (its run finished with every row), and synced when W&B was
        online: called by the lab's W&B mirror, and by the capture when a script's own W&B run finishes."""
        def finished(record: dict) -> dict:
            if not record.get("wandb"):
                return {}
            return {"wandb": {**record["wandb"], "copy": "complete", **({"synced": True} if online else {})}}

        if self.attempt_dir is not None and (self.attempt_dir / "attempt.json").is_file():  # not a bare folder
            self.identity()[0].attempts.update(self.attempt_dir, merge=finished)

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

        Values that are not single numbers are skipped with one warning per name. The step may be an int, a
        whole float, a 0-d tensor or a numeric string ("7"); any other step (None, 2.5, "abc", -1) skips the
        row, with one warning the first time.
        """
        self.record(step, metrics)

    def record(self, step: int, metrics: dict[str, Any], source: str = "tracker.log") -> None:
        """`log` for any source of rows (`tracker.log`, `wandb.log`, `SummaryWriter.add_scalar`, printed
        lines). A metric is recorded from the first source that logs it; the same name from another source
        (a script logging it through both `tracker.log` and `wandb.log`) is dropped, so it is recorded once.
        Only `tracker.log` rows are mirrored to W&B (the others come from the script's own W&B or TensorBoard).
        """
        if self.attempt_dir is None:
            return
        given, step = step, whole_step(step)
        if step is None:
            if "\0step" not in self._warned:
                self._warned.add("\0step")
                warn(f"{source} skips a row with step {given!r}, and any later row with a bad step: steps are "
                     "whole numbers from 0 to 2**53")
            return
        if source != self._source or self._owners:
            if self._source is None:
                self._source = source
            else:
                metrics = self._owned(metrics, source)
                if not metrics:
                    return
        fields = self._plain_fields(metrics)
        if fields is None:
            row, skipped = numbers(metrics)
            fresh = [key for key in skipped if key not in self._warned]
            if fresh:
                self._warned.update(fresh)
                warn(f"{source} skips values that are not single numbers: {', '.join(fresh)} "
                     "(log a float per key)")
            fields = "".join(f", {self._json_key(key)}: {json.dumps(value)}" for key, value in row.items())
        else:
            row = metrics
        self._append_row(f'{{"step": {int(step)}, "time": {self._now():.3f}{fields}}}\n')
        if self.wandb is not None and source == "tracker.log":
            finite = {key: value for key, value in row.items() if isinstance(value, (int, float))}
            self.wandb.call("log", finite, step=int(step))

    def _open_metrics(self) -> TextIO:
        """metrics.jsonl, open for appending whole lines (a line a crash left unfinished is ended first)."""
        if self._metrics is None:
            path = self.attempt_dir / "metrics.jsonl"
            with open(path, "a+b") as probe:
                prefix = fresh_line_prefix(probe)
            self._metrics = open(path, "a", buffering=1, encoding="utf-8")
            self._metrics.write(prefix)
        return self._metrics

    def _append_row(self, line: str) -> None:
        """Append one row to metrics.jsonl. On a full disk the attempt's space reserve gives the script its bytes
        beyond what closing the attempt needs and the row is tried again; a row refused even then is counted, in
        place in the reserve (no free block needed), which the attempt's close records as `rows_lost`."""
        for last_try in (False, True):
            try:
                self._open_metrics().write(line)
                return
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                from lab.records.store.attempts import RESERVE_NAME, shrink_reserve

                stream, self._metrics = self._metrics, None
                try:
                    if stream is not None:
                        stream.close()  # what its buffer holds is the row refused
                except OSError:
                    pass
                if last_try or not shrink_reserve(self.attempt_dir / RESERVE_NAME):
                    break
        from lab.records.store.attempts import RESERVE_NAME, note_lost_rows

        self._rows_lost += 1
        note_lost_rows(self.attempt_dir / RESERVE_NAME, self._rows_lost)

    def _owned(self, metrics: dict[str, Any], source: str) -> dict[str, Any]:
        """The metrics of a row that `source` owns: it logged them first (a name written before a second
        source appeared belongs to the first source)."""
        owned = {}
        for key, value in metrics.items():
            owner = self._owners.get(key)
            if owner is None:
                owner = self._owners[key] = self._source if key in self._keys else source
            if owner == source:
                owned[key] = value
        return owned

    def config(self, values: Any, source: str = "tracker.config") -> dict:
        """Record the script's own config (a dict, or an argparse Namespace) in the attempt's config.json, where
        the pages diff it (and, from `tracker.config`, in W&B's run config). Returns the recorded values.

        The first report replaces a config the launcher only guessed from the command line's options
        (`config_source: "command"` in attempt.json); later reports merge in. A key of the run's config (what
        `--from`, `--baseline` or `--set` made it, passed as LAB_CONFIG) that the script reports with another
        value is named in a warning and in attempt.json's `config_disagreements`, which the pages show. A key
        `--set` handed the script (attempt.json's `set`) is kept with the value reported in `set_reported`: what
        confirms that the script ran with it.
        """
        if not isinstance(values, dict):
            values = vars(values)
        reported = clean(dict(values))
        if self.attempt_dir is None:
            return reported
        from lab.records.config import flatten, merge
        from lab.records.files import write_json

        store = self.identity()[0]
        record = read_json(self.attempt_dir / "attempt.json", {})
        path = self.attempt_dir / "config.json"
        guessed = record.get("config_source") == "command" and not record.get("config_reported")
        write_json(path, store.redact(merge({} if guessed else read_json(path, {}), reported)))
        disagreements = {}
        if record.get("config_source") == "run":
            intended, told = flatten(json.loads(os.environ.get("LAB_CONFIG") or "{}")), flatten(reported)
            disagreements = {key: {"lab": intended[key], "script": told[key]}
                             for key in sorted(intended.keys() & told.keys()) if intended[key] != told[key]}
        known = record.get("config_disagreements", {})
        fresh = {key: value for key, value in disagreements.items() if known.get(key) != value}
        if fresh:
            warn("the script reports " + ", ".join(f"{key}={value['script']!r}" for key, value in fresh.items()) +
                 " but the lab recorded " + ", ".join(f"{value['lab']!r}" for value in fresh.values()) +
                 "; the pages show what the script ran")
        handed = set_keys(record) & flatten(reported).keys()
        if fresh or handed or not record.get("config_reported"):
            def add_disagreements(now: dict) -> dict:
                known, told = now.get("config_disagreements", {}), flatten(reported)
                seen = {**now.get("set_reported", {}), **store.redact({key: told[key] for key in handed})}
                return {**({"config_disagreements": {**known, **store.redact(fresh)}} if fresh else {}),
                        **({"set_reported": seen} if handed else {})}

            store.attempts.update(self.attempt_dir, config_reported=True, merge=add_disagreements)
        if self.wandb is not None and source == "tracker.config":
            self.wandb.call("config.update", reported, allow_val_change=True)
        return reported

    def summary(self, **values: Any) -> None:
        """Merge `values` into summary.json (final and best figures), and into the W&B copy's summary."""
        self.merge_summary(values, mirror=True)

    def merge_summary(self, values: dict[str, Any], mirror: bool) -> None:
        """Merge `values` into summary.json; into W&B's copy where `mirror` (the script's own tracker call) or
        where that copy has already started: a tool's captured summary (TensorBoard's `add_hparams`) never opens
        a W&B run for a script that does not use W&B."""
        if self.attempt_dir is None:
            return
        from lab.records.files import write_json

        path = self.attempt_dir / "summary.json"
        write_json(path, {**read_json(path, {}), **clean(values)})
        if self.wandb is not None and (mirror or self.wandb.started):
            self.wandb.call("summary.update", clean(values))

    def event(self, kind: str, **data: Any) -> None:
        """Record an event (a health finding, an init_from report) on the run, with the attempt number; a health
        finding is also a W&B alert where the W&B copy has started (from the script's tracker calls)."""
        if self.attempt_dir is None:
            return
        store, run_id, number = self.identity()
        store.events.add(run_id, kind, attempt=number, attempt_key=self.attempt_dir.name, **clean(data))
        if self.wandb is not None and self.wandb.started and kind == "health":  # an alert opens no W&B run
            self.wandb.call("alert", title=str(data.get("rule", kind)), text=str(data.get("message", "")))

    def checkpoint(self, kind: str, path: str | Path, step: int, **info: Any) -> None:
        """Record that a checkpoint of `kind` ('best', 'last') was written to `path` at `step`."""
        if self.attempt_dir is None:
            return
        entry = {"path": str(path), "step": int(step), **clean(info)}

        def add_checkpoint(record: dict) -> dict:
            return {"checkpoints": {**record.get("checkpoints", {}), kind: entry}}

        self.identity()[0].attempts.update(self.attempt_dir, merge=add_checkpoint)

    def media(self, name: str, path: str | Path, step: int, *, kind: str = "audio",
              sample_rate: int | None = None) -> None:
        """Record a sample file (audio or image) in media.jsonl, and send it to W&B when on."""
        if self.attempt_dir is None:
            return
        from lab.records.files import append_jsonl

        entry = {"step": int(step), "name": name, "path": str(path), "kind": kind, "time": round(self._now(), 3)}
        if sample_rate:
            entry["sample_rate"] = sample_rate
        append_jsonl(self.attempt_dir / "media.jsonl", entry)
        if self.wandb is not None:
            self.wandb.media(name, Path(path), step, kind, sample_rate)

    def sample(self, name: str, data: bytes, step: int, *, suffix: str = ".flac", **fields: Any) -> Path | None:
        """Keep an encoded audio sample on the attempt (`lab.records.samples.keep`: in its records up to lab.json's
        size limit, else in its artefacts folder) with `fields` (sample_rate, statistics, settings) in its
        samples.jsonl line, and send it to W&B when on; returns where the file went (None without an attempt)."""
        if self.attempt_dir is None:
            return None
        from lab.records import samples
        from lab.records.store.names import now_iso

        store, run_id, _ = self.identity()
        artefacts = Path(read_json(self.attempt_dir / "attempt.json", {}).get("artefacts")
                         or store.artefacts_root / run_id / self.attempt_dir.name)
        file_name = f"{samples.file_stem(name)}_{samples.next_index(self.attempt_dir):03d}_step{int(step)}{suffix}"
        line = samples.keep(self.attempt_dir, artefacts, store.root, file_name, data,
                            {"step": int(step), "name": name, "source": "training", "time": now_iso(),
                             **clean(fields)}, samples.max_bytes(store.settings))
        path = samples.file_of(store.root, self.attempt_dir, line)
        if self.wandb is not None and path is not None:
            self.wandb.media(name, path, step, "audio", fields.get("sample_rate"))
        return path

    def finish(self, status: str = "finished") -> None:
        """Close the streams; an attempt this tracker opened is marked `status`."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.wandb is not None:
            self.wandb.finish()
        if self.owns and self.attempt_dir is not None:
            self.identity()[0].attempts.end(self.attempt_dir, exit_code=EXIT_CODES.get(status), status=status)
            self.owns = False


_current: Tracker | None = None
_previous_excepthook: Any = None
_failed_calls: set[str] = set()
_ended_by_cell: list[str] = []  # what a notebook cell that raised ended, until the next log or init says so


def shielded(function: Callable) -> Callable:
    """A module call that never raises into the script: an error costs one warning per function (the first)
    and the call is skipped; the script goes on."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the lab never stops the script it records
            if function.__name__ not in _failed_calls:
                _failed_calls.add(function.__name__)
                warn(f"tracker.{function.__name__} is skipped ({type(error).__name__}: "
                     f"{' '.join(str(error).split())[:200]}); the script goes on")
            return None

    return call


def current() -> Tracker:
    """The current tracker: set by `use` or `init`, else the launch's attempt (`LAB_ATTEMPT_DIR`), else a no-op."""
    global _current
    if _current is None:
        location = os.environ.get("LAB_ATTEMPT_DIR")
        attempt = Path(location) if location and is_main_process() else None
        _current = Tracker(attempt, wandb=os.environ.get("LAB_WANDB") == "1" and not is_worker_process())
    return _current


def is_worker_process() -> bool:
    """Whether Python's multiprocessing started this process (a DataLoader or Pool worker, spawned or forked):
    its rows are recorded, but it never starts W&B, whose run belongs to the process the launch started.
    (A script that starts its training ranks with torch.multiprocessing.spawn logs W&B from none of them.)"""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def use(tracker: Tracker | None) -> None:
    """Make `tracker` the current one, finishing the previous; None goes back to the environment's attempt."""
    global _current
    if _current is not None and _current is not tracker:
        _current.finish()
    _current = tracker
    _ended_by_cell.clear()


def init(run_id: str, *, root: str | Path = ".", command: list[str] | None = None) -> Path:
    """Open a new attempt of `run_id` (outside a launch) and make it the current one; returns its folder."""
    from lab.records.store import Store

    store = Store.find(Path(root))
    attempt = store.attempts.begin(run_id, command=command or ["python", *sys.argv], pid=os.getpid())
    use(Tracker(attempt, owns=True))
    _catch_uncaught_exceptions()
    atexit.unregister(finish)
    atexit.register(finish)
    return attempt


def _catch_uncaught_exceptions() -> None:
    """Until `finish`, an uncaught exception ends the init-opened attempt `failed` (`killed` for Ctrl-C), and
    SIGTERM (when the script has no handler of its own) ends it `killed`. In an IPython shell or kernel (a
    notebook), where a cell's exception never reaches sys.excepthook, a cell that raises ends it the same way."""
    global _previous_excepthook
    _watch_cells()
    if _previous_excepthook is None:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _on_uncaught_exception
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_terminate)


def _watch_cells() -> None:
    """Register `_after_cell` once on IPython's post_run_cell event, when this runs inside IPython."""
    shell_module = sys.modules.get("IPython")
    shell = shell_module.get_ipython() if shell_module is not None and hasattr(shell_module, "get_ipython") \
        else None
    if shell is not None and _after_cell not in shell.events.callbacks.get("post_run_cell", []):
        shell.events.register("post_run_cell", _after_cell)


def _after_cell(result: Any) -> None:
    """IPython's post_run_cell: a cell that raised (its `error_in_exec`) ends the init-opened attempt `failed`,
    `killed` for an interrupt, as the same exception would end a script; the next `init` opens the next one."""
    error = getattr(result, "error_in_exec", None)
    if error is not None and _current is not None and _current.owns:
        status = "killed" if isinstance(error, KeyboardInterrupt) else "failed"
        _, run_id, number = _current.identity()
        finish(status)
        _ended_by_cell[:] = [f"attempt {number} of {run_id} ended {status} when a cell raised"]


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


@shielded
def log(step: int, **metrics: Any) -> None:
    """Append one row of metrics at `step` to the current attempt (see `Tracker.log`). In a notebook whose
    attempt a raising cell ended, the first such row says so once on stderr (it is not recorded)."""
    tracker = current()
    if _ended_by_cell and not tracker.active:
        warn(f"this row is not recorded: {_ended_by_cell.pop()}; run tracker.init again to open the next attempt")
    tracker.log(step, **metrics)


@shielded
def config(values: Any) -> dict:
    """Record the script's config (a dict or an argparse Namespace) on the current attempt (see `Tracker.config`)."""
    return current().config(values)


@shielded
def summary(**values: Any) -> None:
    """Merge `values` into the current attempt's summary.json."""
    current().summary(**values)


@shielded
def event(kind: str, **data: Any) -> None:
    """Record an event on the current attempt's run."""
    current().event(kind, **data)


@shielded
def checkpoint(kind: str, path: str | Path, step: int, **info: Any) -> None:
    """Record a checkpoint of the current attempt."""
    current().checkpoint(kind, path, step, **info)


@shielded
def media(name: str, path: str | Path, step: int, *, kind: str = "audio", sample_rate: int | None = None) -> None:
    """Record a sample file of the current attempt."""
    current().media(name, path, step, kind=kind, sample_rate=sample_rate)


@shielded
def sample(name: str, data: bytes, step: int, *, suffix: str = ".flac", **fields: Any) -> Path | None:
    """Keep an encoded audio sample on the current attempt (see `Tracker.sample`)."""
    return current().sample(name, data, step, suffix=suffix, **fields)


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
