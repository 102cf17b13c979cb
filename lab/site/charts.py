"""What a page's interactive charts draw: any metric stream of the records, one panel per metric or per named
group of metrics (`register_panel`), one series per attempt or per run. `static/site.js` draws them with uPlot.

    {"panels": [{"title": "loss", "series": [0, 1]}, ...],
     "series": [{"label": "Test 1 train/loss", "arm": "Test 1", "step": [...], "time": [...], "value": [...]}, ...],
     "run": "x_001" or null, "live": true or false}

`arm` is the attempt or run a series is of (a legend click hides it in every panel); `time` is the row's
wall-clock time (Unix seconds, as the tracker writes it); `run` is the run of a run's page, whose rows
`lab serve` refreshes while `live` (an attempt is running).
"""

from __future__ import annotations

import fnmatch

from lab.records.metrics import NOT_METRICS

MAX_POINTS = 10_000  # per series on a page: a longer one keeps each bucket's lowest and highest row
PANELS: list[tuple[str, tuple[str, ...]]] = [("loss", ("train/loss", "val/loss"))]


def register_panel(title: str, patterns: tuple[str, ...]) -> None:
    """Draw every metric matching one of `patterns` (fnmatch, like `sys/gpu*/util`) in one panel called
    `title`, before the panels of single metrics; a title registered again replaces its patterns."""
    PANELS[:] = [(name, kept) for name, kept in PANELS if name != title] + [(title, tuple(patterns))]


def panel_of(metric: str) -> str:
    """The title of the panel a metric is drawn in: the first registered panel matching it, else its name."""
    return next((title for title, patterns in PANELS
                 if any(fnmatch.fnmatchcase(metric, pattern) for pattern in patterns)), metric)


def kept_positions(values, cap: int):
    """Positions (array) of at most about `cap` rows of `values` (1-D array): all when they fit, else the lowest
    and highest of each of `cap / 2` equal runs of rows, as `metrics.series` keeps a plot's spikes."""
    import numpy as np
    import pandas as pd

    if len(values) <= cap:
        return np.arange(len(values))
    buckets = np.arange(len(values)) * (cap // 2) // len(values)  # (rows,) bucket of each row
    grouped = pd.Series(values).groupby(buckets)
    return np.union1d(grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy())


def frame_series(frame, label: str) -> list[dict]:
    """One series per metric column of a metric table (`results.stream`), labelled `label` and the metric, in
    metric order; rows without a step or a value are left out."""
    import numpy as np

    if "step" not in frame or frame.empty:
        return []
    found = []
    for metric in sorted(column for column in frame.columns if column not in NOT_METRICS):
        rows = frame[["step", metric, *(["time"] if "time" in frame else [])]].dropna(subset=["step", metric])
        rows = rows[np.isfinite(rows[metric].to_numpy(dtype=float))]
        if rows.empty:
            continue
        rows = rows.iloc[kept_positions(rows[metric].to_numpy(dtype=float), MAX_POINTS)]
        times = rows["time"].tolist() if "time" in rows else [None] * len(rows)
        found.append({"label": f"{label} {metric}".strip(), "arm": label, "metric": metric,
                      "step": [int(step) for step in rows["step"]], "time": times,
                      "value": rows[metric].astype(float).tolist()})
    return found


def chart_data(series: list[dict], run: str | None = None, live: bool = False) -> dict:
    """The charts of a page from `series` (`frame_series`'s, each with its `metric`): one panel per panel title,
    in the order the panels are registered and then by metric name."""
    titles: dict[str, list[int]] = {}
    for index, one in enumerate(series):
        titles.setdefault(panel_of(one["metric"]), []).append(index)
    order = [title for title, _ in PANELS if title in titles] + sorted(set(titles) - {t for t, _ in PANELS})
    return {"panels": [{"title": title, "series": titles[title]} for title in order],
            "series": [{key: one[key] for key in ("label", "arm", "step", "time", "value")} for one in series],
            "run": run, "live": live}


def run_charts(store, run_id: str) -> dict:
    """Chart data of one run: every attempt with metrics (running ones included), each as `Test N`."""
    from lab.pages import results

    series = []
    for number in store.attempts.numbers(run_id):
        if (store.attempt_dir(run_id, number) / "metrics.jsonl").exists():
            series += frame_series(results.stream(store, run_id, number), f"Test {number}")
    running = any(attempt.get("status") == "running" for attempt in store.attempts.of(run_id))
    return chart_data(series, run=run_id, live=running)


def runs_charts(store, arms: list[tuple[str, int | None]]) -> dict:
    """Chart data comparing runs: each (run, attempt) arm's metrics, labelled by the run (and `:N` when an
    attempt is named); an arm without an attempt is its headline attempt."""
    from lab.pages import results

    series = []
    for run_id, number in arms:
        chosen = number or results.headline_attempt(store, run_id) or store.attempts.latest_with_metrics(run_id)
        if chosen and (store.attempt_dir(run_id, chosen) / "metrics.jsonl").exists():
            series += frame_series(results.stream(store, run_id, chosen), f"{run_id}:{number}" if number else run_id)
    return chart_data(series)

