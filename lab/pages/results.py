"""A run's results as pages state them: each metric's direction (the config's choice, the family's declaration,
the engine's own metrics, else the metric's words), the attempt's metric stream (a resumed attempt continues the
one it resumed from), the kept step (where the judged metric was best: the checkpoint the engine keeps), every
metric's value there beside its own best, the evaluation's size and noise, and the best attempt of a run.

    results.attempt_result(store, "nsd_002", 1)
    -> {"metric": "val/per", "mode": "min", "best": 0.31, "best_step": 400, "final": 0.33, "attempt": 1,
        "se": 0.004, "size": {"trials": 480}, "still_improving": False, "last_step": 500,
        "slope": -2e-05, "scatter": 0.003}
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from lab.families import registry
from lab.records.derived import lab_code
from lab.records.files import read_json
from lab.records.metrics import (
    ENGINE_DIRECTIONS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    NOT_METRICS,
    RATE_SUFFIXES,
    file_version,
    format_number,
    load,
    metric_words,
)
from lab.records.store import Store

SE_SUFFIX = "_se"  # `<metric>_se`: the standard error a family logs beside a metric (over batches, or bootstrap)
# How big an evaluation was, logged beside it (`val/trials`, `val/tokens`, ...): stated with every verdict.
SIZE_WORDS = ("clips", "utterances", "trials", "tokens", "frames", "samples", "batches", "speakers")
STILL_IMPROVING = 0.001  # best at the last evaluation, by over 0.1% of the one before: the run is still improving
TREND_EVALUATIONS = 5  # a run's recent trend is the slope of its judged metric over its last 5 evaluations
SCATTER_EVALUATIONS = (6, 8)  # its scatter: about a quadratic over its last 8 evaluations, given 6 at least


def size_metric(metric: str) -> str | None:
    """'trials' for 'val/trials' (an evaluation-size figure), else None."""
    head, _, word = metric.rpartition("/")
    return word if head and word in SIZE_WORDS else None


def direction(metric: str, best_metric: str | None = None, best_mode: str | None = None,
              family: str | None = None) -> str | None:
    """'min', 'max' or None (no "best" applies): the config's choice for its best metric, the family's
    declaration, the engine's own metrics, else a guess from the name's words. Standard errors and evaluation
    sizes have none, and nor has a throughput (`speed`): a faster run is no better result."""
    if best_metric and metric == best_metric and best_mode in ("min", "max"):
        return best_mode
    if metric.endswith(SE_SUFFIX) or size_metric(metric) or speed(metric):
        return None
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


# Where a script's validation metrics live: `val/loss`, `eval/loss` (Hugging Face Trainer), `valid_loss`, ...
VALIDATION_WORDS = ("val", "valid", "validation", "eval", "dev")


def judged_metric(config: dict, logged: list[str], family: str | None = None) -> tuple[str, str]:
    """(metric, mode) a run is judged on: its config's train.best_metric; else the first of these that it logged:
    a validation loss (`val/loss`, `eval/loss`, `valid_loss`, ...), another validation metric with a direction
    (`eval/accuracy`: max; not a throughput), the training loss (`train/loss`, `loss`), another loss; else
    `train/loss`."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    if train.get("best_metric"):
        metric = train["best_metric"]
        return metric, direction(metric, metric, train.get("best_mode"), family) or "min"
    candidates = [name for name in logged if name != "step" and direction(name, family=family)
                  and not speed(name)]

    def first(accept) -> str | None:
        return next((name for name in sorted(candidates, key=len) if accept(metric_words(name))), None)

    metric = ("val/loss" if "val/loss" in logged else None) \
        or first(lambda words: validation(words) and "loss" in words) \
        or first(validation) \
        or ("train/loss" if "train/loss" in logged else None) \
        or first(lambda words: "loss" in words and not words & {"val", "test"}) \
        or "train/loss"
    return metric, direction(metric, family=family) or "min"


def validation(words: set[str]) -> bool:
    """Whether a metric of these words (`metric_words`) is measured on held-out data: `eval/accuracy`,
    `valid_loss`, `Loss/val`; `train/loss_std_dev` is not."""
    return bool(words & set(VALIDATION_WORDS)) and "train" not in words


def speed(metric: str) -> bool:
    """A throughput figure (`eval/samples_per_second`, `val/throughput`): it has no "best" and never judges a
    run."""
    return metric.lower().endswith(RATE_SUFFIXES) or "throughput" in metric_words(metric)


BOOKKEEPING_WORDS = {"infeasible", "skipped"}  # counts of what a step left out, such as train/ctc_infeasible_frac


