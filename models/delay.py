"""Codebook delay patterns for multi-codebook audio tokens (Dia, MusicGen), and the training sequence around them.

    pattern = delays("dia", channels=9)              # [0, 8, 9, 10, 11, 12, 13, 14, 15]
    delayed = apply_delay(codes, pattern, bos, pad)  # (B, T, C) -> (B, T + max(d), C)
    codes = revert_delay(delayed, pattern)           # (B, T + max(d), C) -> (B, T, C), exactly

Channel c of the delayed stream at step t holds the original frame t - d_c: BOS before the channel starts,
PAD after it ends. Keeping all T + max(d) steps makes the round trip exact (a revert that clamps at T - 1 would
lose each channel's tail). Stereo doubles the channels: the pattern repeats for the second group.
"""

from __future__ import annotations

import torch

DIA_DELAYS = (0, 8, 9, 10, 11, 12, 13, 14, 15)


def delays(pattern: str | list[int], channels: int, stereo: bool = False) -> list[int]:
    """The delay of every channel: 'dia', 'musicgen' ([0, 1, ..., K-1]) or an explicit list, per channel group."""
    per_group = channels // 2 if stereo else channels
    if stereo and channels % 2:
        raise ValueError(f"stereo needs an even number of channels, got {channels}")
    if pattern == "dia":
        if per_group != len(DIA_DELAYS):
            raise ValueError(f"the dia delay pattern is for {len(DIA_DELAYS)} codebooks, the model has {per_group}")
        group = list(DIA_DELAYS)
    elif pattern == "musicgen":
        group = list(range(per_group))
    elif isinstance(pattern, (list, tuple)):
        group = [int(delay) for delay in pattern]
        if len(group) != per_group or any(delay < 0 for delay in group):
            raise ValueError(f"a delay list needs {per_group} delays of at least 0, got {list(pattern)}")
    else:
        raise ValueError(f"delay pattern {pattern!r} is not 'dia', 'musicgen' or a list of delays")
    return group * 2 if stereo else group


def apply_delay(codes: torch.Tensor, pattern: list[int], bos: int, pad: int) -> torch.Tensor:
    """(B, T, C) codes -> (B, T + max(d), C): out[t, c] = codes[t - d_c, c], BOS before it, PAD after it."""
    batch, frames, channels = codes.shape
    steps = frames + max(pattern)
    time = torch.arange(steps, device=codes.device).unsqueeze(1)  # (S, 1)
    source = time - torch.tensor(pattern, device=codes.device)  # (S, C)
    gathered = codes.gather(1, source.clamp(0, frames - 1).unsqueeze(0).expand(batch, -1, -1))  # (B, S, C)
    out = torch.where(source < 0, torch.full_like(gathered, bos), gathered)
    return torch.where(source >= frames, torch.full_like(out, pad), out)


def revert_delay(delayed: torch.Tensor, pattern: list[int]) -> torch.Tensor:
    """(B, T + max(d), C) -> (B, T, C): out[t, c] = delayed[t + d_c, c]."""
    batch, steps, channels = delayed.shape
    frames = steps - max(pattern)
    time = torch.arange(frames, device=delayed.device).unsqueeze(1)  # (T, 1)
    source = time + torch.tensor(pattern, device=delayed.device)  # (T, C)
    return delayed.gather(1, source.unsqueeze(0).expand(batch, -1, -1))


def training_sequence(codes: torch.Tensor, pattern: list[int], bos: int, eos: int, pad: int) -> torch.Tensor:
    """The decoder's whole sequence for (T, C) codes: a BOS row, then the delayed codes with an EOS row appended
    before delaying (so each channel's EOS lands at T + d_c), then PAD: (1 + T + 1 + max(d), C)."""
    with_eos = torch.cat([codes, torch.full_like(codes[:1], eos)])  # (T + 1, C)
    delayed = apply_delay(with_eos.unsqueeze(0), pattern, bos, pad)[0]  # (T + 1 + max(d), C)
    return torch.cat([torch.full_like(codes[:1], bos), delayed])
