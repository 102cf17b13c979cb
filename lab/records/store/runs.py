"""Runs: one folder per run, logs/runs/<id>/ with run.json (identity and notebook fields) and config.json (the
resolved config); a run moves to logs/archive/ when it is removed."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from lab.errors import LabError, RecordError
from lab.records.files import read_json, require_fields, write_json
from lab.records.store.events import Events
from lab.records.store.ids import Ids
from lab.records.store.names import now_iso, slugify
from lab.records.store.place import Place

RUN_FIELDS = {"id": str, "created": str, "slug": str, "title": str}


class Runs:
    """The runs of a lab (`store.runs`): created with an id this clone may take, read back checked."""

    def __init__(self, place: Place, ids: Ids, events: Events):
        self.place, self.ids, self.events = place, ids, events

    def create(self, run_id: str | None, *, prefix: str | None = None,
               reserve: Callable[[str], bool] | None = None, **fields: Any) -> dict:
        """Create a run folder with run.json and its config; `prefix` instead of an id takes the next free one.

        `reserve(id)` claims an id for this clone (through the git remote) and is False when another clone
        holds it: `--next` then passes over it, an explicit id is refused. LabError for an id that exists.
        """
        config = self.place.redact(fields.pop("config", None))
        fields = self.place.redact(fields)
        with self.place.lock():
            run_id = self._free_id(run_id, prefix, reserve)
            folder = self.place.run_dir(run_id)
            created = now_iso()
            title = slugify(fields.get("title_text") or fields.get("hypothesis") or run_id)
            record = {
                **fields,
                "id": run_id,
                "slug": f"{self.place.day(created).strftime('%Y%m%d')}_{run_id}_{title}",
                "title": title,
                "created": created,
                "clone": self.place.clone_id,
            }
            folder.mkdir(parents=True)
            try:
                write_json(folder / "config.json", config or {})
                write_json(folder / "run.json", record)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        self.events.add(run_id, "created", hypothesis=record.get("hypothesis"))
        return record

    def _free_id(self, run_id: str | None, prefix: str | None, reserve: Callable[[str], bool] | None) -> str:
        """`run_id` when it is free and reserved, else (None) the next free id of `prefix` that `reserve`
        grants (under the lock)."""
        if run_id is None:
            refused: set[str] = set()
            while True:
                run_id = self.ids.next(prefix or "", refused)
                if reserve is None or reserve(run_id):
                    return run_id
                refused.add(run_id)
        if self.place.run_dir(run_id).exists():
            raise LabError(f"run {run_id} already exists ({self.place.run_dir(run_id)})")
        if reserve is not None and not reserve(run_id):
            raise LabError(f"run id {run_id} is already taken by another clone (refs/lab/ids/{run_id} on the "
                           "remote): pull to see its run, and choose another id or use --next")
        return run_id

    def load(self, run_id: str) -> dict:
        """run.json of `run_id`; LabError when there is no such run, RecordError when it cannot be read (two
        clones' runs under one id among them, naming `lab rename`)."""
        path = self.place.run_dir(run_id) / "run.json"
        try:
            record = read_json(path)
        except RecordError:
            self.ids.check_collision(run_id)
            raise
        if record is None:
            raise LabError(f"no run {run_id} in {self.place.runs_dir}")
        require_fields(path, record, RUN_FIELDS)
        try:
            datetime.fromisoformat(record["created"])
        except ValueError:
            raise RecordError(f"{path} has a created time that is not ISO 8601; fix it or restore it from "
                              "git") from None
        return record

    def update(self, run_id: str, **fields: Any) -> dict:
        """Merge `fields` into the run's run.json (under the lock); returns the record written."""
        path = self.place.run_dir(run_id) / "run.json"
        with self.place.lock():
            record = {**self.load(run_id), **fields}
            write_json(path, record)
        return record

    def config(self, run_id: str) -> dict:
        """The run's resolved config (config.json), {} when it has none."""
        return read_json(self.place.run_dir(run_id) / "config.json", {})

    def archive(self, run_id: str) -> Path:
        """Move a run's records to logs/archive/<id>-<time>/ (out of every list and page) and delete its
        artefacts; returns the archive folder."""
        with self.place.lock():
            self.load(run_id)
            target = self.place.logs_dir / "archive" / f"{run_id}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"
            if target.exists():
                raise LabError(f"{target} already exists (the run was removed a moment ago); try again")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.place.run_dir(run_id), target)
        shutil.rmtree(self.place.artefacts_root / run_id, ignore_errors=True)
        return target
