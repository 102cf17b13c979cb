"""CTC decoding and scoring shared by the CTC families: greedy and prefix beam search decoding, edit distance,
phoneme error rate, and a count of utterances decoded to nothing but blanks.

Decoded sequences are plain lists of class ids with blanks removed; scores are computed on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

NEG_INF = float("-inf")


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: argmax per frame, collapse repeats, drop blanks.

    log_probs: (B, T, C) log-probabilities or logits (only the argmax matters); lengths: (B,) valid frames.
    """
    best = log_probs.argmax(dim=-1)  # (B, T)
    previous = F.pad(best[:, :-1], (1, 0), value=-1)  # (B, T), the frame before each frame
    frames = torch.arange(best.size(1), device=best.device)  # (T,)
    valid = frames[None, :] < lengths.to(best.device)[:, None]  # (B, T)
    keep = (best != previous) & (best != blank) & valid  # (B, T)
    best, keep = best.cpu(), keep.cpu()
    return [best[row][keep[row]].tolist() for row in range(best.size(0))]


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    high, low = (a, b) if a > b else (b, a)
    return high + math.log1p(math.exp(low - high))


def prefix_beam_search(log_probs: np.ndarray, beam_width: int, blank: int = 0) -> list[int]:
    """The most probable labelling found by CTC prefix beam search over one utterance.

    log_probs: (T, C) log-probabilities of the valid frames. Each prefix keeps the probability of its paths
    ending in a blank and ending in a label; after each frame the `beam_width` most probable prefixes survive,
    and only the `beam_width` most probable labels of the frame are tried as extensions.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    log_probs = np.asarray(log_probs, dtype=np.float64)  # (T, C)
    n_classes = log_probs.shape[1]
    labels = np.array([label for label in range(n_classes) if label != blank])  # (C - 1,)
    n_tried = min(beam_width, len(labels))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (ends blank, ends label)
    for frame in log_probs:
        tried = labels[np.argsort(-frame[labels], kind="stable")[:n_tried]].tolist()
        frame = frame.tolist()
        scores: dict[tuple[int, ...], list[float]] = {}
        for prefix, (ends_blank, ends_label) in beams.items():
            total = _logaddexp(ends_blank, ends_label)
            stay = scores.setdefault(prefix, [NEG_INF, NEG_INF])
            stay[0] = _logaddexp(stay[0], total + frame[blank])
            if prefix:
                stay[1] = _logaddexp(stay[1], ends_label + frame[prefix[-1]])  # repeated label merges
            for label in tried:
                extended = scores.setdefault(prefix + (label,), [NEG_INF, NEG_INF])
                # a repeated label only starts a new symbol after a blank
                source = ends_blank if prefix and label == prefix[-1] else total
                extended[1] = _logaddexp(extended[1], source + frame[label])
        ranked = sorted(scores.items(), key=lambda item: _logaddexp(*item[1]), reverse=True)
        beams = {prefix: (ends_blank, ends_label) for prefix, (ends_blank, ends_label) in ranked[:beam_width]}
    return list(max(beams.items(), key=lambda item: _logaddexp(*item[1]))[0])


def beam_search_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int, blank: int = 0
) -> list[list[int]]:
    """Prefix beam search over a batch. log_probs: (B, T, C) log-probabilities; lengths: (B,) valid frames."""
    log_probs = log_probs.detach().float().cpu().numpy()  # (B, T, C)
    lengths = lengths.cpu().tolist()
    return [prefix_beam_search(rows[:length], beam_width, blank) for rows, length in zip(log_probs, lengths)]


def edit_distance(reference: Sequence[int], hypothesis: Sequence[int]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions each cost 1), one DP row at a time."""
    hypothesis = np.asarray(hypothesis)
    columns = np.arange(len(hypothesis) + 1)  # (H + 1,)
    row = columns.copy()  # distances from the empty reference prefix
    for i, token in enumerate(reference, start=1):
        substitute = row[:-1] + (hypothesis != token)  # (H,)
        delete = row[1:] + 1  # (H,)
        best = np.concatenate(([i], np.minimum(substitute, delete)))  # (H + 1,)
        # insertions: d[j] = min(best[j], d[j-1] + 1) = j + min_{k<=j}(best[k] - k)
        row = np.minimum.accumulate(best - columns) + columns
    return int(row[-1])


def phoneme_error_rate(references: Sequence[Sequence[int]], hypotheses: Sequence[Sequence[int]]) -> float:
    """Summed edit distance over summed reference length (PER when the labels are phonemes)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total_length = sum(len(reference) for reference in references)
    if total_length == 0:
        raise ValueError("the references hold no labels, so the error rate is undefined")
    errors = sum(edit_distance(reference, hypothesis) for reference, hypothesis in zip(references, hypotheses))
    return errors / total_length


def count_all_blank(hypotheses: Sequence[Sequence[int]]) -> int:
    """How many utterances decoded to nothing but blanks (an empty sequence once blanks are dropped)."""
    return sum(1 for hypothesis in hypotheses if len(hypothesis) == 0)
