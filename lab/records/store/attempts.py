"""Attempts: each launch of a run ("Test 1", "Test 2" ...) as a folder of its own, attempt.json its record.

An attempt opens in this clone's running folder (.git/lab/running/<id>/attempts/<key>/, out of git's reach) and
moves into logs/runs/<id>/attempts/<key>/ when it ends. Its key, `<UTC start>-<clone>`, is one no other clone can
make; Test numbers follow start order (see `Place.attempt_folders`). The launcher, the tracker and `lab sync`
all write attempt.json, each under the attempt's lock. Which attempt speaks for the run (its headline) and the
run's status are read from its attempts here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from lab.errors import LabError, warn
from lab.records.files import read_json, require_fields, write_json
from lab.records.store.events import Events
from lab.records.store.names import now_iso
from lab.records.store.place import Place
from lab.records.store.runs import Runs

FINAL_STATUSES = ("finished", "failed", "killed", "crashed")
ATTEMPT_FIELDS = {"number": int, "status": str, "run": str}
CLOCK_JUMP_S = 2  # a wall clock off from the monotonic one by this much (seconds) stepped during the attempt


def process_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this host."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def boot_id() -> str | None:
    """This boot's id (Linux's /proc/sys/kernel/random/boot_id): a monotonic clock reading means something only
    within one boot of one host. None where the system has none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def steady_seconds() -> float:
    """Seconds since boot by a clock that never steps and, unlike `time.monotonic`, keeps counting while the
    machine is suspended (Linux's CLOCK_BOOTTIME; `time.monotonic` elsewhere), so a laptop asleep mid-run is
    time that passed, not a clock step."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def clock_fields() -> dict:
    """What an attempt records at its start to time itself by a clock that never steps (`steady_seconds`, under
    the name "monotonic") and the boot it counts from."""
    return {"clock": {"monotonic": round(steady_seconds(), 3), "boot": boot_id()}}


def elapsed(record: dict, ended: str) -> dict:
    """How long an attempt took, {"seconds": s}: by the monotonic clock when it ends on the boot it started on,
    else by the wall clock (never below 0). A wall clock that stepped by CLOCK_JUMP_S or more meanwhile (NTP, a
    resumed VM) is noted as {"clock_jump_s": wall-clock seconds minus the seconds that passed}."""
    wall = (datetime.fromisoformat(ended) - datetime.fromisoformat(record["started"])).total_seconds()
    clock = record.get("clock") or {}
    now = steady_seconds()
    if clock.get("boot") == boot_id() and isinstance(clock.get("monotonic"), (int, float)) \
            and now >= clock["monotonic"]:
        seconds = now - clock["monotonic"]
    else:
        seconds = max(wall, 0.0)
    fields = {"seconds": round(seconds, 1)}
    if abs(wall - seconds) >= CLOCK_JUMP_S:
        fields["clock_jump_s"] = round(wall - seconds)
    return fields


def intact_checkpoint(path: Path) -> bool:
    """Whether a torch checkpoint file is whole: torch.save writes a zip archive whose directory sits at the
    end, so a truncated file fails this check without torch being imported."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


RESERVE_NAME = ".space-reserve"  # in a running attempt's folder: deleted first when the attempt ends
RESERVE_BYTES = 512 * 1024  # what closing an attempt writes (attempt.json, events, printed rows, health), with room
RESERVE_KEPT = 64 * 1024  # what the reserve keeps once the script's own rows needed the rest (the closing writes)


def reserve_space(path: Path) -> None:
    """Allocate RESERVE_BYTES at `path` (real blocks, not a sparse file), so that an attempt whose script filled the
    disk can still close as what it was once the file is deleted; nothing when the disk has no room even now."""
    try:
        with open(path, "xb") as stream:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(stream.fileno(), 0, RESERVE_BYTES)
            else:  # macOS: zeros written are blocks allocated
                stream.write(bytes(RESERVE_BYTES))
    except OSError:
        path.unlink(missing_ok=True)  # no room even now: the attempt opens without it


def shrink_reserve(path: Path) -> bool:
    """Give the script the reserve's bytes beyond RESERVE_KEPT (its rows come before the lab's closing writes);
    returns whether any were freed."""
    try:
        if path.stat().st_size <= RESERVE_KEPT:
            return False
        os.truncate(path, RESERVE_KEPT)
        return True
    except OSError:
        return False


