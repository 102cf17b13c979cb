"""Health rules over a training run's metric stream, a live monitor running them, and config smells.

A metric stream is the list of rows of an attempt's metrics.jsonl, `{"step": int, "time": float, ...}`, with
training keys (`train/loss`, `train/grad_norm`, `train/skipped_steps`) and evaluation keys (`val/<name>`).
Non-finite floats arrive as the strings "nan", "inf" and "-inf". Each rule returns at most one finding that
summarises its evidence. Plain Python only: record-only CLI commands import this and must start fast.
"""

from __future__ import annotations

import heapq
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

from lab.records.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER, metric_words

# Every rule waits for enough history before judging, so that a healthy noisy run stays silent.
GRAD_EXPLOSION_FACTOR = 10.0  # a grad norm above 10x the median of all earlier norms is an explosion
GRAD_EXPLOSION_FLOOR = 1.0  # ... and above this absolute norm: 0.05 against a median of 0.0004 is no explosion
GRAD_MIN_HISTORY = 20  # earlier finite grad norms needed before their median is trusted
LOSS_MIN_ROWS = 30  # finite train losses needed before judging whether the loss decreases
LOSS_WINDOW_ROWS = 20  # compare the mean of the first and of the last 20 losses (fewer: a fifth of them)
LOSS_MIN_DROP = 0.05  # the last window must be 5% (of the first window's magnitude) below the first
DIVERGENCE_MIN_ROWS = 20  # finite train losses needed before looking for a divergence
DIVERGENCE_SMOOTHING = 5  # trailing moving average, in rows, before taking the loss minimum
DIVERGENCE_WARMUP_FRACTION = 0.1  # stands in for optim.warmup_steps when that covers under 4 rows
DIVERGENCE_TAIL_FRACTION = 0.1  # the last 10% of the rows must stay up
DIVERGENCE_RISE = 0.3  # rise above the minimum, as a fraction of max(progress made, |minimum|)
BLOWUP_FACTOR = 2.0  # a run whose last losses average over 2x its first loss has blown up, warmup or not
GAP_MIN_EVALS = 5  # evaluations (with a train loss before them) needed to judge the gap
GAP_VAL_RISE = 0.01  # the last val losses are 1% (of the minimum) above the minimum, and above the noise ...
GAP_GROWTH = 0.1  # ... and the val - train gap grew by 10% of the minimum val loss since then, and by more than
# the noise, to a clearly positive gap (val below train is never overfitting), the train loss not rising by more
# than 1% of it (a rising train loss is divergence, not overfitting)
STAY_EVALS = 2  # the last 2 evaluations must both be worse: one noisy evaluation is no trend
METRIC_WORSE = 0.05  # 5% (of the best value's magnitude) worse than the best counts as degraded ...
METRIC_STAY_FRACTION = 0.1  # ... at each of the last 10% of the evaluations (at least the last STAY_EVALS) ...
NOISE_SIGMAS = 3.0  # ... and so does a change, only when it exceeds 3 standard deviations of the difference of
# two evaluations (sqrt(2) x one evaluation's): the best of many noisy evaluations sits about 2 below their mean
SMALLER_THAN_BASELINE = 4  # a model with under 1/4 of its baseline's parameters was probably mis-sized
HIGH_LR_WITHOUT_CLIP = 0.01  # a peak LR above this without gradient clipping is a smell

Row = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One health problem: which rule, how bad, at which step, the numbers behind it, and what to try."""

    rule: str
    severity: str  # "warning" | "error"
    step: int
    message: str
    evidence: dict = field(default_factory=dict)
    suggestion: str = ""

    def to_dict(self) -> dict:
        """The finding as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """The finding written by `to_dict`."""
        return cls(
            rule=data["rule"], severity=data["severity"], step=int(data["step"]), message=data["message"],
            evidence=dict(data.get("evidence", {})), suggestion=data.get("suggestion", ""),
        )


def _number(value: Any) -> float | None:
    """A metric value as a float ("nan" and "inf" strings included), or None when it is not a number."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def finite(value: Any) -> float | None:
    """A metric value as a float when it is a finite number ("nan" strings included as not finite), else None."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _has_non_finite(row: Row) -> bool:
    """Whether the row's train loss or grad norm is non-finite."""
    numbers = (_number(row.get("train/loss")), _number(row.get("train/grad_norm")))
    return any(number is not None and not math.isfinite(number) for number in numbers)