def bookkeeping(metric: str) -> bool:
    """A figure about the run's bookkeeping rather than its result, which the pages keep out of their main tables:
    a standard error (`val/per_se`), an evaluation's size (`val/utterances`), a throughput (`speed`) or a count
    of what was left out (`train/ctc_infeasible_frac`, `train/skipped_steps`)."""
    return (metric.endswith(SE_SUFFIX) or size_metric(metric) is not None or speed(metric)
            or bool(metric_words(metric) & BOOKKEEPING_WORDS))


def attempt_config(store: Store, run_id: str, number: int | None) -> dict:
    """The config an attempt ran with (what its script reported, or the lab resolved), else the run's."""
    recorded = read_json(store.attempt_dir(run_id, number) / "config.json", None) if number else None
    return recorded if recorded else store.runs.config(run_id)


# -- the stream of one attempt -----------------------------------------------------------------------------


def resumed_attempt(store: Store, run_id: str, number: int) -> int | None:
    """The earlier attempt whose checkpoint attempt `number` resumed from (`lab launch --resume`), or None."""
    source = store.attempts.load(run_id, number).get("resume_from")
    if not source:
        return None
    source = str(source)
    for earlier in reversed(store.attempts.numbers(run_id)):
        if earlier >= number:
            continue
        record = store.attempts.load(run_id, earlier)
        paths = {str(entry.get("path")) for entry in (record.get("checkpoints") or {}).values()
                 if isinstance(entry, dict)}
        folder = record.get("artefacts")
        if source in paths or (folder and source.startswith(str(folder).rstrip("/") + "/")):
            return earlier
    return None


def stream_chain(store: Store, run_id: str, number: int) -> list[int]:
    """The attempts whose metrics make attempt `number`'s stream, oldest first: [1, 2] when 2 resumed 1."""
    chain = [number]
    while (earlier := resumed_attempt(store, run_id, chain[0])) is not None and earlier not in chain:
        chain.insert(0, earlier)
    return chain


def stream(store: Store, run_id: str, number: int):
    """Attempt `number`'s metric table continuing the attempts it resumed from: each earlier attempt's rows
    before the first step the next one logged. Callers must not modify the frame."""
    dirs = tuple(store.attempt_dir(run_id, n) for n in stream_chain(store, run_id, number))
    return _stream(dirs, tuple(file_version(folder / "metrics.jsonl") for folder in dirs))


@functools.lru_cache(maxsize=256)
def _stream(dirs: tuple[Path, ...], versions: tuple):
    import pandas as pd

    frame = load(dirs[-1])
    for folder in reversed(dirs[:-1]):
        earlier = load(folder)
        if "step" not in earlier or earlier.empty:
            continue
        first = frame["step"].min() if "step" in frame and not frame.empty else float("inf")
        frame = pd.concat([earlier[earlier["step"] < first], frame], ignore_index=True)
    return frame


# -- a table of every metric -------------------------------------------------------------------------------


def metric_rows(frame, best_metric: str | None = None, best_mode: str | None = None, family: str | None = None,
                kept_step: int | None = None) -> list[dict]:
    """One row per metric: {"metric", "final", "best", "best_step", "mode", "kept", "kept_step"}, sorted by name.

    `best`/`best_step` are the metric's own best (None without a direction); `kept` is its latest value at or
    before `kept_step` (the step of the kept checkpoint) and `kept_step` the step it was logged at (None when
    there is no kept step or no value by then). A metric never logged finite has final None.
    """
    import numpy as np

    if "step" not in frame:
        return []
    steps = frame["step"].to_numpy()  # (rows,)
    table = []
    for metric in sorted(column for column in frame.columns if column not in NOT_METRICS):
        values = frame[metric].to_numpy()  # (rows,)
        keep = np.isfinite(values) & ~np.isnan(steps)
        mode = direction(metric, best_metric, best_mode, family)
        row = {"metric": metric, "final": None, "best": None, "best_step": None, "mode": mode, "kept": None,
               "kept_step": None}
        table.append(row)
        if not keep.any():
            continue
        values, kept_steps = values[keep], steps[keep]
        row["final"] = float(values[-1])
        if mode is not None:
            best = int(np.argmin(values) if mode == "min" else np.argmax(values))  # the first best, as idxmin
            row.update(best=float(values[best]), best_step=int(kept_steps[best]))
        if kept_step is not None and (until := np.flatnonzero(kept_steps <= kept_step)).size:
            row.update(kept=float(values[until[-1]]), kept_step=int(kept_steps[until[-1]]))
    return table


