"""Metric tables from an attempt's metrics.jsonl (pandas): final and best values per metric."""

from __future__ import annotations

from pathlib import Path

from lab.records import read_jsonl

HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "auc", "bleu", "samples_per_s", "throughput", "map")
NOT_METRICS = ("step", "time")


def direction(metric: str, best_metric: str | None = None, best_mode: str | None = None) -> str:
    """'min' or 'max': the config's choice for its best metric, otherwise guessed from the name."""
    if best_metric and metric == best_metric and best_mode in ("min", "max"):
        return best_mode
    leaf = metric.rsplit("/", 1)[-1].lower()
    return "max" if any(word in leaf for word in HIGHER_IS_BETTER) else "min"


def load(attempt_dir: Path):
    """The attempt's metric rows as a DataFrame indexed by row, with numeric columns (non-finite as NaN)."""
    import pandas as pd

    rows = list(read_jsonl(Path(attempt_dir) / "metrics.jsonl"))
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def final_and_best(attempt_dir: Path, best_metric: str | None = None, best_mode: str | None = None) -> list[dict]:
    """One row per metric: {"metric", "final", "best", "best_step", "mode"}, NaN-free, sorted by name."""
    frame = load(attempt_dir)
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