Rule = Callable[[list[Row], dict], list[Finding]]


def evaluation_rule(rule: Rule) -> Rule:
    """Mark `rule` as judging evaluations: the live monitor runs it on each evaluation row, over the
    evaluation rows alone (each carrying the mean train loss since the previous evaluation)."""
    rule.on_evaluation = True
    return rule


def metric_points(rows: list[Row], key: str) -> list[tuple[int, float]]:
    """(step, value) of every row with a finite `key`. A stream that keeps its rows by column (the doctor's
    `lab.records.metrics.StreamRows`) answers from the column at once."""
    if hasattr(rows, "points"):
        return rows.points(key)
    points = []
    for row in rows:
        value = finite(row.get(key))
        if value is not None:
            points.append((int(row.get("step", 0)), value))
    return points


def narrowed(rows: list[Row], keys: Iterable[str]) -> list[Row]:
    """The rows as a rule that reads only `keys` needs them: a stream kept by column (`StreamRows`) then
    builds rows of those keys alone; a plain list is returned as it is."""
    return rows.narrowed(keys) if hasattr(rows, "narrowed") else rows


def _setting(config: Any, dotted: str, default: Any = None) -> Any:
    """`config["a"]["b"]` for "a.b", or `default` when any level is missing or not a dict."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


class RunningMedian:
    """The median of the numbers added so far, in O(log n) per number: the lower half in a max-heap, the
    upper half in a min-heap, the lower one holding the extra number when the count is odd."""

    def __init__(self) -> None:
        self._lower: list[float] = []  # negated
        self._upper: list[float] = []

    def __len__(self) -> int:
        return len(self._lower) + len(self._upper)

    def add(self, value: float) -> None:
        if self._lower and value > -self._lower[0]:
            heapq.heappush(self._upper, value)
        else:
            heapq.heappush(self._lower, -value)
        if len(self._lower) > len(self._upper) + 1:
            heapq.heappush(self._upper, -heapq.heappop(self._lower))
        elif len(self._upper) > len(self._lower):
            heapq.heappush(self._lower, -heapq.heappop(self._upper))

    def median(self) -> float:
        if len(self._lower) > len(self._upper):
            return -self._lower[0]
        return (-self._lower[0] + self._upper[0]) / 2


def _moving_average(values: list[float], width: int) -> list[float]:
    """Trailing moving average; the first entries average what is there."""
    averages, total = [], 0.0
    for index, value in enumerate(values):
        total += value - (values[index - width] if index >= width else 0.0)
        averages.append(total / min(index + 1, width))
    return averages


def short(value: float) -> str:
    """A number in findings' messages: 4 significant digits."""
    return f"{value:.4g}"


def non_finite(rows: list[Row], config: dict) -> list[Finding]:
    """Non-finite train loss or grad norm, or updates skipped for non-finite values."""
    bad_steps, skipped = [], 0.0
    for row in narrowed(rows, ("train/loss", "train/grad_norm", "train/skipped_steps")):
        now_skipped = finite(row.get("train/skipped_steps")) or 0.0
        if _has_non_finite(row) or now_skipped > skipped:
            bad_steps.append(int(row.get("step", 0)))
        skipped = max(skipped, now_skipped)
    if not bad_steps:
        return []
    return [Finding(
        "non_finite", "error", bad_steps[0],
        f"non-finite loss or grad norm, or skipped updates, at {len(bad_steps)} logged step(s) from step "
        f"{bad_steps[0]}; {int(skipped)} updates skipped in all",
        {"first_step": bad_steps[0], "count": len(bad_steps), "skipped_steps": int(skipped)},
        "Lower the LR or lengthen warmup, enable clipping (train.grad_clip), prefer bf16 to fp16, "
        "and look for log(0) or division by zero in the loss.",
    )]


