"""Run ids: the next free id of a prefix, and two runs that two clones created under one id and a git merge
put in one folder (a collision, which `lab rename` resolves). Reserving an id through the git remote, so that
two clones rarely take one, is the launcher's (lab.launcher.remote); this piece only reads the folders."""

from __future__ import annotations

import json

from lab.errors import LabError, RecordError
from lab.records.files import conflict_sides
from lab.records.store.names import check_prefix
from lab.records.store.place import Place, git_dir


def same_run(first: dict, second: dict) -> bool:
    """Whether two run.json describe one run edited on two clones, rather than two runs given one id."""
    return first.get("created") == second.get("created") and first.get("clone") == second.get("clone")


class Ids:
    """The run ids of a lab (`store.ids`)."""

    def __init__(self, place: Place):
        self.place = place

    def next(self, prefix: str, skip: set[str] = frozenset()) -> str:
        """The next free id for `prefix`, passing over the ids in `skip` (call under `place.lock()`)."""
        check_prefix(prefix)
        numbers = [int(rid.rsplit("_", 1)[1]) for rid in self.place.run_ids() if rid.rsplit("_", 1)[0] == prefix]
        runs_dir = self.place.runs_dir
        taken = ({p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()) | set(skip)
        number = max(numbers, default=0) + 1
        while f"{prefix}_{number:03d}" in taken:
            number += 1
        if number > 999:
            raise LabError(f"prefix {prefix!r} has used all 999 run numbers")
        return f"{prefix}_{number:03d}"

    def conflicted(self, run_id: str) -> tuple[dict, dict] | None:
        """(ours, theirs): the two run.json a git merge left in conflict, when both sides are readable."""
        try:
            sides = conflict_sides((self.place.run_dir(run_id) / "run.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        if sides is None:
            return None
        try:
            ours, theirs = (json.loads(side) for side in sides)
        except json.JSONDecodeError:
            return None
        return (ours, theirs) if isinstance(ours, dict) and isinstance(theirs, dict) else None

    def check_collision(self, run_id: str) -> None:
        """RecordError (one line, naming `lab rename`) when a merge brought in another clone's run under the
        same id: two run.json in conflict that were created apart."""
        sides = self.conflicted(run_id)
        if sides is None or same_run(*sides):
            return
        ours, theirs = sides
        with self.place.lock():
            free = self.next(run_id.rsplit("_", 1)[0])
        found = git_dir(self.place.root)
        rebasing = found is not None and any((found / name).exists() for name in ("rebase-merge", "rebase-apply"))
        how = ("git rebase --abort, git pull --no-rebase, then " if rebasing else "")
        raise RecordError(
            f"run {run_id} was created on two clones ({ours.get('title')!r} and {theirs.get('title')!r}); keep both "
            f"by giving this clone's run a new id: {how}lab rename {run_id} {free}")
