"""`lab tag`: a run's tags after the fact (`lab tag dia_009 +best -draft`), recorded as an event and committed
as notes are. Tags are listed by `lab show` and `lab runs`, filtered by `lab runs --tag`, and handed to W&B as
the run's tags at each launch (WANDB_TAGS)."""

from __future__ import annotations

import re

from lab.errors import LabError
from lab.records.store import Store
from lab.runs.notes import commit_notes

TAG = re.compile(r"[^\s,]{1,64}")  # W&B takes tags of at most 64 characters; a comma would split one in two


def check_tag(name: str) -> str:
    """`name` when it can be a tag (1 to 64 characters, no space, no comma), else LabError."""
    if not TAG.fullmatch(name):
        raise LabError(f"tag {name!r}: a tag is 1 to 64 characters without spaces or commas")
    return name


def retag(store: Store, run_id: str, changes: list[str]) -> list[str]:
    """Apply `changes` to a run's tags in order (`+name` or `name` adds, `-name` removes) and return them.
    LabError for no change given, a bad tag name or no such run."""
    if not changes:
        raise LabError("nothing to tag: give +TAG to add or -TAG to remove (lab tag ID +best -draft)")
    run = store.runs.load(run_id)
    tags = list(run.get("tags") or [])
    added, removed = [], []
    for change in changes:
        sign, name = (change[0], change[1:]) if change[:1] in ("+", "-") else ("+", change)
        check_tag(name)
        if sign == "+" and name not in tags:
            tags.append(name)
            added.append(name)
        elif sign == "-" and name in tags:
            tags.remove(name)
            removed.append(name)
    if added or removed:
        store.runs.update(run_id, tags=tags)
        store.events.add(run_id, "tags", added=added, removed=removed)
        commit_notes(store, [store.run_dir(run_id)], f"tags of {run['slug']}")
    return tags
