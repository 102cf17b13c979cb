"""W&B identity chosen before a run starts, its links, and `lab sync` of offline runs.

The lab never parses W&B's folders for metrics and never stores an API key: it only records ids and links.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from lab.records.store import Store
from lab.tracking.wandb_server import check_reachable, default_entity, group_url, run_url

ID_ALPHABET = string.ascii_lowercase + string.digits
SYNC_TIMEOUT_S = 120
SYNC_FAILURE_PREFIXES = ("wandb: ERROR", "Error:")  # how `wandb sync` reports a failure on its own lines


def new_run_id() -> str:
    """An 8-character W&B run id, chosen by the lab so the link is known before the run starts."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def local_dir(store: Store) -> Path:
    """WANDB_DIR for every attempt of this lab (git-ignored, inside the artefacts folder)."""
    return store.artefacts_root / "wandb"


def attempt_identity(store: Store, run: dict) -> dict | None:
    """The W&B record of a new attempt ({run_id, url, group_url, mode, synced, ...}), or None when W&B is off.

    The mode is the one the run will really use: an exported WANDB_MODE wins over lab.json.
    """
    settings = store.settings.get("wandb", {})
    project = settings.get("project")
    if not project or not settings.get("enabled", True):
        return None
    mode = os.environ.get("WANDB_MODE") or settings.get("mode", "offline")
    if mode == "disabled":
        return None
    entity = settings.get("entity") or default_entity()[0]
    run_id = new_run_id()
    return {
        "run_id": run_id,
        "entity": entity,
        "project": project,
        "mode": mode,
        "url": run_url(entity, project, run_id),
        "group_url": group_url(entity, project, run["group"]) if run.get("group") else None,
        "synced": False,  # online too: pending until the W&B run has finished (the tracker marks it) or `lab sync`
    }


def offline_folder(store: Store, wandb: dict) -> Path | None:
    """The run folder W&B wrote for an attempt's W&B record (offline, or online but not confirmed synced): where
    the script's own run or the tracker said it wrote (`folder`), else the one found by `local_folder`."""
    recorded = wandb.get("folder")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    return local_folder(store, wandb["run_id"])


def local_folder(store: Store, run_id: str) -> Path | None:
    """The folder W&B wrote for `run_id` in any mode: in the lab's W&B folder, else in the system's temporary
    folder, where W&B falls back when the lab's is not writable."""
    for root in (local_dir(store), Path(tempfile.gettempdir())):
        matches = sorted((root / "wandb").glob(f"*run-*-{run_id}"))
        if matches:
            return matches[-1]
    return None


def sync_attempt(store: Store, attempt_dir: Path, wandb: dict) -> tuple[bool, str]:
    """Run `wandb sync` for one attempt (its first W&B run and the script's others, `wandb.others`); on success
    mark it synced. Returns (ok, one-line message)."""
    folder = offline_folder(store, wandb)
    if folder is None:
        return False, f"no offline W&B data for {wandb['run_id']} (the command never started W&B)"
    others = [other for other in wandb.get("others", []) if other.get("folder") and Path(other["folder"]).is_dir()]
    command = [sys.executable, "-m", "wandb", "sync", str(folder), *(other["folder"] for other in others)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SYNC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"wandb sync timed out after {SYNC_TIMEOUT_S} s (no network?); still pending"
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(SYNC_FAILURE_PREFIXES)]
    if result.returncode != 0 or failures:
        detail = (failures or lines or [f"exit status {result.returncode}"])[-1]
        return False, f"wandb sync failed, still pending: {detail[:200]}"
    store.attempts.update(attempt_dir, wandb={**wandb, "synced": True})
    return True, f"synced {wandb['url']}" + (f" and {len(others)} more W&B run(s) of the script" if others else "")


def sync_pending(store: Store, progress: Callable[[str, int, bool, str], None] | None = None
                 ) -> list[tuple[str, int, bool, str]]:
    """Sync every ended attempt of this clone whose W&B link is pending; returns (run id, attempt, ok, message)
    for each, and passes each to `progress` as it is done. Other clones' attempts (their W&B data is on their
    machines) are neither synced nor marked: each clone syncs its own.

    An attempt that ended without ever starting W&B is marked `started: False` and not tried again. When any
    attempt has data to send, the server must answer a connection first (LabError otherwise), so that an
    offline machine fails at once instead of waiting on `wandb sync` for every attempt.
    """
    results, to_sync = [], []
    for run_id in store.readable_run_ids():
        for attempt in store.attempts.of(run_id):
            wandb = attempt.get("wandb")
            if not wandb or wandb.get("synced") or wandb.get("started") is False or attempt["status"] == "running":
                continue
            if not store.mine(attempt):
                continue
            attempt_dir = store.attempt_dir(run_id, attempt["number"])
            if offline_folder(store, wandb) is None:
                store.attempts.update(attempt_dir, wandb={**wandb, "started": False})
                results.append((run_id, attempt["number"], True, "never started W&B: nothing to sync"))
            else:
                to_sync.append((run_id, attempt["number"], attempt_dir, wandb))
    if progress:
        for result in results:
            progress(*result)
    if to_sync:
        check_reachable()
    for run_id, number, attempt_dir, wandb in to_sync:
        results.append((run_id, number, *sync_attempt(store, attempt_dir, wandb)))
        if progress:
            progress(*results[-1])
    return results
