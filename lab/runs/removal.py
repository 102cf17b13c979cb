"""`lab rm`: a run's records moved to logs/archive/ (out of every list and page, still in git's history) and
its artefacts deleted, after the question that says how much goes."""

from __future__ import annotations

from lab.records.store import Store


def removal_question(store: Store, run_id: str) -> str:
    """The question `lab rm` asks before removing `run_id`: its title, attempts, and the artefacts' size (MB).
    LabError for no such run."""
    run = store.runs.load(run_id)
    artefacts = store.artefacts_root / run_id
    size = sum(path.stat().st_size for path in artefacts.rglob("*") if path.is_file()) if artefacts.is_dir() else 0
    return (f"remove {run_id} ({run['title']}, {len(store.attempts.numbers(run_id))} attempt(s)): records "
            f"to {store.logs_dir.name}/archive/, {size / 1e6:.1f} MB of artefacts deleted? [y/N] ")


def remove_run(store: Store, run_id: str) -> str:
    """Archive the run's records and delete its artefacts; returns the line saying where the records went."""
    archived = store.runs.archive(run_id)
    return f"removed {run_id}: records in {archived.relative_to(store.root)}, artefacts deleted"
