"""A run's results as pages state them: each metric's direction (the config's choice, the family's declaration,
the engine's own metrics, else the metric's words), final and best values, the metric a run is judged on, and
the best attempt of a run.

    results.attempt_result(store.attempt_dir("nsd_002", 1), config, "neural_decoder")
    -> {"metric": "val/per", "mode": "min", "best": 0.31, "best_step": 400, "final": 0.33}
"""

from __future__ import annotations

import functools
from pathlib import Path

from lab.families import registry
from lab.records.metrics import (
    ENGINE_DIRECTIONS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    NOT_METRICS,
    RATE_SUFFIXES,
    file_version,
    load,
    metric_words,
)


def direction(metric: str, best_metric: str | None = None, best_mode: str | None = None,
              family: str | None = None) -> str | None:
    """'min', 'max' or None (no "best" applies): the config's choice for its best metric, the family's
    declaration, the engine's own metrics, else a guess from the name's words."""
    if best_metric and metric == best_metric and best_mode in ("min", "max"):
        return best_mode
    declared = registry.directions(family)
    if metric in declared:
        return declared[metric]
    if metric in ENGINE_DIRECTIONS:
        return ENGINE_DIRECTIONS[metric]
    if metric.lower().endswith(RATE_SUFFIXES):
        return "max"
    words = metric_words(metric)
    if words & HIGHER_IS_BETTER:
        return "max"
    return "min" if words & LOWER_IS_BETTER else None


def final_and_best(attempt_dir: Path, best_metric: str | None = None, best_mode: str | None = None,
                   family: str | None = None) -> list[dict]:
    """One row per metric: {"metric", "final", "best", "best_step", "mode"}, NaN-free, sorted by name.

    A metric with no direction (a learning rate, a gradient norm) has mode, best and best_step None. Cached
    while metrics.jsonl is unchanged; callers must not modify the rows.
    """
    path = Path(attempt_dir) / "metrics.jsonl"
    return _final_and_best(path, *file_version(path), best_metric, best_mode, family)


@functools.lru_cache(maxsize=4096)
def _final_and_best(path: Path, mtime_ns, size, best_metric, best_mode, family) -> list[dict]:
    import numpy as np

    frame = load(path.parent)
    if "step" not in frame:
        return []
    steps = frame["step"].to_numpy()  # (rows,)
    table = []
    for metric in sorted(column for column in frame.columns if column not in NOT_METRICS):
        values = frame[metric].to_numpy()  # (rows,)
        keep = np.isfinite(values) & ~np.isnan(steps)
        if not keep.any():
            continue
        values, kept_steps = values[keep], steps[keep]
        mode = direction(metric, best_metric, best_mode, family)
        row = {"metric": metric, "final": float(values[-1]), "best": None, "best_step": None, "mode": mode}
        if mode is not None:
            best = int(np.argmin(values) if mode == "min" else np.argmax(values))  # the first best, as idxmin
            row.update(best=float(values[best]), best_step=int(kept_steps[best]))
        table.append(row)
    return table


def judged_metric(config: dict, logged: list[str], family: str | None = None) -> tuple[str, str]:
    """(metric, mode) a run is judged on: its config's train.best_metric, else val/loss, else train/loss."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    metric = train.get("best_metric") or ("val/loss" if "val/loss" in logged else "train/loss")
    return metric, direction(metric, metric, train.get("best_mode"), family) or "min"


def attempt_result(attempt_dir: Path, config: dict, family: str | None = None) -> dict | None:
    """{metric, mode, best, best_step, final} of one attempt on the metric its run is judged on, or None."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    rows = final_and_best(attempt_dir, train.get("best_metric"), train.get("best_mode"), family)
    metric, mode = judged_metric(config, [row["metric"] for row in rows], family)
    row = next((row for row in rows if row["metric"] == metric), None)
    if row is None or row["best"] is None:
        return None
    return {"metric": metric, "mode": mode, "best": row["best"], "best_step": row["best_step"], "final": row["final"]}


def is_better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def run_result(store, run_id: str) -> dict | None:
    """The run's best attempt on its judged metric: attempt_result plus the attempt number; None if none logged."""
    config = store.run_config(run_id)
    family = store.load_run(run_id).get("family")
    best = None
    for number in store.attempt_numbers(run_id):
        result = attempt_result(store.attempt_dir(run_id, number), config, family)
        if result and (best is None or is_better(result["best"], best["best"], result["mode"])):
            best = {**result, "attempt": number}
    return best


def improvement(before: dict | None, after: dict | None) -> float | None:
    """Relative improvement of `after` over `before` on the same metric (positive = better), or None."""
    if not before or not after or before["metric"] != after["metric"] or before["best"] == 0:
        return None
    change = (before["best"] - after["best"]) / abs(before["best"])
    return change if after["mode"] == "min" else -change
