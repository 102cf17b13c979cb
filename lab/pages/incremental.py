"""Incremental `lab render`: a page is written again only when something it reads changed.

Each page kind knows which runs it reads (a daily page: the runs with an event that day; a group's or a named
comparison's page: its runs; a changelog: the runs on its baseline; a report: its run). A page's key is a digest
of those runs' `versions.run_version`s (which cover their parents and the runs their expectations name) and of
what every page may read: the lab's code (`derived.lab_code`), the template files, lab.json, the journal, the
baselines and the local branches' heads (a daily page lists the day's commits). The
derived index keeps key -> the versions (mtime, size) of the files the page wrote; a page whose key and files
are unchanged is skipped. A run with a running attempt is always rendered again (its process may have ended).
Without the index every page is rendered, to the same bytes. A run whose facts are kept under its current
version was readable then and is not read again to list the readable runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from lab.errors import RecordError
from lab.launcher import vcs
from lab.pages.context import PACKAGE_TEMPLATES
from lab.pages.versions import run_version
from lab.records.derived import lab_code
from lab.records.metrics import file_version
from lab.records.store import Store

FACTS = "page_facts"  # derived kind: what the pages need to know of a run to choose its pages
PAGE = "page"  # derived kind: a page's key -> the versions of the files it wrote


def folder_versions(folder: Path) -> list:
    """[[relative path, mtime_ns, size], ...] of every file under `folder`, sorted; [] when it is missing."""
    if not folder.is_dir():
        return []
    return sorted([str(path.relative_to(folder)), *file_version(path)] for path in folder.rglob("*") if path.is_file())


def shared_inputs(store: Store) -> str:
    """A digest of what any page may read beside its runs (see the module docstring)."""
    parts = [lab_code(), folder_versions(store.root / "templates"), folder_versions(PACKAGE_TEMPLATES),
             file_version(store.root / "lab.json"), file_version(store.logs_dir / "journal.jsonl"),
             folder_versions(store.logs_dir / "baselines"), vcs.heads(store.root)]
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def run_facts(store: Store, run_id: str, version: str, kept: dict) -> dict:
    """{group, baseline, days (ISO dates of its events in the lab's zone), reported (an attempt logged metrics),
    running} of a run, from `kept` (`Derived.every(FACTS)`) while its version holds."""
    found = kept.get(run_id)
    if found and found[0] == version:
        return found[1]
    run = store.runs.load(run_id)
    facts = {"group": run.get("group"), "baseline": run.get("baseline"),
             "days": sorted({store.day(event["time"]).isoformat() for event in store.events.of(run_id)}),
             "reported": store.attempts.latest_with_metrics(run_id) is not None,
             "running": any(attempt.get("status") == "running" for attempt in store.attempts.of(run_id))}
    store.derived.put(FACTS, run_id, version, facts)
    return facts


class Pages:
    """The lab's readable runs' versions and facts, and `write`, which renders a page only when it must."""

    def __init__(self, store: Store):
        self.store = store
        self.shared = shared_inputs(store)
        seen: dict = {}
        kept = store.derived.every(FACTS)
        versions = {}
        for rid in store.run_ids():
            with contextlib.suppress(RecordError):  # an unreadable run.json: readable_run_ids names it
                versions[rid] = run_version(store, rid, seen)
        known = {rid for rid, version in versions.items() if kept.get(rid, ("",))[0] == version}
        self.versions = {rid: versions.get(rid) or run_version(store, rid, seen)
                         for rid in store.readable_run_ids(known)}
        self.facts = {rid: run_facts(store, rid, version, kept) for rid, version in self.versions.items()}
        self.written = store.derived.every(PAGE)

    def write(self, name: str, run_ids: list[str], make: Callable[[], Path], also: tuple[Path, ...] = (),
              inputs: list | None = None) -> Path:
        """The page `name` of `run_ids` (and of its own `inputs`, e.g. a comparison's arms): its path when its key
        and its files (the page, and `also`) are unchanged, else `make()`'s path after keeping its new key."""
        parts = [self.shared, sorted(self.versions.get(rid, rid) for rid in run_ids), inputs]
        key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()
        volatile = any(self.facts.get(rid, {}).get("running") for rid in run_ids)
        kept = self.written.get(name)
        if kept and not volatile and kept[0] == key and kept[1]["files"] == self.file_versions(kept[1]["path"], also):
            return self.store.root / kept[1]["path"]
        path = make()
        relative = os.path.relpath(path, self.store.root)
        self.store.derived.put(PAGE, name, key, {"path": relative, "files": self.file_versions(relative, also)})
        return path

    def file_versions(self, relative: str, also: tuple[Path, ...]) -> list:
        """The versions of a page's file (relative to the lab's root) and of `also`."""
        return [list(file_version(self.store.root / relative)), *[list(file_version(path)) for path in also]]
