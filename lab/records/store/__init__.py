"""The run store: one folder per run under logs/runs/, JSON records written atomically, append-only events.

    logs/runs/<id>/run.json           identity and notebook fields                        store.runs
    logs/runs/<id>/config.json        resolved config of the run                          store.runs
    logs/runs/<id>/events.jsonl       every action on the run, timestamped                store.events
    logs/runs/<id>/attempts/<key>/    attempt.json, config.json, metrics.jsonl, ...       store.attempts
    logs/baselines/<name>.json        a baseline's config and provenance                  store.baselines
    logs/journal.jsonl                day-level notes (overview, insights)                store.events
    the next free id of a prefix, two clones' runs under one id                           store.ids

Several clones of one repository share these records through git (git-annex's model: every clone has a UUID,
`.git/lab/clone-id`, and writes only what is its own). An attempt's folder is named `<UTC start>-<clone>`
(`20261130T145123Z-1a2b3c4d`), so two clones never make the same one; attempts are shown as Test 1, 2, 3 in
start order, and folders of older labs (`attempts/1`, `attempts/2`) come first in their own order. A running
attempt lives in `.git/lab/running/<id>/attempts/<key>/`, where no git command touches it, and moves into
logs/ when it ends. Events and notes carry the clone that wrote them and the attempt key they are about.

A `Store` is the lab's place (`place.Place`: its folders, lab.json, its days' zone, this clone's id, the lock
across processes, the redaction of what is recorded) and hands out one piece per kind of record, each a small
class in its own module that is given the place and the pieces it reads. Composition rather than one class of
mixins: each piece can be read alone, what it depends on is in its constructor, and no piece reaches another's
records except through that piece's methods.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Collection
from typing import Any

from lab.errors import LabError, RecordError, warn
from lab.records.files import read_json, write_json
from lab.records.store.attempts import Attempts
from lab.records.store.baselines import Baselines
from lab.records.store.events import Events
from lab.records.store.ids import Ids
from lab.records.store.place import Place
from lab.records.store.runs import Runs
from lab.records.store.settings import DEFAULTS, SETTINGS_FILE, updated


@dataclass
class Store(Place):
    """A lab rooted at `root` (the folder holding lab.json): its place, and `runs`, `attempts`, `events`,
    `baselines` and `ids`, the pieces that keep each kind of record under root/logs."""

    unreadable: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _readable: tuple[tuple[str, ...], list[str]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def find(cls, start: Path | None = None) -> "Store":
        """The lab containing `start` (default: the working directory), searching parent folders: first the path
        as given (a symlinked logs/ leads back to its lab), then with symlinks resolved. LabError when none."""
        given = Path(os.path.abspath(start or Path.cwd()))
        for candidate in dict.fromkeys((given, given.resolve())):
            for folder in (candidate, *candidate.parents):
                if (folder / SETTINGS_FILE).is_file():
                    return cls(folder)
        raise LabError(f"no lab found at {given} or above: run `lab init` in your repository first")

    @classmethod
    def init(cls, root: Path, **settings: Any) -> "Store":
        """Create (or update) a lab at `root` with the given settings (lab.json; a dict updates its section,
        None leaves a key as it is); returns it."""
        root = Path(root).resolve()
        path = root / SETTINGS_FILE
        write_json(path, updated(read_json(path, copy.deepcopy(DEFAULTS)), settings))
        store = cls(root)
        store.runs_dir.mkdir(parents=True, exist_ok=True)
        return store

    @functools.cached_property
    def ids(self) -> Ids:
        return Ids(self)

    @functools.cached_property
    def events(self) -> Events:
        return Events(self)

    @functools.cached_property
    def runs(self) -> Runs:
        return Runs(self, self.ids, self.events)

    @functools.cached_property
    def attempts(self) -> Attempts:
        return Attempts(self, self.runs, self.events)

    @functools.cached_property
    def baselines(self) -> Baselines:
        return Baselines(self)

    def readable_run_ids(self, known: Collection[str] = ()) -> list[str]:
        """The runs whose records can be read; each unreadable one is named once in a warning and left out (its
        reason in `unreadable`), so one damaged run does not stop a page command for the whole lab. Checked
        once per set of runs; the runs in `known` (found readable under their files' current versions, e.g. by
        `lab render`'s derived facts) are not read again."""
        run_ids = tuple(self.run_ids())
        if self._readable is not None and self._readable[0] == run_ids:
            return list(self._readable[1])
        readable = []
        for run_id in run_ids:
            if run_id in known:
                readable.append(run_id)
                continue
            try:
                self.runs.load(run_id)
                self.attempts.of(run_id)
                self.events.of(run_id)
            except RecordError as error:
                if run_id not in self.unreadable:
                    warn(f"run {run_id} is unreadable: {error}")
                self.unreadable[run_id] = str(error)
                continue
            readable.append(run_id)
        self._readable = (run_ids, readable)
        for run_id in self.removed_with_attempts():
            count = len(list((self.run_dir(run_id) / "attempts").iterdir()))
            warn(f"{self.run_dir(run_id).relative_to(self.root)} holds {count} attempt(s) but no run.json: {run_id} "
                 f"was removed ({self.home(run_id).relative_to(self.root)}) while they ran on another clone; "
                 f"`lab rm {run_id} --yes` moves them to its archive")
        return list(readable)
