"""EER and minDCF against direct computations on hand-made score lists."""

import numpy as np
import pytest

from models.verification import bootstrap_se, equal_error_rate, min_dcf


def test_separable_scores_have_no_errors():
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert min_dcf([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0


def test_eer_interpolates_where_misses_meet_false_alarms():
    scores = [0.1, 0.4, 0.35, 0.8]  # non-target 0.1, 0.4; target 0.35, 0.8
    labels = [0, 0, 1, 1]
    # rejecting below 0.35 + eps: miss 0.5, fa 0.5 -> EER 0.5 exactly at that threshold
    assert equal_error_rate(scores, labels) == pytest.approx(0.5)
    labels = [0, 0, 0, 1, 1, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.35, 0.5, 0.55, 0.7, 0.9]
    # rejecting up to 0.35: one target of four missed, one non-target of four (0.55) accepted
    assert equal_error_rate(scores, labels) == pytest.approx(0.25)
    # target 0.1, non 0.2, target 0.3, non 0.4, target 0.5: from (miss 1/3, fa 1/2) to (2/3, 1/2), crossing at 1/2
    assert equal_error_rate([0.1, 0.2, 0.3, 0.4, 0.5], [1, 0, 1, 0, 1]) == pytest.approx(0.5)


def test_min_dcf_is_the_best_threshold_normalised():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.5, 0.55, 0.7, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    best = min(0.01 * ((scores <= t) & (labels == 1)).sum() / 4 + 0.99 * ((scores > t) & (labels == 0)).sum() / 4
               for t in [-1.0, *scores])
    assert min_dcf(scores, labels) == pytest.approx(best / 0.01)


def test_trials_need_both_kinds():
    with pytest.raises(ValueError, match="both target and non-target"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_the_bootstrap_error_of_an_eer_shrinks_with_more_trials_and_repeats():
    generator = np.random.default_rng(1)

    def trials(count):
        labels = np.arange(count) % 2 == 0
        return generator.normal(labels * 1.0, 1.0), labels  # targets score one standard deviation higher

    few, many = trials(40), trials(4000)
    assert bootstrap_se(equal_error_rate, *few) > 3 * bootstrap_se(equal_error_rate, *many) > 0
    assert bootstrap_se(equal_error_rate, *few) == bootstrap_se(equal_error_rate, *few)
    # the binomial standard error of a rate near 0.31 over 2000 + 2000 trials is about 0.01
    assert 0.005 < bootstrap_se(equal_error_rate, *many) < 0.02
