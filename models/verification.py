"""Speaker verification metrics over trial scores: equal error rate and minimum detection cost."""

from __future__ import annotations

import numpy as np


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false rejection rate, false acceptance rate) at every threshold between the sorted scores."""
    order = np.argsort(scores, kind="stable")
    labels = np.asarray(labels, dtype=bool)[order]
    targets, non_targets = labels.sum(), (~labels).sum()
    if targets == 0 or non_targets == 0:
        raise ValueError("trials need both target and non-target pairs")
    # threshold before the first score, then after each: trials at or below it are rejected
    miss = np.concatenate([[0], np.cumsum(labels)]) / targets
    false_alarm = 1 - np.concatenate([[0], np.cumsum(~labels)]) / non_targets
    return miss, false_alarm


def equal_error_rate(scores, labels) -> float:
    """The rate where misses equal false alarms, interpolated linearly between the two thresholds around it."""
    miss, false_alarm = error_rates(np.asarray(scores, dtype=float), labels)
    index = int(np.argmax(miss >= false_alarm))
    if index == 0:
        return float(miss[0])
    m0, m1, f0, f1 = miss[index - 1], miss[index], false_alarm[index - 1], false_alarm[index]
    denominator = (m1 - m0) - (f1 - f0)
    t = 0.0 if denominator == 0 else (f0 - m0) / denominator
    return float(m0 + t * (m1 - m0))


def min_dcf(scores, labels, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The minimum over thresholds of the detection cost, normalised by the cost of the better trivial system."""
    miss, false_alarm = error_rates(np.asarray(scores, dtype=float), labels)
    cost = c_miss * p_target * miss + c_fa * (1 - p_target) * false_alarm
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


BOOTSTRAP_DRAWS = 200  # resamples for a standard error; Efron & Tibshirani (1993) find 25-200 enough for one


def bootstrap_se(statistic, scores, labels, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> float:
    """Bootstrap standard error of `statistic(scores, labels)` (an EER, a minDCF), resampling the trials with
    replacement `draws` times (Efron & Tibshirani 1993, ch. 6); resamples without both target and non-target
    trials are skipped. Fixed `seed`: the same trials give the same figure."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)  # (trials,) each
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = generator.integers(0, len(scores), len(scores))  # (trials,)
        if labels[pick].all() or not labels[pick].any():
            continue
        values.append(statistic(scores[pick], labels[pick]))
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