def attempt_summary(store: Store, run_id: str, number: int) -> dict:
    """{"result": attempt_result or None, "rows": metric_rows at the kept step} of one attempt's stream, kept in
    the lab's derived values (`Place.derived`) until a file it comes from or the code that makes it changes."""
    folders = [store.attempt_dir(run_id, n) for n in stream_chain(store, run_id, number)]
    family = store.runs.load(run_id).get("family")
    version = hashlib.sha1(json.dumps([  # the number too: a pulled attempt that started earlier shifts it
        lab_code(), number, family, registry.directions(family),
        file_version(store.run_dir(run_id) / "config.json"),
        [(folder.name, file_version(folder / "metrics.jsonl"), file_version(folder / "config.json"))
         for folder in folders],
    ], sort_keys=True).encode()).hexdigest()
    name = f"{run_id}/{folders[-1].name}"
    kept = store.derived.get("summary", name, version)
    if kept is None:
        kept = derive_summary(store, run_id, number)
        store.derived.put("summary", name, version, kept)
    return kept


def derive_summary(store: Store, run_id: str, number: int) -> dict:
    """`attempt_summary` from the records themselves."""
    config = attempt_config(store, run_id, number)
    family = store.runs.load(run_id).get("family")
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    frame = stream(store, run_id, number)
    rows = metric_rows(frame, train.get("best_metric"), train.get("best_mode"), family)
    metric, mode = judged_metric(config, [row["metric"] for row in rows], family)
    judged = next((row for row in rows if row["metric"] == metric and row["best"] is not None), None)
    if judged is None:
        return {"result": None, "rows": rows}
    rows = metric_rows(frame, train.get("best_metric"), train.get("best_mode"), family, judged["best_step"])
    by_name = {row["metric"]: row for row in rows}
    evaluations = frame[metric].dropna()  # (evaluations,) non-finite values are NaN already
    last, previous = (float(evaluations.iloc[-1]), float(evaluations.iloc[-2])) if len(evaluations) >= 2 else (0, 0)
    improving = len(evaluations) >= 2 and judged["best_step"] == int(frame["step"][evaluations.index[-1]]) \
        and is_better(last, previous, mode) and abs(last - previous) > STILL_IMPROVING * abs(previous)
    slope, scatter = recent_trend(frame["step"][evaluations.index].to_numpy(), evaluations.to_numpy())
    se_row = by_name.get(metric + SE_SUFFIX)
    result = {
        "metric": metric, "mode": mode, "best": judged["best"], "best_step": judged["best_step"],
        "final": judged["final"], "attempt": number,
        "se": se_row["kept"] if se_row and se_row["kept_step"] == judged["best_step"] else None,
        "size": dict(sorted(((size_metric(row["metric"]), row["kept"]) for row in rows
                             if size_metric(row["metric"]) and row["kept"] is not None),
                            key=lambda item: SIZE_WORDS.index(item[0]))),
        "still_improving": bool(improving),
        "last_step": int(frame["step"][evaluations.index[-1]]),
        "slope": slope, "scatter": scatter,
    }
    return {"result": result, "rows": rows}


def recent_trend(steps, values) -> tuple[float | None, float | None]:
    """(slope per step, scatter) of a metric's evaluations (`steps`, `values`: (n,)): the least-squares line's slope
    over the last TREND_EVALUATIONS (None under 3), and the standard deviation of the last SCATTER_EVALUATIONS about a
    quadratic fitted to them, n - 3 degrees of freedom (None under 6; the quadratic takes up the curve's bend), the
    evaluation's own spread where no standard error was logged."""
    import numpy as np

    steps, values = np.asarray(steps, float), np.asarray(values, float)  # (n,), (n,)
    kept = np.isfinite(steps) & np.isfinite(values)  # a malformed row's step reads as NaN
    steps, values = steps[kept], values[kept]  # (m,), (m,)
    recent, recent_values = steps[-TREND_EVALUATIONS:], values[-TREND_EVALUATIONS:]
    slope = float(np.polyfit(recent, recent_values, 1)[0]) if len(recent) >= 3 and np.ptp(recent) > 0 else None
    fewest, most = SCATTER_EVALUATIONS
    tail, tail_values = steps[-most:], values[-most:]
    if len(tail) < fewest or np.ptp(tail) == 0:
        return slope, None
    scaled = (tail - tail.mean()) / np.ptp(tail)  # (n,) conditioning for the fit
    residuals = tail_values - np.polyval(np.polyfit(scaled, tail_values, 2), scaled)  # (n,)
    return slope, float(np.sqrt((residuals ** 2).sum() / (len(tail) - 3)))


def attempt_result(store: Store, run_id: str, number: int | None) -> dict | None:
    """The attempt's judged metric at its kept step: {metric, mode, best, best_step, final, attempt, se, size,
    still_improving, last_step, slope, scatter}, or None when it logged no value of it."""
    return attempt_summary(store, run_id, number)["result"] if number else None


