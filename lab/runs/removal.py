"""`lab rm`: a run's records moved to logs/archive/ (out of every list and page, still in git's history) and
its artefacts deleted, after the question that says how much goes. A run with an attempt running is not removed."""

from __future__ import annotations

import os
import shutil

from lab.errors import LabError
from lab.records.store import Store


def removal_question(store: Store, run_id: str) -> str:
    """The question `lab rm` asks before removing `run_id`: its title, attempts, and the artefacts' size (MB).
    LabError for no such run."""
    run = store.runs.load(run_id)
    refuse_if_running(store, run_id)  # before the question: a yes would only meet the refusal
    artefacts = store.artefacts_root / run_id
    size = sum(path.stat().st_size for path in artefacts.rglob("*") if path.is_file()) if artefacts.is_dir() else 0
    return (f"remove {run_id} ({run['title']}, {len(store.attempts.numbers(run_id))} attempt(s)): records "
            f"to {store.logs_dir.name}/archive/, {size / 1e6:.1f} MB of artefacts deleted? [y/N] ")


def remove_run(store: Store, run_id: str) -> str:
    """Archive the run's records and delete its artefacts; returns the line saying where the records went.

    LabError (one line) for no such run, or a run with an attempt running on this clone: it names the Test, its
    launcher's pid and host, and how to stop it. The check and the move hold the lock a launch takes to open an
    attempt, so a launch either opens its attempt first (and the run is not removed) or finds no run."""
    if run_id in store.removed_with_attempts():
        return archive_late_attempts(store, run_id)
    store.runs.load(run_id)
    with store.lock(f"attempt_{run_id}"):
        refuse_if_running(store, run_id)
        archived = store.runs.archive(run_id)
    return f"removed {run_id}: records in {archived.relative_to(store.root)}, artefacts deleted"


def refuse_if_running(store: Store, run_id: str) -> None:
    """LabError (`still_running`'s line) when `run_id` has an attempt running on this clone."""
    running = [attempt for attempt in store.attempts.of(run_id) if attempt["status"] == "running"]
    if running:
        raise LabError(still_running(run_id, running))


def still_running(run_id: str, running: list[dict]) -> str:
    """Why `lab rm` refuses: the attempts of `run_id` still running (attempt records), each with its launcher's pid
    and host, and how to stop them."""
    named = "; ".join(f"Test {attempt['number']} (pid {attempt.get('pid')} on {attempt.get('host')}, started "
                      f"{attempt.get('started')})" for attempt in running)
    pids = " ".join(str(attempt.get("pid")) for attempt in running)
    return (f"refusing to remove {run_id}: it has an attempt running: {named}. Stop it first (Ctrl-C in its "
            f"terminal, or `kill {pids}` on that host; the attempt then reads killed), then `lab rm {run_id}` again")


def archive_late_attempts(store: Store, run_id: str) -> str:
    """Move the attempts a git merge left in logs/runs/<id>/ after the run was removed on another clone into the
    removed run's archive folder (`Place.home`), with the folder's other records; the line saying where."""
    home = store.home(run_id)
    with store.lock(f"attempt_{run_id}"):
        for path in sorted(store.run_dir(run_id).rglob("*"), reverse=True):
            if path.is_file():
                target = home / path.relative_to(store.run_dir(run_id))
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists() and path.name.endswith(".jsonl"):
                    with target.open("a", encoding="utf-8") as stream:
                        stream.write(path.read_text(encoding="utf-8"))
                    path.unlink()
                else:
                    os.replace(path, target)
        shutil.rmtree(store.run_dir(run_id))
    return (f"moved the attempts of {run_id} that ended after it was removed into "
            f"{home.relative_to(store.root)}/attempts")
