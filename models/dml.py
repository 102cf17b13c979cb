"""Sample quantisation and the two waveform output heads' losses: categorical and discretised logistic mixture.

    codes = quantize(audio, bits=8, kind="mulaw")              # (B, L) long in [0, 2^bits)
    nll = dml_nll(params, codes, bits=16)                      # params (B, L, 3K): logits, means, log-scales
    nll = chunked_cross_entropy(features, head, codes)         # never holds all (B, L, 2^bits) logits at once

The DML likelihood is PixelCNN++'s (Salimans et al. 2017) in one dimension, computed in float32 log space. Its
edge cases are decided by the bin index (first and last bin take the whole tail), which is right at any bit
depth; the usual `x < -0.999` test would give dozens of 16-bit bins the whole tail each.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

MULAW, LINEAR = "mulaw", "linear"
DELTA_FLOOR = 1e-5  # below this bin mass, the mid-point density times the bin width stands in (PixelCNN++)


def log_scale_floor(bits: int) -> float:
    """The lowest log-scale a mixture component may take: -7 at 8 bits, log(1e-14) at 16 (PixelCNN++ / s4)."""
    return -7.0 if bits <= 8 else math.log(1e-14)


def quantize(audio: torch.Tensor, bits: int, kind: str) -> torch.Tensor:
    """Audio in [-1, 1] as integer codes in [0, 2^bits): mu-law companded or linear."""
    levels = 2**bits
    audio = audio.clamp(-1.0, 1.0)
    if kind == MULAW:
        mu = levels - 1
        audio = torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)
    elif kind != LINEAR:
        raise ValueError(f"quantisation must be {MULAW!r} or {LINEAR!r}, got {kind!r}")
    return ((audio + 1) / 2 * (levels - 1)).round().long()


def dequantize(codes: torch.Tensor, bits: int, kind: str) -> torch.Tensor:
    """Codes in [0, 2^bits) back to audio in [-1, 1]."""
    levels = 2**bits
    values = codes.float() / (levels - 1) * 2 - 1
    if kind == MULAW:
        mu = levels - 1
        values = torch.sign(values) * ((1 + mu) ** values.abs() - 1) / mu
    return values


def code_to_unit(codes: torch.Tensor, bits: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Codes as the centres of their bins in [-1, 1] (what the mixture models)."""
    return codes.to(dtype) / (2**bits - 1) * 2 - 1


def split_mixture(params: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, L, 3K) head outputs -> mixture logits, means, clamped log-scales, each (B, L, K), in float32 at
    least (float64 stays float64)."""
    logits, means, log_scales = params.to(torch.promote_types(params.dtype, torch.float32)).chunk(3, dim=-1)
    return logits, means, log_scales.clamp(min=log_scale_floor(bits))


def dml_log_prob(params: torch.Tensor, codes: torch.Tensor, bits: int) -> torch.Tensor:
    """log P(code) under the discretised logistic mixture, (B, L), from params (B, L, 3K) and codes (B, L)."""
    logits, means, log_scales = split_mixture(params, bits)
    x = code_to_unit(codes, bits, logits.dtype).unsqueeze(-1)  # (B, L, 1)
    half_bin = 1.0 / (2**bits - 1)
    centred = x - means  # (B, L, K)
    inv_scale = torch.exp(-log_scales)
    plus = inv_scale * (centred + half_bin)
    minus = inv_scale * (centred - half_bin)
    log_cdf_plus = F.logsigmoid(plus)  # = plus - softplus(plus): the first bin takes the left tail
    log_one_minus_cdf_minus = F.logsigmoid(-minus)  # = -softplus(minus): the last bin takes the right tail
    # log(sigmoid(plus) - sigmoid(minus)) = log sigmoid(plus) + log sigmoid(-minus) + log(1 - e^(minus - plus)):
    # no cancellation between two sigmoids near 1 (or 0) in float32.
    # minus - plus is -2 h / s exactly; subtracting the two would cancel at 16 bits
    log_delta = log_cdf_plus + log_one_minus_cdf_minus + torch.log(-torch.expm1(-2 * half_bin * inv_scale))
    middle = inv_scale * centred
    log_mid_density = middle - log_scales - 2 * F.softplus(middle)
    inner = torch.where(
        log_delta > math.log(DELTA_FLOOR),
        log_delta,
        log_mid_density - math.log((2**bits - 1) / 2),  # density at the centre times the bin width
    )
    first, last = (codes == 0).unsqueeze(-1), (codes == 2**bits - 1).unsqueeze(-1)
    log_probs = torch.where(first, log_cdf_plus, torch.where(last, log_one_minus_cdf_minus, inner))
    return torch.logsumexp(log_probs + F.log_softmax(logits, dim=-1), dim=-1)


def dml_nll(params: torch.Tensor, codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Mean negative log-likelihood in nats per sample."""
    return -dml_log_prob(params, codes, bits).mean()


def dml_sample(params: torch.Tensor, bits: int, temperature: float = 1.0) -> torch.Tensor:
    """Codes drawn from the mixture: params (..., 3K) -> (...) long."""
    logits, means, log_scales = split_mixture(params, bits)
    component = torch.distributions.Categorical(logits=logits / max(temperature, 1e-6)).sample()  # (...)
    mean = means.gather(-1, component.unsqueeze(-1)).squeeze(-1)
    scale = log_scales.gather(-1, component.unsqueeze(-1)).squeeze(-1).exp() * temperature
    uniform = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
    x = (mean + scale * (torch.log(uniform) - torch.log1p(-uniform))).clamp(-1, 1)
    return ((x + 1) / 2 * (2**bits - 1)).round().long()


def chunked_cross_entropy(features: torch.Tensor, head: torch.nn.Module, codes: torch.Tensor,
                          chunk: int = 2048) -> torch.Tensor:
    """Mean cross-entropy of `head(features)` against `codes`, a chunk of positions at a time.

    features (B, L, D), codes (B, L). Each chunk's logits (B, chunk, C) are computed in float32 and dropped
    after use; the backward pass recomputes them (activation checkpointing), so no (B, L, C) tensor is ever
    held, however large the 16-bit vocabulary.
    """
    total = features.new_zeros((), dtype=torch.float32)
    for start in range(0, features.shape[1], chunk):
        piece = features[:, start:start + chunk]
        targets = codes[:, start:start + chunk]
        if torch.is_grad_enabled() and piece.requires_grad:
            total = total + checkpoint(_summed_cross_entropy, piece, head, targets, use_reentrant=False)
        else:
            total = total + _summed_cross_entropy(piece, head, targets)
    return total / codes.numel()


def _summed_cross_entropy(features: torch.Tensor, head: torch.nn.Module, codes: torch.Tensor) -> torch.Tensor:
    logits = head(features).float()  # (B, chunk, C)
    return F.cross_entropy(logits.flatten(0, 1), codes.flatten(), reduction="sum")
