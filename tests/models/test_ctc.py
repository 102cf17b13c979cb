"""CTC decoding and scoring, each fast version checked against a slow loop-based reference."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.ctc import (
    beam_search_decode,
    count_all_blank,
    edit_distance,
    greedy_decode,
    phoneme_error_rate,
    prefix_beam_search,
)


def greedy_reference(log_probs: torch.Tensor, length: int, blank: int = 0) -> list[int]:
    decoded, previous = [], None
    for frame in log_probs[:length]:
        token = int(frame.argmax())
        if token != previous and token != blank:
            decoded.append(token)
        previous = token
    return decoded


def edit_distance_reference(reference, hypothesis) -> int:
    table = [[0] * (len(hypothesis) + 1) for _ in range(len(reference) + 1)]
    for i in range(len(reference) + 1):
        table[i][0] = i
    for j in range(len(hypothesis) + 1):
        table[0][j] = j
    for i in range(1, len(reference) + 1):
        for j in range(1, len(hypothesis) + 1):
            substitution = table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
            table[i][j] = min(substitution, table[i - 1][j] + 1, table[i][j - 1] + 1)
    return table[-1][-1]


def collapse(path, blank: int = 0) -> tuple[int, ...]:
    labels = [token for index, token in enumerate(path) if index == 0 or token != path[index - 1]]
    return tuple(token for token in labels if token != blank)


def best_labelling_reference(log_probs: np.ndarray, blank: int = 0) -> tuple[tuple[int, ...], float]:
    """Sum the probability of every path into its labelling and return the most probable labelling."""
    frames, classes = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(classes), repeat=frames):
        probability = float(np.exp(sum(log_probs[t, token] for t, token in enumerate(path))))
        labelling = collapse(path, blank)
        totals[labelling] = totals.get(labelling, 0.0) + probability
    best = max(totals, key=totals.get)
    return best, float(np.log(totals[best]))


def labelling_log_prob(log_probs: torch.Tensor, labels: list[int]) -> float:
    """log p(labels | x) from torch's CTC loss; log_probs (T, C)."""
    loss = F.ctc_loss(
        log_probs[:, None, :], torch.tensor([labels], dtype=torch.long).reshape(1, -1),
        torch.tensor([log_probs.size(0)]), torch.tensor([len(labels)]), reduction="none",
    )
    return -float(loss)


def test_greedy_matches_loop_reference():
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.randn(8, 30, 5, generator=generator).log_softmax(-1)
    # few classes, so repeats and blanks are common
    lengths = torch.tensor([30, 0, 1, 7, 15, 29, 30, 12])
    decoded = greedy_decode(log_probs, lengths)
    assert decoded == [greedy_reference(log_probs[b], int(lengths[b])) for b in range(8)]


def test_greedy_collapses_repeats_before_dropping_blanks():
    tokens = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    log_probs = F.one_hot(torch.tensor(tokens), 4).float()[None]  # (1, 9, 4)
    assert greedy_decode(log_probs, torch.tensor([9])) == [[1, 1, 2, 3]]
    assert greedy_decode(log_probs, torch.tensor([4])) == [[1, 1]]


def test_beam_search_agrees_with_greedy_on_peaked_distributions():
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 6, (4, 25), generator=generator)
    log_probs = (20.0 * F.one_hot(tokens, 6).float() + torch.randn(4, 25, 6, generator=generator)).log_softmax(-1)
    lengths = torch.tensor([25, 20, 3, 0])
    assert beam_search_decode(log_probs, lengths, beam_width=4) == greedy_decode(log_probs, lengths)


def test_beam_search_beats_greedy_when_blank_wins_every_frame():
    # blank is the argmax of both frames, so greedy says nothing; but p("1") = 0.4025 > p("") = 0.16
    log_probs = torch.log(torch.tensor([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]]))
    greedy = greedy_decode(log_probs[None], torch.tensor([2]))[0]
    beam = prefix_beam_search(log_probs.numpy(), beam_width=3)
    assert greedy == [] and beam == [1]
    assert labelling_log_prob(log_probs, beam) == pytest.approx(np.log(0.4025), abs=1e-5)
    assert labelling_log_prob(log_probs, beam) > labelling_log_prob(log_probs, greedy)


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(seed)
    log_probs = torch.from_numpy(rng.standard_normal((4, 3))).log_softmax(-1).numpy()  # (T=4, C=3)
    expected, expected_log_prob = best_labelling_reference(log_probs)
    found = prefix_beam_search(log_probs, beam_width=64)
    assert tuple(found) == expected
    assert labelling_log_prob(torch.from_numpy(log_probs), found) == pytest.approx(expected_log_prob, abs=1e-6)


def test_beam_search_scores_at_least_as_well_as_greedy_on_random_utterances():
    generator = torch.Generator().manual_seed(2)
    log_probs = (2.0 * torch.randn(10, 12, 5, generator=generator)).log_softmax(-1)
    lengths = torch.full((10,), 12)
    for greedy, beam, utterance in zip(
        greedy_decode(log_probs, lengths), beam_search_decode(log_probs, lengths, beam_width=8), log_probs
    ):
        assert labelling_log_prob(utterance, beam) >= labelling_log_prob(utterance, greedy) - 1e-6


def test_beam_width_must_be_positive():
    with pytest.raises(ValueError, match="beam_width"):
        prefix_beam_search(np.zeros((3, 4)), beam_width=0)


def test_edit_distance_matches_loop_reference():
    rng = np.random.default_rng(3)
    for _ in range(200):
        reference = rng.integers(1, 5, size=rng.integers(0, 12)).tolist()
        hypothesis = rng.integers(1, 5, size=rng.integers(0, 12)).tolist()
        assert edit_distance(reference, hypothesis) == edit_distance_reference(reference, hypothesis)


def test_edit_distance_known_cases():
    assert edit_distance([], []) == 0
    assert edit_distance([1, 2, 3], []) == 3
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([1, 2, 3, 4], [2, 1, 3, 5, 4]) == 3


def test_phoneme_error_rate_sums_before_dividing():
    references = [[1, 2, 3], [4, 5]]
    hypotheses = [[1, 3], [4, 5, 6, 7]]
    assert phoneme_error_rate(references, hypotheses) == pytest.approx(3 / 5)


def test_phoneme_error_rate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="hypotheses"):
        phoneme_error_rate([[1]], [])
    with pytest.raises(ValueError, match="no labels"):
        phoneme_error_rate([[]], [[1]])


def test_count_all_blank():
    assert count_all_blank([[], [1], [], [2, 3]]) == 2
    log_probs = F.one_hot(torch.tensor([[0, 0, 0], [0, 2, 0]]), 3).float()
    assert count_all_blank(greedy_decode(log_probs, torch.tensor([3, 3]))) == 1
