"""W&B identity chosen before a run starts, its links, and `lab sync` of offline runs.

The lab never parses W&B's folders for metrics and never stores an API key: it only records ids and links.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from lab.store import Store

ID_ALPHABET = string.ascii_lowercase + string.digits
BASE_URL = "https://wandb.ai"
SYNC_TIMEOUT_S = 120
SYNC_FAILURE_PREFIXES = ("wandb: ERROR", "Error:")  # how `wandb sync` reports a failure on its own lines


def new_run_id() -> str:
    """An 8-character W&B run id, chosen by the lab so the link is known before the run starts."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def run_url(entity: str | None, project: str, run_id: str) -> str:
    return f"{BASE_URL}/{entity or '<entity>'}/{project}/runs/{run_id}"


def group_url(entity: str | None, project: str, group: str) -> str:
    return f"{BASE_URL}/{entity or '<entity>'}/{project}/groups/{group}/workspace"


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
    entity = settings.get("entity")
    run_id = new_run_id()
    return {
        "run_id": run_id,
        "entity": entity,
        "project": project,
        "mode": mode,
        "url": run_url(entity, project, run_id),
        "group_url": group_url(entity, project, run["group"]) if run.get("group") else None,
        "synced": mode == "online",
    }


def offline_folder(store: Store, run_id: str) -> Path | None:
    """The offline run folder W&B wrote for `run_id`, if any."""
    matches = sorted((local_dir(store) / "wandb").glob(f"offline-run-*-{run_id}"))
    return matches[-1] if matches else None


def sync_attempt(store: Store, attempt_dir: Path, wandb: dict) -> tuple[bool, str]:
    """Run `wandb sync` for one attempt; on success mark it synced. Returns (ok, one-line message)."""
    folder = offline_folder(store, wandb["run_id"])
    if folder is None:
        return False, f"no offline W&B data for {wandb['run_id']} (the command never started W&B)"
    command = [sys.executable, "-m", "wandb", "sync", str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SYNC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"wandb sync timed out after {SYNC_TIMEOUT_S} s (no network?); still pending"
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(SYNC_FAILURE_PREFIXES)]
    if result.returncode != 0 or failures:
        detail = (failures or lines or [f"exit status {result.returncode}"])[-1]
        return False, f"wandb sync failed, still pending: {detail[:200]}"
    store.update_attempt(attempt_dir, wandb={**wandb, "synced": True})
    return True, f"synced {wandb['url']}"


def sync_pending(store: Store) -> list[tuple[str, int, bool, str]]:
    """Sync every ended attempt whose W&B link is pending; returns (run id, attempt, ok, message) for each.

    An attempt that ended without ever starting W&B is marked `started: False` and not tried again.
    """
    results = []
    for run_id in store.run_ids():
        for attempt in store.attempts(run_id):
            wandb = attempt.get("wandb")
            if not wandb or wandb.get("synced") or wandb.get("started") is False or attempt["status"] == "running":
                continue
            number = attempt["number"]
            attempt_dir = store.attempt_dir(run_id, number)
            if offline_folder(store, wandb["run_id"]) is None:
                store.update_attempt(attempt_dir, wandb={**wandb, "started": False})
                results.append((run_id, number, True, "never started W&B: nothing to sync"))
                continue
            results.append((run_id, number, *sync_attempt(store, attempt_dir, wandb)))
    return results
