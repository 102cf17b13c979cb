"""`lab rename`: a run's new id with every reference to it (its records, the parent of runs made from it, a
baseline's current run, comparison pages, the W&B names of its attempts), and the split of two clones' runs
that a git merge put under one id."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lab.errors import LabError
from lab.launcher import vcs
from lab.pages.comparisons import comparisons, comparisons_index
from lab.records.files import append_jsonl, conflict_sides, read_json, read_jsonl_lines, write_json, write_text
from lab.records.store import Store
from lab.records.store.ids import same_run
from lab.records.store.names import check_run_id
from lab.runs.ids import claim


def rename_run(store: Store, old: str, new: str) -> str:
    """Give run `old` the id `new`, with every reference: its records, the parent of runs made from it, a
    baseline's current run, comparison pages, and the W&B names its attempts record. Returns a summary line.

    After a merge that brought in another clone's run under the same id (run.json in conflict), only this
    clone's run (and its attempts and events) moves to `new`; the other keeps `old` and the conflict is
    resolved (git add), ready to commit.
    """
    check_run_id(new)
    if store.exists(new):
        raise LabError(f"run {new} already exists: choose another id")
    if store.running_dir(old).is_dir() and any(store.running_dir(old).iterdir()):
        raise LabError(f"run {old} has an attempt running on this clone: rename it once the attempt has ended")
    sides = store.ids.conflicted(old)
    if sides is not None and not same_run(*sides):
        return split_collision(store, old, new, sides)
    run = store.runs.load(old)
    claim(store, new)
    with store.lock():
        os.replace(store.run_dir(old), store.run_dir(new))
    moved = adopt(store, store.run_dir(new), run, old, new)
    for page in (store.logs_dir / "reports" / f"{old}.md", store.logs_dir / "reports" / old):
        shutil.rmtree(page, ignore_errors=True) if page.is_dir() else page.unlink(missing_ok=True)
    references = rewrite_references(store, old, new, lambda record: True)
    for baseline in sorted((store.logs_dir / "baselines").glob("*.json")):
        snapshot = read_json(baseline, {})
        if snapshot.get("current") == old:
            write_json(baseline, {**snapshot, "current": new})
            references += 1
    renamed = {name: [rename_arm(arm, old, new) for arm in arms] for name, arms in comparisons(store).items()}
    for name, arms in renamed.items():
        if arms != comparisons(store).get(name):
            append_jsonl(comparisons_index(store), {"name": name, "arms": arms})
            references += 1
    store.events.add(new, "renamed", from_id=old)
    return f"renamed {old} to {new}: {moved} attempt(s), {references} reference(s) updated"


def rename_arm(arm: str, old: str, new: str) -> str:
    run_id, colon, attempt = arm.partition(":")
    return f"{new}{colon}{attempt}" if run_id == old else arm


def adopt(store: Store, folder: Path, run: dict, old: str, new: str) -> int:
    """Write `run` as run `new` in `folder` (id, slug) and point its attempts there (run, W&B name); returns
    how many attempts it has."""
    slug = run["slug"].replace(f"_{old}_", f"_{new}_", 1)
    write_json(folder / "run.json", {**run, "id": new, "slug": slug})
    attempts = sorted((folder / "attempts").glob("*/attempt.json")) if (folder / "attempts").is_dir() else []
    for path in attempts:
        record = read_json(path, {})
        wandb = record.get("wandb")
        number = store.attempt_number(new, path.parent.name) or record.get("number")
        if wandb:
            wandb = {**wandb, "name": f"{slug}_test{number}"}
        write_json(path, {**record, "run": new, **({"wandb": wandb} if wandb else {})})
    return len(attempts)


def rewrite_references(store: Store, old: str, new: str, owned) -> int:
    """Point runs made from `old` (`parent`) at `new`, for the run.json records `owned(record)` accepts."""
    count = 0
    for run_id in store.run_ids():
        path = store.run_dir(run_id) / "run.json"
        record = read_json(path, {})
        if record.get("parent") == old and run_id != new and owned(record):
            write_json(path, {**record, "parent": new})
            count += 1
    return count


def split_collision(store: Store, old: str, new: str, sides: tuple[dict, dict]) -> str:
    """Two clones created `old` apart and a merge put both in one folder: this clone's run (the side it
    created, else git's `ours`) with its attempts and events moves to `new`; the other keeps `old`."""
    index = next((i for i, side in enumerate(sides) if side.get("clone") == store.clone_id), 0)
    moving, staying = sides[index], sides[1 - index]
    owner = moving.get("clone")
    old_folder, new_folder = store.run_dir(old), store.run_dir(new)
    configs = conflict_sides((old_folder / "config.json").read_text(encoding="utf-8")) \
        if (old_folder / "config.json").is_file() else None
    if configs is not None:
        configs = tuple(json.loads(text) for text in configs)
    else:
        configs = (read_json(old_folder / "config.json", {}),) * 2
    claim(store, new)
    new_folder.mkdir(parents=True)
    write_json(new_folder / "config.json", configs[index])
    write_json(old_folder / "config.json", configs[1 - index])
    write_json(old_folder / "run.json", staying)
    events_path = old_folder / "events.jsonl"
    lines = events_path.read_text(encoding="utf-8") if events_path.is_file() else ""
    both = conflict_sides(lines)
    lines = (both[0] + "".join(line for line in both[1].splitlines(keepends=True) if line not in both[0])
             if both else lines)
    kept, moved = [], []
    for line in lines.splitlines(keepends=True):
        event = next(read_jsonl_lines([line.encode("utf-8")]), {})
        (moved if event.get("clone") == owner else kept).append(line)
    write_text(events_path, "".join(kept))
    write_text(new_folder / "events.jsonl", "".join(moved))
    count = 0
    for path in sorted((old_folder / "attempts").glob("*/attempt.json")) if (old_folder / "attempts").is_dir() else []:
        if read_json(path, {}).get("clone") == owner:
            (new_folder / "attempts").mkdir(exist_ok=True)
            os.replace(path.parent, new_folder / "attempts" / path.parent.name)
            count += 1
    adopt(store, new_folder, moving, old, new)
    rewrite_references(store, old, new, lambda record: record.get("clone") == owner)
    store.events.add(new, "renamed", from_id=old)
    vcs.stage(store.root, [old_folder, new_folder])
    return (f"renamed this clone's {old} to {new} ({count} attempt(s)); {old} is the other clone's run again. "
            "Commit the merge: git commit")
