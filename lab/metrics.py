"""Metric tables from an attempt's metrics.jsonl (pandas): final and best values per metric."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lab.records import read_jsonl

LOWER_IS_BETTER = {"loss", "per", "wer", "cer", "error", "err", "perplexity", "ppl", "eer"}
HIGHER_IS_BETTER = {"acc", "accuracy", "f1", "bleu", "auc", "precision", "recall", "sdr", "snr", "pesq",
                    "throughput", "map"}
NOT_METRICS = ("step", "time")


def metric_words(metric: str) -> set[str]:
    """The words of a metric name: 'val/top1_acc' -> {'val', 'top1', 'acc'}."""
    return set(re.split(r"[/_.\-]", metric.lower()))


def direction(metric: str, best_metric: str | None = None, best_mode: str | None = None) -> str:
    """'min' or 'max': the config's choice for its best metric, otherwise guessed from the name's words."""
    if best_metric and metric == best_metric and best_mode in ("min", "max"):
        return best_mode
    return "max" if metric_words(metric) & HIGHER_IS_BETTER else "min"


def load(attempt_dir: Path):
    """The attempt's metric rows as a DataFrame indexed by row, with numeric columns (non-finite as NaN).

    Cached while the file is unchanged; callers must not modify the frame.
    """
    path = Path(attempt_dir) / "metrics.jsonl"
    return _load(path, *_version(path))


def _version(path: Path) -> tuple[int, int]:
    """(mtime, size) of a file, the key under which what was read from it is cached; (0, 0) when absent."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int):
    import pandas as pd

    rows = list(read_jsonl(path))
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def series(frame, column: str) -> tuple[list[float], list[float]] | None:
    """(steps, values) of one metric column without its missing rows, or None when it has none."""
    if column not in frame:
        return None
    points = frame[["step", column]].dropna()
    return (points["step"].tolist(), points[column].tolist()) if not points.empty else None


def final_and_best(attempt_dir: Path, best_metric: str | None = None, best_mode: str | None = None) -> list[dict]:
    """One row per metric: {"metric", "final", "best", "best_step", "mode"}, NaN-free, sorted by name.

    Cached while metrics.jsonl is unchanged; callers must not modify the rows.
    """
    path = Path(attempt_dir) / "metrics.jsonl"
    return _final_and_best(path, *_version(path), best_metric, best_mode)


@functools.lru_cache(maxsize=4096)
def _final_and_best(path: Path, mtime_ns, size, best_metric, best_mode) -> list[dict]:
    frame = load(path.parent)
    table = []
    for metric in sorted(column for column in frame.columns if column not in NOT_METRICS):
        series = frame[["step", metric]].dropna()
        series = series[series[metric].abs() != float("inf")]
        if series.empty:
            continue
        mode = direction(metric, best_metric, best_mode)
        best_index = series[metric].idxmin() if mode == "min" else series[metric].idxmax()
        table.append({
            "metric": metric,
            "final": float(series[metric].iloc[-1]),
            "best": float(series.loc[best_index, metric]),
            "best_step": int(series.loc[best_index, "step"]),
            "mode": mode,
        })
    return table


def format_number(value: float | None) -> str:
    """Numbers as researchers write them in notes: 4 significant digits."""
    if value is None:
        return "-"
    return f"{value:.4g}"


def judged_metric(config: dict, logged: list[str]) -> tuple[str, str]:
    """(metric, mode) a run is judged on: its config's train.best_metric, else val/loss, else train/loss."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    metric = train.get("best_metric") or ("val/loss" if "val/loss" in logged else "train/loss")
    return metric, direction(metric, metric, train.get("best_mode"))


def attempt_result(attempt_dir: Path, config: dict) -> dict | None:
    """{metric, mode, best, best_step, final} of one attempt on the metric its run is judged on, or None."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    rows = final_and_best(attempt_dir, train.get("best_metric"), train.get("best_mode"))
    metric, mode = judged_metric(config, [row["metric"] for row in rows])
    row = next((row for row in rows if row["metric"] == metric), None)
    if row is None:
        return None
    return {"metric": metric, "mode": mode, "best": row["best"], "best_step": row["best_step"], "final": row["final"]}


def is_better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def run_result(store, run_id: str) -> dict | None:
    """The run's best attempt on its judged metric: attempt_result plus the attempt number; None if none logged."""
    config = store.run_config(run_id)
    best = None
    for number in store.attempt_numbers(run_id):
        result = attempt_result(store.attempt_dir(run_id, number), config)
        if result and (best is None or is_better(result["best"], best["best"], result["mode"])):
            best = {**result, "attempt": number}
    return best


def improvement(before: dict | None, after: dict | None) -> float | None:
    """Relative improvement of `after` over `before` on the same metric (positive = better), or None."""
    if not before or not after or before["metric"] != after["metric"] or before["best"] == 0:
        return None
    change = (before["best"] - after["best"]) / abs(before["best"])
    return change if after["mode"] == "min" else -change

