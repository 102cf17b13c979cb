"""A run's version: a digest of the versions (mtime, size) of every file its rows and pages are read from, so that
a value derived from a run (a table row, a page) is kept until one of them changes."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from lab.families import registry
from lab.records.derived import lab_code
from lab.records.metrics import file_version
from lab.records.store import Store

ATTEMPT_FILES = ("attempt.json", "config.json", "metrics.jsonl", "summary.json", "stdout.log", "media.jsonl")
RUN_FILES = ("run.json", "config.json", "events.jsonl")


def run_version(store: Store, run_id: str, seen: dict | None = None) -> str:
    """A digest of everything a run's rows and pages come from: the versions (mtime, size) of its records and of its
    parent's and of the runs its expectation names, lab.json, the family's declared directions and the lab's
    code. `seen` keeps each run's file versions for the next run that names it. RecordError when run.json
    cannot be read."""
    seen = {} if seen is None else seen
    run = store.runs.load(run_id)
    related = [run_id, *([run["parent"]] if run.get("parent") else []),
               *sorted(set(RUN_NAME.findall(run.get("expect") or "")) - {run_id})]
    parts: list[Any] = [lab_code(), registry.directions(run.get("family")),
                        file_version(store.root / "lab.json")]
    for other in related:
        if other not in seen:
            seen[other] = _file_versions(store, other)
        parts.append([other, seen[other]])
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_versions(store: Store, run_id: str) -> list | None:
    """[the run's files' versions, [[Test number, attempt folder, its files' versions], ...]], None for no such
    run."""
    if not store.exists(run_id):
        return None
    folder = str(store.run_dir(run_id))
    return [[_version(f"{folder}/{name}") for name in RUN_FILES],
            [[number, attempt.name, [_version(f"{attempt}/{name}") for name in ATTEMPT_FILES]]
             for number, attempt in enumerate(store.attempt_folders(run_id), 1)]]


def _version(path: str) -> tuple[int, int]:
    """`file_version` of a path given as text (no pathlib: a large lab stats many files)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


RUN_NAME = re.compile(r"\b[a-z][a-z0-9_]*_[0-9]{3}\b")  # a run id inside an expectation (`val/loss < exp_001`)