def note_lost_rows(path: Path, count: int) -> None:
    """Write `count` (rows the full disk refused) in place at the start of the reserve, which needs no free block;
    nothing where the reserve is gone."""
    try:
        with open(path, "r+b") as stream:
            stream.write(json.dumps({"rows_lost": count}).encode() + b"\n")
    except OSError:
        pass


def lost_rows(path: Path) -> int:
    """The count `note_lost_rows` left in the reserve at `path` (0 for none, or no reserve)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(64).split(b"\n")[0]
        return int(json.loads(head)["rows_lost"]) if head.startswith(b"{") else 0
    except (OSError, ValueError, KeyError):
        return 0


class Attempts:
    """The attempts of each run of a lab (`store.attempts`)."""

    def __init__(self, place: Place, runs: Runs, events: Events):
        self.place, self.runs, self.events = place, runs, events

    def numbers(self, run_id: str) -> list[int]:
        """The run's Test numbers, 1 to the number of attempts (see `Place.attempt_folders` for their order)."""
        return list(range(1, len(self.place.attempt_folders(run_id)) + 1))

    def begin(self, run_id: str, *, command: list[str], pid: int, **fields: Any) -> Path:
        """Open a new attempt of `run_id` in this clone's running folder; returns that folder (status
        `running`). Its name, `<UTC start>-<clone>`, is one no other clone can make. LabError for no such run."""
        command, fields = self.place.redact(command), self.place.redact(fields)
        with self.place.lock(f"attempt_{run_id}"):  # `lab rm` holds it too: a run is removed or gets the attempt
            self.runs.load(run_id)
            running = self.place.running_dir(run_id)
            running.mkdir(parents=True, exist_ok=True)
            taken = {folder.name for folder in self.place.attempt_folders(run_id)}
            stem = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{self.place.clone_id[:8]}"
            key, copy = stem, 1
            while key in taken:  # a second launch in the same second
                copy += 1
                key = f"{stem}-{copy}"
            partial = running / f".{key}.{os.getpid()}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            record = {
                "run": run_id, "key": key, "number": len(taken) + 1, "command": command, "status": "running",
                "started": now_iso(), "clone": self.place.clone_id, "host": socket.gethostname(), "pid": pid,
                "artefacts": str(self.place.artefacts_root / run_id / key), **clock_fields(), **fields,
            }
            write_json(partial / "attempt.json", record)
            reserve_space(partial / RESERVE_NAME)
            folder = running / key
            partial.rename(folder)  # the attempt appears whole, record included, or not at all
            self.place.forget_folders(run_id)
        self.events.add(run_id, "attempt_started", attempt=record["number"], attempt_key=key, note=fields.get("note"))
        return folder

    def update(self, attempt_dir: Path, merge: Callable[[dict], dict] | None = None, **fields: Any) -> dict:
        """Merge `fields` (redacted; and whatever `merge(record)` returns) into attempt.json, under the attempt's
        lock; returns the record written. The launcher, the trainer's tracker and `lab sync` all write this
        record; the lock keeps their updates."""
        path = Path(attempt_dir) / "attempt.json"
        with self.place.lock(f"attempt_{path.parent.parent.parent.name}_{path.parent.name}"):
            record = {**read_json(path, {}), **self.place.redact(fields)}
            if merge is not None:
                record.update(merge(record))
            write_json(path, record)
        return record

    def end(self, attempt_dir: Path, *, exit_code: int | None, status: str) -> dict:
        """Mark an attempt ended with `status` (one of FINAL_STATUSES), move it from the running folder into
        logs/ (where git carries it), and record the event; returns its record. Rows of metrics.jsonl a full disk
        refused the script are counted in it as `rows_lost`.

        An attempt that has already ended is left as it is (two processes may notice a crash at once).
        """
        ended: list[bool] = []

        def close(record: dict) -> dict:
            if record.get("status") != "running":
                ended.append(True)
                return {}
            ended_at = now_iso()
            return {"status": status, "ended": ended_at, "exit_code": exit_code, **elapsed(record, ended_at),
                    **({"rows_lost": lost} if lost else {})}

        attempt_dir = Path(attempt_dir)
        lost = lost_rows(attempt_dir / RESERVE_NAME)  # rows of metrics.jsonl a full disk refused the script
        (attempt_dir / RESERVE_NAME).unlink(missing_ok=True)  # the room its closing writes need on a full disk
        record = self.update(attempt_dir, merge=close)
        self.settle(attempt_dir)
        if not ended:
            number = self.place.attempt_number(record["run"], attempt_dir.name) or record.get("number")
            self.events.add(record["run"], f"attempt_{status}", attempt=number, attempt_key=attempt_dir.name,
                            exit_code=exit_code)
        return record

    def settle(self, attempt_dir: Path) -> Path:
        """Move an ended attempt from this clone's running folder to logs/runs/<id>/attempts/ (to the removed
        run's archive folder, `Place.home`, when the run was removed while it ran); returns where it now is."""
        attempt_dir = Path(attempt_dir)
        run_id = attempt_dir.parent.parent.name
        if attempt_dir.parent != self.place.running_dir(run_id) or not attempt_dir.is_dir():
            return attempt_dir
        target = self.place.home(run_id) / "attempts" / attempt_dir.name
        (attempt_dir / RESERVE_NAME).unlink(missing_ok=True)
        with self.place.lock(f"attempt_{run_id}_{attempt_dir.name}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(attempt_dir, target)
            self.place.forget_folders(run_id)
        with contextlib.suppress(OSError):
            attempt_dir.parent.rmdir()
            attempt_dir.parent.parent.rmdir()
        return target

    def load(self, run_id: str, number: int) -> dict:
        """attempt.json of Test `number` (its `number` and `key` as they are now), with this clone's attempt
        whose process has vanished turned into `crashed`; another clone's attempt is never changed. LabError
        for no such attempt, RecordError for a record that cannot be read."""
        folder = self.place.attempt_dir(run_id, number)
        record = read_json(folder / "attempt.json")
        if record is None:
            raise LabError(f"run {run_id} has no attempt {number}")
        require_fields(folder / "attempt.json", record, ATTEMPT_FIELDS)
        if record.get("status") == "running" and self.place.mine(record) and not process_alive(record.get("pid")):
            record = self.end(folder, exit_code=None, status="crashed")
        return {**record, "number": number, "key": folder.name}

    def of(self, run_id: str) -> list[dict]:
        """Every attempt of the run (`load` of each), in Test order."""
        return [self.load(run_id, number) for number in self.numbers(run_id)]

    def run_status(self, run_id: str) -> str:
        """`created` before any attempt, `running` while any attempt runs, else the latest attempt's status."""
        return run_status_of(self.of(run_id))

    def latest_with_metrics(self, run_id: str) -> int | None:
        """The Test number of the latest attempt that logged metrics (a metrics.jsonl), or None."""
        numbers = [number for number in self.numbers(run_id)
                   if (self.place.attempt_dir(run_id, number) / "metrics.jsonl").exists()]
        return numbers[-1] if numbers else None

    def latest_checkpoint(self, run_id: str, kind: str) -> str:
        """The path of the newest `kind` checkpoint ('best' or 'last') among the run's attempts that still exists
        and is whole (a damaged one is named in a warning and passed over); LabError when there is none."""
        for record in reversed(self.of(run_id)):
            path = record.get("checkpoints", {}).get(kind, {}).get("path")
            if not path or not Path(path).exists():
                continue
            if not intact_checkpoint(Path(path)):
                warn(f"{path} is damaged (truncated or overwritten); trying an earlier attempt's")
                continue
            return path
        raise LabError(f"run {run_id} has no intact {kind} checkpoint on this machine")

    def set_headline(self, run_id: str, number: int) -> None:
        """Make attempt `number` the one that speaks for the run on its pages; LabError for no such attempt."""
        key = self.place.attempt_dir(run_id, number).name
        self.load(run_id, number)
        self.runs.update(run_id, headline=number, headline_key=key)
        self.events.add(run_id, "headline", attempt=number)

    def headline(self, run_id: str) -> int | None:
        """The Test number the researcher picked to speak for the run (`lab note ID --headline N`), or None."""
        run = self.runs.load(run_id)
        number = self.place.attempt_number(run_id, run["headline_key"]) if run.get("headline_key") else None
        picked = number or run.get("headline")
        return picked if isinstance(picked, int) and picked in self.numbers(run_id) else None


def run_status_of(records: list[dict]) -> str:
    """A run's status from its attempts' records in Test order: `created` before any, `running` while any runs,
    else the latest one's."""
    statuses = [record["status"] for record in records]
    return "running" if "running" in statuses else statuses[-1] if statuses else "created"
