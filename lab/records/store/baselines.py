"""Baselines: a named reference config with its provenance, snapshotted in logs/baselines/<name>.json the
first time a run uses it, so every later run diffs against the same snapshot."""

from __future__ import annotations

from pathlib import Path

from lab.records.files import read_json, write_json
from lab.records.store.names import check_baseline_name
from lab.records.store.place import Place


class Baselines:
    """The baseline snapshots of a lab (`store.baselines`)."""

    def __init__(self, place: Place):
        self.place = place

    def path(self, name: str) -> Path:
        """Where baseline `name` is kept; LabError for a name that cannot be a file name."""
        return self.place.logs_dir / "baselines" / f"{check_baseline_name(name)}.json"

    def get(self, name: str) -> dict | None:
        """The snapshot `{"name", "provenance", "config"}` of a baseline (with a changelog's `current` and
        `status_overrides` when set), or None."""
        return read_json(self.path(name))

    def write(self, snapshot: dict) -> None:
        """Write a baseline's snapshot as it is (a changelog's settings changed)."""
        write_json(self.path(snapshot["name"]), snapshot)

    def save(self, name: str, provenance: dict, config: dict) -> dict:
        """Snapshot a baseline the first time a run uses it; later runs diff against the same snapshot."""
        existing = self.get(name)
        if existing is not None:
            return existing
        snapshot = {"name": name, "provenance": provenance, "config": config}
        self.write(snapshot)
        return snapshot
