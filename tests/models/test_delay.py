"""Delay patterns against a slow loop reference; exact round trips; BOS, EOS and PAD where Dia puts them."""

import pytest
import torch

from models.delay import DIA_DELAYS, apply_delay, delays, revert_delay, training_sequence

BOS, EOS, PAD = 1026, 1024, 1025


def loop_apply(codes, pattern, bos, pad):
    """out[t, c] = codes[t - d_c, c], one element at a time."""
    batch, frames, channels = codes.shape
    out = torch.empty(batch, frames + max(pattern), channels, dtype=codes.dtype)
    for b in range(batch):
        for t in range(frames + max(pattern)):
            for c in range(channels):
                source = t - pattern[c]
                out[b, t, c] = bos if source < 0 else pad if source >= frames else codes[b, source, c]
    return out


@pytest.mark.parametrize("pattern, channels, stereo", [("dia", 9, False), ("musicgen", 4, False),
                                                       ([0, 2, 1], 3, False), ("dia", 18, True)])
def test_apply_matches_the_loop_and_revert_round_trips(pattern, channels, stereo):
    torch.manual_seed(0)
    resolved = delays(pattern, channels, stereo)
    codes = torch.randint(0, 1024, (2, 21, channels))
    delayed = apply_delay(codes, resolved, BOS, PAD)
    assert torch.equal(delayed, loop_apply(codes, resolved, BOS, PAD))
    assert torch.equal(revert_delay(delayed, resolved), codes)


def test_patterns():
    assert delays("dia", 9) == list(DIA_DELAYS) == [0, 8, 9, 10, 11, 12, 13, 14, 15]
    assert delays("musicgen", 9) == list(range(9))
    assert delays("dia", 18, stereo=True) == list(DIA_DELAYS) * 2
    with pytest.raises(ValueError, match="dia delay pattern is for 9 codebooks"):
        delays("dia", 4)
    with pytest.raises(ValueError, match="needs 3 delays"):
        delays([0, 1], 3)


def test_the_training_sequence_puts_eos_on_one_row_before_delaying():
    codes = torch.arange(12).reshape(4, 3)  # T=4 frames, 3 channels
    sequence = training_sequence(codes, [0, 1, 2], BOS, EOS, PAD)
    assert sequence.shape == (1 + 4 + 1 + 2, 3)
    assert sequence[0].tolist() == [BOS] * 3
    assert [int(sequence[1 + 4 + d, c]) for c, d in enumerate([0, 1, 2])] == [EOS] * 3  # EOS at T + d_c
    assert sequence[-1].tolist() == [PAD, PAD, EOS]
    assert sequence[1:, 0].tolist()[:4] == codes[:, 0].tolist() and sequence[1, 2] == BOS