def grad_explosion(rows: list[Row], config: dict) -> list[Finding]:
    """A grad norm far above the median of all earlier ones, and above an absolute floor."""
    norms = metric_points(rows, "train/grad_norm")
    history = RunningMedian()  # of the earlier norms
    spikes = []
    for step, value in norms:
        if len(history) >= GRAD_MIN_HISTORY:
            median = history.median()
            if median > 0 and value > max(GRAD_EXPLOSION_FACTOR * median, GRAD_EXPLOSION_FLOOR):
                spikes.append((step, value, median))
        history.add(value)
    if not spikes:
        return []
    step, value, median = spikes[0]
    largest = max(v for _, v in norms)
    return [Finding(
        "grad_explosion", "warning", step,
        f"grad norm {short(value)} at step {step} is {short(value / median)}x the median {short(median)} of earlier "
        "steps "
        f"({len(spikes)} such spikes, max {short(largest)})",
        {"step": step, "value": value, "median": median, "max": largest, "count": len(spikes)},
        "Enable or tighten gradient clipping (train.grad_clip), lower the LR, or lengthen warmup.",
    )]


def staged_rule(rule: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
    """Mark `rule` as judging the train loss within the run's last stage: it takes `family_stages` (a family's
    `FamilySpec.stage_boundaries`) as a keyword, which `lab.health.diagnosis.rules_for` fills in."""
    rule.staged = True
    return rule


def stage_boundaries(config: dict, rows: list[Row] = (),
                     family_stages: Callable[[list[Row], dict], list[tuple[int, str]]] | None = None,
                     ) -> list[tuple[int, str]]:
    """(step, what changed), sorted by step, where a run's training enters a new stage: `train.unfreeze_step`
    when `train.frozen` holds parameters back until then, and what `family_stages(rows, config)` finds in the
    metric stream (a family's schedules, such as redimnet's margin ramp, which a `train.init_from` run restarts).
    A loss that rises there is the new stage starting, not a divergence."""
    boundaries = []
    frozen, unfreeze = _setting(config, "train.frozen"), _setting(config, "train.unfreeze_step")
    if frozen and isinstance(unfreeze, int) and not isinstance(unfreeze, bool) and unfreeze > 0:
        boundaries.append((unfreeze, f"unfroze {', '.join(map(str, frozen))}"))
    if family_stages is not None:
        boundaries += family_stages(rows, config)
    return sorted(boundaries)


def last_stage(losses: list[tuple[int, float]], config: dict, rows: list[Row],
               family_stages: Callable | None) -> tuple[list[tuple[int, float]], dict]:
    """The (step, loss) points of the last stage begun by the last logged step, and the config to judge them
    with: no LR warmup (the stage's first rows stand in for it). Unchanged when the run has one stage."""
    last = losses[-1][0] if losses else 0
    boundaries = [step for step, _ in stage_boundaries(config, rows, family_stages) if 0 < step <= last]
    if not boundaries:
        return losses, config
    losses = [(step, value) for step, value in losses if step >= boundaries[-1]]
    return losses, {**config, "optim": {**(config.get("optim") or {}), "warmup_steps": 0}}


@staged_rule
def loss_not_decreasing(rows: list[Row], config: dict, family_stages: Callable | None = None) -> list[Finding]:
    """The train loss at the end of the run is not clearly below its starting values, within the last stage
    (`stage_boundaries`): a loss that rose when a stage began is compared with that stage's start."""
    losses, config = last_stage(metric_points(rows, "train/loss"), config, rows, family_stages)
    warmup = finite(_setting(config, "optim.warmup_steps")) or 0.0
    if len(losses) < LOSS_MIN_ROWS or losses[-1][0] <= warmup:
        return []
    window = min(LOSS_WINDOW_ROWS, len(losses) // 5)
    first = statistics.fmean(v for _, v in losses[:window])
    last = statistics.fmean(v for _, v in losses[-window:])
    if first - last >= LOSS_MIN_DROP * abs(first):
        return []
    step = losses[-1][0]
    return [Finding(
        "loss_not_decreasing", "warning", step,
        f"train loss averages {short(last)} over the last {window} logged steps vs {short(first)} over the first "
        f"{window} (up to step {step})",
        {"first_mean": first, "last_mean": last, "window": window, "rows": len(losses), "step": step},
        "Check the LR (too small or too large), that targets match inputs, and that gradients reach the "
        "parameters (frozen groups, detached tensors).",
    )]


@staged_rule
def divergence_after_warmup(rows: list[Row], config: dict, family_stages: Callable | None = None) -> list[Finding]:
    """The loss blew up above its starting value and stayed there, or went down during warmup, then rose well
    above its minimum and stayed up; judged within the last stage (`stage_boundaries`), whose first rows count
    as its warmup."""
    every_loss = metric_points(rows, "train/loss")
    losses, config = last_stage(every_loss, config, rows, family_stages)
    if len(losses) < DIVERGENCE_MIN_ROWS:
        return []
    # a later stage's first loss, or that of a run started from trained weights, is no untrained model's
    trained_start = losses[0][0] > every_loss[0][0] or bool(_setting(config, "train.init_from"))
    blowup = loss_blowup(losses, DIVERGENCE_SMOOTHING if trained_start else 1)
    if blowup:
        return blowup
    values = [v for _, v in losses]
    warmup_steps = finite(_setting(config, "optim.warmup_steps")) or 0.0
    warmup_rows = sum(1 for step, _ in losses if step <= warmup_steps)
    if warmup_rows < 4:
        warmup_rows = max(4, int(len(losses) * DIVERGENCE_WARMUP_FRACTION))
    half = warmup_rows // 2
    start = statistics.fmean(values[:half])
    if statistics.fmean(values[half:warmup_rows]) >= start:
        return []
    smooth = _moving_average(values, DIVERGENCE_SMOOTHING)
    lowest = min(range(len(smooth)), key=smooth.__getitem__)
    minimum = smooth[lowest]
    tail = max(DIVERGENCE_SMOOTHING, int(len(values) * DIVERGENCE_TAIL_FRACTION))
    final = statistics.fmean(values[-tail:])
    limit = minimum + DIVERGENCE_RISE * max(start - minimum, abs(minimum))
    if lowest >= len(values) - tail or final <= limit:
        return []
    rise_step = next((losses[i][0] for i in range(lowest, len(smooth)) if smooth[i] > limit), losses[-tail][0])
    return [Finding(
        "divergence_after_warmup", "error", rise_step,
        f"train loss fell from {short(start)} to {short(minimum)} (step {losses[lowest][0]}), rose past {short(limit)} "
        f"at step {rise_step} and ends at {short(final)}",
        {"start": start, "min": minimum, "min_step": losses[lowest][0], "rise_step": rise_step, "final": final,
         "warmup_steps": warmup_steps},
        "The peak LR is probably too high: lower optim.lr, lengthen warmup, or enable clipping.",
    )]


def loss_blowup(losses: list[tuple[int, float]], start_rows: int = 1) -> list[Finding]:
    """The last tenth of the losses averages over BLOWUP_FACTOR times the start: the mean of the first
    `start_rows` losses (1: the untrained model's first loss; more for a stage that starts from trained
    weights, whose batch losses scatter around a low mean)."""
    values = [v for _, v in losses]
    start = statistics.fmean(values[:start_rows])
    tail = max(DIVERGENCE_SMOOTHING, int(len(values) * DIVERGENCE_TAIL_FRACTION))
    final = statistics.fmean(values[-tail:])
    if start <= 0 or final <= BLOWUP_FACTOR * start:
        return []
    rise_step = next(step for step, value in losses if value > BLOWUP_FACTOR * start)
    since = f"step {losses[0][0]}" if start_rows == 1 else f"mean of steps {losses[0][0]}-{losses[start_rows - 1][0]}"
    peak = max(values)
    return [Finding(
        "divergence_after_warmup", "error", rise_step,
        f"train loss blew up from {short(start)} ({since}) past {short(BLOWUP_FACTOR * start)} at step "
        f"{rise_step} (peak {short(peak)}) and ends at {short(final)}, {short(final / start)}x its start",
        {"start": start, "rise_step": rise_step, "peak": peak, "final": final, "ratio": final / start},
        "The LR is far too high: lower optim.lr (by 10x or more), add warmup, or enable clipping "
        "(train.grad_clip).",
    )]


def evaluation_gaps(rows: Iterable[Row]) -> list[tuple[int, float, float]]:
    """(step, val loss, val loss - train loss) at each evaluation: the one definition of the train/validation
    gap, used by `gap_widening` and the report's table. The train loss at an evaluation is the mean of those
    logged since the previous evaluation (the latest one when none was), so that one noisy batch makes no gap.
    """
    evaluations, recent, train_loss = [], [], None
    for row in narrowed(rows, ("train/loss", "val/loss")):
        latest = finite(row.get("train/loss"))
        if latest is not None:
            recent.append(latest)
        val_loss = finite(row.get("val/loss"))
        if val_loss is not None:
            train_loss = statistics.fmean(recent) if recent else train_loss
            recent = []
            if train_loss is not None:
                evaluations.append((int(row.get("step", 0)), val_loss, val_loss - train_loss))
    return evaluations


def evaluation_noise(rows: list[Row], key: str, points: list[tuple[int, float]], best: int = 0) -> float:
    """The standard deviation of one evaluation of `key`, in its units: the median standard error logged beside
    it (`<key>_se`, as the families log it) where there is one, else the scatter of `points` (its (step, value)
    stream) itself, from the evaluation before the `best` one on (where the curve has flattened and later
    values are judged; the whole stream when that leaves under 5): the root mean square of the second differences
    over sqrt(6), in which a linear trend cancels (independent noise of standard deviation s gives second
    differences of standard deviation s * sqrt(6)) and a curve's bend only adds (an estimate on the safe side).
    0 with under 3 points."""
    errors = [value for _, value in metric_points(rows, key + "_se")]
    if errors:
        return statistics.median(errors)
    values = [value for _, value in points]
    values = values[max(0, best - 1):] if len(values) - best >= 4 else values
    seconds = [(a - 2 * b + c) ** 2 for a, b, c in zip(values, values[1:], values[2:])]
    return math.sqrt(statistics.fmean(seconds) / 6) if seconds else 0.0


def lowest_level(values: list[float]) -> float:
    """The lowest mean of three neighbouring values (of two at either end): the best level a stream reached, so
    that one lucky evaluation, the minimum of many noisy ones, sets no bar that later evaluations must clear."""
    means = [statistics.fmean(values[max(0, i - 1):i + 2]) for i in range(len(values))]
    return min(means)


def beyond(change: float, floor: float, noise: float) -> bool:
    """Whether `change` exceeds both `floor` and NOISE_SIGMAS standard deviations of the difference of two
    evaluations whose own standard deviation is `noise`."""
    return change > max(floor, NOISE_SIGMAS * math.sqrt(2) * noise)


def _numbers_named(config: Any, words: tuple[str, ...], path: str = "") -> dict[str, float]:
    """{dotted key: value} of the numeric config values whose last key part contains one of `words`."""
    found = {}
    for key, value in (config.items() if isinstance(config, dict) else ()):
        dotted = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            found.update(_numbers_named(value, words, dotted))
        elif any(word in str(key).lower() for word in words) and finite(value) is not None:
            found[dotted] = finite(value)
    return found


def overfitting_suggestion(config: dict) -> str:
    """What to try against overfitting, for this config: dropout and weight decay named by their keys and
    values where the config already sets them ("raise", or "already at" when set: no "add dropout" to a run
    that has it), then stopping earlier and more data or augmentation."""
    dropout = {key: value for key, value in _numbers_named(config, ("dropout", "drop_rate")).items() if value > 0}
    decay = {key: value for key, value in _numbers_named(config, ("weight_decay",)).items() if value > 0}
    advice = []
    if dropout:
        advice.append("dropout is already on (" + ", ".join(f"{key}={short(value)}" for key, value in
                                                            sorted(dropout.items())) + "): raise it only with care")
    else:
        advice.append("add dropout")
    if decay:
        advice.append("raise weight decay (" + ", ".join(f"{key}={short(value)}" for key, value in
                                                       sorted(decay.items())) + ")")
    else:
        advice.append("add weight decay")
    advice += ["stop at the best checkpoint (train.early_stop_patience)", "add data or augmentation"]
    return "The model overfits: " + "; ".join(advice) + "."


@evaluation_rule
def gap_widening(rows: list[Row], config: dict) -> list[Finding]:
    """Val loss rises from its lowest level (`lowest_level`) and stays up while the val - train loss gap
    (`evaluation_gaps`) widens to a clearly positive gap, each change beyond the evaluation's noise
    (`evaluation_noise`): overfitting."""
    evaluations = evaluation_gaps(rows)
    if len(evaluations) < GAP_MIN_EVALS:
        return []
    best = min(range(len(evaluations)), key=lambda i: evaluations[i][1])
    best_step, best_val, best_gap = evaluations[best]
    last_step, last_val, last_gap = evaluations[-1]
    noise = evaluation_noise(rows, "val/loss", [(step, val) for step, val, _ in evaluations], best)
    floor, level = GAP_VAL_RISE * abs(best_val), lowest_level([val for _, val, _ in evaluations])
    train_rise = (last_val - last_gap) - (best_val - best_gap)  # overfitting needs the train loss not to rise
    if (best > len(evaluations) - 1 - STAY_EVALS
            or not all(beyond(val - level, floor, noise) for _, val, _ in evaluations[-STAY_EVALS:])
            or not beyond(last_gap - best_gap, GAP_GROWTH * abs(best_val), noise)
            or not beyond(last_gap, floor, noise) or train_rise > floor):
        return []
    onset = evaluations[best + 1][0]
    return [Finding(
        "gap_widening", "warning", onset,
        f"val loss rose from {short(best_val)} (step {best_step}) to {short(last_val)} (step {last_step}) while the "
        f"val - train gap widened from {short(best_gap)} to {short(last_gap)} (an evaluation's noise: "
        f"{short(noise)})",
        {"best_step": best_step, "best_val": best_val, "best_gap": best_gap, "last_step": last_step,
         "last_val": last_val, "last_gap": last_gap, "noise": noise},
        overfitting_suggestion(config),
    )]


@evaluation_rule
def metric_degrading(rows: list[Row], config: dict) -> list[Finding]:
    """The best metric (train.best_metric, train.best_mode) got clearly worse than the best level it reached
    (`lowest_level`; by METRIC_WORSE and beyond the evaluation's noise, `evaluation_noise`) and stayed worse."""
    metric = _setting(config, "train.best_metric", "val/loss")
    metric = metric if isinstance(metric, str) else "val/loss"
    sign = -1.0 if _setting(config, "train.best_mode") == "max" else 1.0
    values = metric_points(rows, metric)
    stay = max(STAY_EVALS, int(len(values) * METRIC_STAY_FRACTION))
    if len(values) <= stay:
        return []
    best = min(range(len(values)), key=lambda i: sign * values[i][1])
    best_step, best_value = values[best]
    noise = evaluation_noise(rows, metric, values, best)
    level = lowest_level([sign * value for _, value in values])
    worse = [beyond(sign * value - level, METRIC_WORSE * abs(best_value), noise) for _, value in values]
    if not all(worse[-stay:]):
        return []
    onset = len(worse) - stay
    while worse[onset - 1]:
        onset -= 1
    final_step, final_value = values[-1]
    return [Finding(
        "metric_degrading", "warning", values[onset][0],
        f"{metric} worsened from its best {short(best_value)} (step {best_step}) from step {values[onset][0]} on, "
        f"ending at {short(final_value)} (step {final_step}; an evaluation's noise: {short(noise)})",
        {"metric": metric, "best": best_value, "best_step": best_step, "final": final_value,
         "final_step": final_step, "noise": noise},
        "Keep the best checkpoint on this metric, stop earlier (train.early_stop_patience), or decay the LR.",
    )]


RULES: dict[str, Rule] = {
    "non_finite": non_finite,
    "grad_explosion": grad_explosion,
    "loss_not_decreasing": loss_not_decreasing,
    "divergence_after_warmup": divergence_after_warmup,
    "gap_widening": gap_widening,
    "metric_degrading": metric_degrading,
}


def check(rows: Iterable[Row], config: dict | None = None, rules: dict[str, Rule] = RULES) -> list[Finding]:
    """Every rule of `rules` (default: the global ones) over a whole metric stream, sorted by step then rule id."""
    rows, config = (rows if hasattr(rows, "points") else list(rows)), config or {}
    findings = [finding for rule in rules.values() for finding in rule(rows, config)]
    return sorted(findings, key=lambda finding: (finding.step, finding.rule))


class LiveMonitor:
    """Runs the rules during training: feed every logged row to `observe`; each rule reports at most once.

    Evaluation rules run on each row with `val/` keys, over the evaluation rows alone (each carrying the mean
    train loss since the previous one); all rules run over all rows every `every` rows, or every 1% of the
    rows seen if that is more, so the cost per row stays flat on long runs. A row with a non-finite value or
    newly skipped updates runs `non_finite` at once, so that `stop_on=["non_finite"]` stops a run promptly.
    """

    def __init__(self, config: dict | None = None, stop_on: Iterable[str] = (), every: int = 50,
                 rules: dict[str, Rule] = RULES):
        unknown = sorted(set(stop_on) - set(rules))
        if unknown:
            raise ValueError(f"unknown health rules {unknown}; known rules: {', '.join(rules)}")
        self.rules = dict(rules)
        self.config = config or {}
        self.stop_on = frozenset(stop_on)
        self.every = every
        self.findings: list[Finding] = []
        self._rows: list[Row] = []
        self._evaluations: list[Row] = []
        self._recent_losses: list[float] = []  # train losses since the latest evaluation
        self._rows_since_check = 0
        self._skipped = 0.0

    @property
    def should_stop(self) -> bool:
        """True once a rule named in `stop_on` has fired."""
        return any(finding.rule in self.stop_on for finding in self.findings)

    def observe(self, row: Row) -> list[Finding]:
        """Add one metrics row; return the findings it made new."""
        self._rows.append(row)
        self._rows_since_check += 1
        loss = finite(row.get("train/loss"))
        if loss is not None:
            self._recent_losses.append(loss)
        due: dict[str, list[Row]] = {}  # rule id -> the rows it runs over
        if any(key.startswith("val/") for key in row):
            evaluation = {key: value for key, value in row.items() if key != "train/loss"}
            if self._recent_losses:
                evaluation["train/loss"] = statistics.fmean(self._recent_losses)
            self._evaluations.append(evaluation)
            self._recent_losses = []
            due = {rule_id: self._evaluations for rule_id, rule in self.rules.items()
                   if getattr(rule, "on_evaluation", False)}
        if self._alarming(row):
            due["non_finite"] = self._rows
        if self._rows_since_check >= max(self.every, len(self._rows) // 100):
            self._rows_since_check = 0
            due = dict.fromkeys(self.rules, self._rows)
        fired = {finding.rule for finding in self.findings}
        new = [finding for rule_id, rule in self.rules.items() if rule_id in due and rule_id not in fired
               for finding in rule(due[rule_id], self.config)]
        self.findings.extend(new)
        return new

    def _alarming(self, row: Row) -> bool:
        skipped = finite(row.get("train/skipped_steps")) or 0.0
        newly_skipped, self._skipped = skipped > self._skipped, max(self._skipped, skipped)
        return newly_skipped or _has_non_finite(row)


_HEADS_NAMES = ("num_attention_heads", "query_heads", "q_heads", "num_heads", "n_heads", "n_head", "nhead", "heads")
_HEAD_DIM_NAMES = ("head_dim", "head_size", "dim_head", "d_head", "kv_channels")
_WIDTH_NAMES = ("d_model", "hidden_size", "n_embd", "embed_dim", "model_dim", "dim")


def _named(key: str, names: tuple[str, ...]) -> str | None:
    """The prefix of `key` when it is one of `names`, alone or after a prefix ("gqa_head_dim" -> "gqa_")."""
    for name in names:
        if key == name or key.endswith("_" + name):
            return key[: len(key) - len(name)]
    return None


def _roles(sizes: dict[str, int], names: tuple[str, ...]) -> dict[str, str]:
    """{prefix: key} of the keys in `sizes` that are one of `names`."""
    return {prefix: key for key in sizes if (prefix := _named(key, names)) is not None}


def _sections(node: dict, path: str) -> Iterator[tuple[str, dict]]:
    """(dotted path, dict) of `node` and of every dict nested in it."""
    yield path, node
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _sections(value, f"{path}.{key}")


def _attention_findings(config: dict) -> list[Finding]:
    """Attention width (heads x head dim) below the model width, in any section of the model config."""
    model = config.get("model")
    findings = []
    for path, section in _sections(model, "model") if isinstance(model, dict) else _sections(config, "config"):
        sizes = {k: v for k, v in section.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
        section_width = next((name for name in _WIDTH_NAMES if name in sizes), None)
        heads = {prefix: key for prefix, key in _roles(sizes, _HEADS_NAMES).items() if "kv" not in key}
        head_dims = _roles(sizes, _HEAD_DIM_NAMES)
        for prefix in sorted(heads.keys() & head_dims.keys()):
            # a prefixed group ("dec_q_heads", "dec_head_dim") is measured against its own width ("dec_d_model")
            width_key = next((prefix + name for name in _WIDTH_NAMES if prefix + name in sizes), section_width)
            if width_key is None:
                continue
            width = sizes[width_key]
            heads_key, dim_key = heads[prefix], head_dims[prefix]
            attention = sizes[heads_key] * sizes[dim_key]
            if attention < width:
                findings.append(Finding(
                    "attention_width", "warning", 0,
                    f"{path}: {heads_key} x {dim_key} = {sizes[heads_key]} x {sizes[dim_key]} = {attention} "
                    f"is smaller than {width_key} = {width}",
                    {"section": path, "heads": sizes[heads_key], "head_dim": sizes[dim_key],
                     "attention_width": attention, "model_width": width},
                    f"Set {dim_key} = {width_key} / {heads_key} unless the bottleneck is intended.",
                ))
    return findings


def structural_findings(
    config: dict, param_count: int | None = None, baseline_param_count: int | None = None
) -> list[Finding]:
    """Smells in a config (and model size) visible before training: all at step 0, as warnings."""
    config = config if isinstance(config, dict) else {}
    findings = _attention_findings(config)
    if param_count and baseline_param_count and param_count * SMALLER_THAN_BASELINE < baseline_param_count:
        findings.append(Finding(
            "model_too_small", "warning", 0,
            f"the model has {param_count:,} parameters, {short(baseline_param_count / param_count)}x fewer than "
            f"its baseline's {baseline_param_count:,}",
            {"param_count": param_count, "baseline_param_count": baseline_param_count},
            "Compare the model section with the baseline's (width, layers, heads) for a mis-scaled size.",
        ))
    clip, lr = _number(_setting(config, "train.grad_clip")), finite(_setting(config, "optim.lr"))
    if clip is not None and clip <= 0 and lr is not None and lr > HIGH_LR_WITHOUT_CLIP:
        findings.append(Finding(
            "no_clipping_high_lr", "warning", 0, f"no gradient clipping at a high LR ({short(lr)})",
            {"lr": lr, "grad_clip": clip},
            "Set train.grad_clip (1.0 is a common start) or lower optim.lr.",
        ))
    warmup, max_steps = finite(_setting(config, "optim.warmup_steps")), finite(_setting(config, "train.max_steps"))
    if warmup and max_steps and warmup >= max_steps:
        findings.append(Finding(
            "warmup_covers_run", "warning", 0, f"warmup ({int(warmup)} steps) covers the whole run ({int(max_steps)})",
            {"warmup_steps": warmup, "max_steps": max_steps},
            "Shorten optim.warmup_steps or raise train.max_steps.",
        ))
    metric, mode = _setting(config, "train.best_metric"), _setting(config, "train.best_mode")
    words = metric_words(metric) if isinstance(metric, str) else set()
    if (mode == "max" and words & LOWER_IS_BETTER) or (mode == "min" and words & HIGHER_IS_BETTER):
        findings.append(Finding(
            "best_mode_mismatch", "warning", 0,
            f"train.best_mode is {mode} but {metric} looks like a "
            f"{'lower' if mode == 'max' else 'higher'}-is-better metric",
            {"best_metric": metric, "best_mode": mode},
            f"Set train.best_mode to {'min' if mode == 'max' else 'max'}.",
        ))
    return findings
