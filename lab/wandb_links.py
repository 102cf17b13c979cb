"""W&B identity chosen before a run starts, its links, and `lab sync` of offline runs.

The lab never parses W&B's folders for metrics and never stores an API key: it only records ids and links.
"""

from __future__ import annotations

import secrets
import string
import subprocess
import sys
from pathlib import Path

from lab.store import Store

ID_ALPHABET = string.ascii_lowercase + string.digits
BASE_URL = "https://wandb.ai"
SYNC_TIMEOUT_S = 120


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
    """The W&B record of a new attempt ({run_id, url, group_url, synced, ...}), or None when W&B is off."""
    settings = store.settings.get("wandb", {})
    project = settings.get("project")
    if not project or not settings.get("enabled", True):
        return None
    entity = settings.get("entity")
    run_id = new_run_id()
    mode = settings.get("mode", "offline")
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
    output = (result.stdout + result.stderr).strip()
    failed = result.returncode != 0 or "error" in output.lower()
    if failed:
        last_line = output.splitlines()[-1] if output else f"exit status {result.returncode}"
        return False, f"wandb sync failed, still pending: {last_line[:200]}"
    store.update_attempt(attempt_dir, wandb={**wandb, "synced": True})
    return True, f"synced {wandb['url']}"
