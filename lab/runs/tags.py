"""`lab tag`: a run's tags after the fact (`lab tag dia_009 +best -draft`), recorded as an event and committed
as notes are. Tags are listed by `lab show` and `lab runs`, filtered by `lab runs --tag`, and handed to W&B as
the run's tags at each launch (WANDB_TAGS)."""

from __future__ import annotations

import re

from lab.errors import LabError, warn
from lab.records.store import Store
from lab.runs.notes import commit_notes

# W&B takes tags of at most 64 characters; a comma would split one in two; a leading + or - reads as a change
TAG = re.compile(r"[^\s,+-][^\s,]{0,63}")


def check_tag(name: str) -> str:
    """`name` when it can be a tag (1 to 64 characters, no space or comma, not starting with + or -), else
    LabError."""
    if not TAG.fullmatch(name):
        raise LabError(f"tag {name!r}: a tag is 1 to 64 characters without spaces or commas, and does not start "
                       "with + or - (lab tag ID +best -draft)")
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
        elif sign == "-":
            warn(f"{run_id} has no tag {name!r}: nothing removed")
    if added or removed:
        store.runs.update(run_id, tags=tags)
        store.events.add(run_id, "tags", added=added, removed=removed)
        commit_notes(store, [store.run_dir(run_id)], f"tags of {run['slug']}")
    return tags