def is_better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def run_result(store: Store, run_id: str) -> dict | None:
    """The run's best attempt on its judged metric (attempt_result), a resumed attempt winning a tie with the
    one it continues; None if none logged it."""
    best = None
    for number in store.attempts.numbers(run_id):
        result = attempt_result(store, run_id, number)
        if result and (best is None or is_better(result["best"], best["best"], result["mode"])
                       or result["best"] == best["best"] and best["attempt"] in stream_chain(store, run_id, number)):
            best = result  # on a tie, an attempt that resumed the best one speaks for it: its stream holds both
    return best


def headline_attempt(store: Store, run_id: str) -> int | None:
    """The attempt that speaks for a run: the researcher's pick (`lab note ID --headline N`), else the best on
    the run's judged metric, else the latest with metrics, else the latest; None before any attempt."""
    picked = store.attempts.headline(run_id)
    if picked is not None:
        return picked
    best = run_result(store, run_id)
    if best:
        return best["attempt"]
    return store.attempts.latest_with_metrics(run_id) or (store.attempts.numbers(run_id) or [None])[-1]


def ran_config(store: Store, run_id: str) -> dict:
    """The config a run's headline attempt ran with (the run's own before any attempt), as its pages show it."""
    return attempt_config(store, run_id, headline_attempt(store, run_id))


def seed_result(store: Store, run_id: str) -> dict | None:
    """The run's judged metric over its seeds when its attempts ran with two or more `train.seed` values (the
    latest attempt of each seed, `lab launch ID --seeds N`): attempt_result's fields with `best` the mean of the
    seeds' kept values, `spread` their sample standard deviation, `se` = spread / sqrt(seeds), `seeds` the count,
    `attempt` and `best_step` None, `final` the mean of the seeds' final values, `slope` the seeds' mean slope (None
    if one has none). None with fewer than two seeds."""
    per_seed = {}
    for number in store.attempts.numbers(run_id):
        result = attempt_result(store, run_id, number)
        train = attempt_config(store, run_id, number).get("train")
        seed = train.get("seed") if isinstance(train, dict) else None
        if result and seed is not None:
            per_seed[seed] = result
    found = [result for result in per_seed.values() if result["metric"] == next(iter(per_seed.values()))["metric"]]
    if len(found) < 2:
        return None
    values = [result["best"] for result in found]
    mean = sum(values) / len(values)
    spread = (sum((value - mean) ** 2 for value in values) / (len(values) - 1)) ** 0.5
    return {**found[-1], "best": mean, "best_step": None, "attempt": None, "spread": spread,
            "final": sum(result["final"] for result in found) / len(found),
            "last_step": max(result["last_step"] for result in found),
            "se": spread / len(values) ** 0.5, "seeds": len(values),
            "still_improving": any(result["still_improving"] for result in found),
            "slope": None if any(r["slope"] is None for r in found) else sum(r["slope"] for r in found) / len(found)}


def figure_text(result: dict) -> str:
    """'1.85 at step 20' for one attempt, '1.85 (mean of 3 seeds, sd 0.02)' over seeds."""
    if result.get("seeds"):
        spread = format_number(result["spread"])
        return f"{format_number(result['best'])} (mean of {result['seeds']} seeds, sd {spread})"
    return f"{format_number(result['best'])} at step {result['best_step']}"


# -- comparing two results ---------------------------------------------------------------------------------


def improvement(before: dict | None, after: dict | None) -> float | None:
    """Relative improvement of `after` over `before` on the same metric (positive = better), or None."""
    if not before or not after or before["metric"] != after["metric"] or before["best"] == 0:
        return None
    change = (before["best"] - after["best"]) / abs(before["best"])
    return change if after["mode"] == "min" else -change


def change_words(before: float, after: float, mode: str | None) -> str:
    """How people say a change: '9.0% higher (worse)', '2.5% lower (better)', '0.012% lower', 'the same'; `mode`
    None leaves out which way is better (a change inside the noise). Below 0.1%, two significant figures, so a
    change never reads 0.0%."""
    if after == before:
        return "the same"
    way = "higher" if after > before else "lower"
    share = abs(after - before) / abs(before) if before else None
    relative = "" if share is None else f"{share:.1%} " if share >= 0.001 else f"{share * 100:.2g}% "
    judged = "" if mode is None else f" ({'better' if is_better(after, before, mode) else 'worse'})"
    return f"{relative}{way}{judged}"


def size_text(result: dict | None) -> str:
    """'evaluated on 480 trials, 3 clips' from the sizes logged at the kept step, else 'evaluation size not
    logged'."""
    sizes = (result or {}).get("size") or {}
    if not sizes:
        return "evaluation size not logged"
    return "evaluated on " + ", ".join(f"{value:,.0f} {word}" for word, value in sizes.items())
