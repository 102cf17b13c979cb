"""SaShiMi (Goel et al. 2022): a multi-rate stack of state-space layers (S4D, or the full S4) for raw waveforms.

    model = SaShiMi(config)                  # config: trainers.sashimi.config.ModelConfig
    outputs = model(codes)                   # codes (B, L) long -> head outputs (B, L, classes or 3K)
    state = model.initial_state(batch_size)  # then, one sample at a time, as in generation:
    out, state = model.step(codes[:, t], state)

Structure (autoregressive variant): each level pools the sequence by p and widens it by `expand`; the innermost
level runs `n_layers` (S4 block, FF block) pairs; on the way back each level upsamples (with a one-step causal
shift at the pooled rate), adds the level's input, runs its own `n_layers` pairs and adds its input again. S4
layers convolve with an FFT in training and run as a recurrence in `step`, with identical outputs.

`model.ssm` picks the layer (s4d, or s4: models/s4.py), `model.norm` the blocks' pre-norm (layer: LayerNorm; scalar:
the s4 training code's transposed LayerNorm with one scale and shift), `model.pool_weight_norm` weight-normed pooling
projections: the SC09 checkpoint's model is ssm=s4, norm=scalar, pool_weight_norm=true.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.dml import chunked_cross_entropy, dml_nll
from models.s4 import S4, convolve

KERNEL_CHUNK = 4096  # kernel positions computed at once (recomputed in backward): bounds the Vandermonde memory


class S4D(nn.Module):
    """A diagonal state-space layer (S4D-Lin initialisation, zero-order hold), then GELU, Linear and GLU.

    Per channel h: x_t = exp(dt A) x_{t-1} + (exp(dt A) - 1) / A u_t and y_t = 2 Re(C x_t) + D u_t, with N/2
    complex modes standing for N real ones.
    """

    def __init__(self, width: int, state_size: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 dropout: float = 0.0):
        super().__init__()
        modes = state_size // 2
        log_dt = torch.rand(width) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H,)
        self.log_dt = nn.Parameter(log_dt)
        self.log_a_real = nn.Parameter(torch.full((width, modes), math.log(0.5)))  # A = -0.5 + i pi n
        self.a_imag = nn.Parameter(math.pi * torch.arange(modes).float().repeat(width, 1))  # (H, N/2)
        self.c = nn.Parameter(torch.randn(width, modes, 2) * math.sqrt(0.5))  # complex C as (re, im)
        self.d = nn.Parameter(torch.randn(width))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(width, 2 * width)

    def discretised(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(dt A, C (exp(dt A) - 1) / A), each (H, N/2) complex."""
        a = torch.complex(-torch.exp(self.log_a_real), self.a_imag)
        dt_a = a * torch.exp(self.log_dt).unsqueeze(-1)
        c = torch.view_as_complex(self.c.contiguous())
        return dt_a, c * (torch.exp(dt_a) - 1) / a

    def kernel(self, length: int) -> torch.Tensor:
        """The convolution kernel (H, length): K_l = 2 Re(C B-bar exp(dt A)^l)."""
        dt_a, weight = self.discretised()
        pieces = []
        for start in range(0, length, KERNEL_CHUNK):
            stop = min(length, start + KERNEL_CHUNK)
            if torch.is_grad_enabled():
                pieces.append(checkpoint(_kernel_piece, dt_a, weight, start, stop, use_reentrant=False))
            else:
                pieces.append(_kernel_piece(dt_a, weight, start, stop))
        return torch.cat(pieces, dim=-1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, L, H) -> (B, L, H), by FFT convolution."""
        return convolve(self, u)

    def initial_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, tuple]:
        """(zeros (B, H, N/2) complex, the step constants): the decay exp(dt A), the input gain
        (exp(dt A) - 1) / A and C, each (H, N/2), computed once per generation rather than per sample."""
        with torch.no_grad():
            dt_a, _ = self.discretised()
            a = torch.complex(-torch.exp(self.log_a_real), self.a_imag)
            decay = torch.exp(dt_a)
            constants = (decay, (decay - 1) / a, torch.view_as_complex(self.c.contiguous()))
        zeros = torch.zeros(batch, *self.log_a_real.shape, dtype=torch.complex64, device=device)
        return zeros, tuple(constant.to(device) for constant in constants)

    def step(self, u: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One sample: u (B, H) -> (B, H), with the state from `initial_state` (or the previous step):
        x_t = exp(dt A) x_{t-1} + (exp(dt A) - 1) / A u_t, y_t = 2 Re(C x_t) + D u_t."""
        x, (decay, gain, c) = state
        x = decay * x + gain * u.float().unsqueeze(-1)  # (B, H, N/2)
        y = 2 * (c * x).sum(-1).real + u * self.d
        return F.glu(self.output(F.gelu(y)), dim=-1), (x, (decay, gain, c))


def _kernel_piece(dt_a: torch.Tensor, weight: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    positions = torch.arange(start, stop, device=dt_a.device, dtype=torch.float32)  # (l,)
    vandermonde = torch.exp(dt_a.unsqueeze(-1) * positions)  # (H, N/2, l)
    return 2 * torch.einsum("hn,hnl->hl", weight, vandermonde).real


class FeedForward(nn.Module):
    """Linear (H -> ff H), GELU, dropout, Linear back."""

    def __init__(self, width: int, expand: int, dropout: float):
        super().__init__()
        self.inner = nn.Linear(width, width * expand)
        self.dropout = nn.Dropout(dropout)
        self.outer = nn.Linear(width * expand, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.dropout(F.gelu(self.inner(x))))


class ScalarNorm(nn.Module):
    """(x - mean + shift) * scale / std over the channels (biased std, no epsilon): the s4 training code's
    TransposedLN(scalar=True), with one learned scale and shift."""

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., H) -> (..., H)."""
        std, mean = torch.std_mean(x, dim=-1, unbiased=False, keepdim=True)
        return self.scale / std * (x - mean + self.shift)


def block_norm(width: int, kind: str) -> nn.Module:
    return ScalarNorm() if kind == "scalar" else nn.LayerNorm(width)


class Residual(nn.Module):
    """x + dropout(layer(norm(x))): the pre-norm residual block around an S4/S4D or a feed-forward layer."""

    def __init__(self, width: int, layer: nn.Module, dropout: float, norm: str = "layer"):
        super().__init__()
        self.norm = block_norm(width, norm)
        self.layer = layer
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.layer(self.norm(x)))

    def initial_state(self, batch: int, device: torch.device):
        return self.layer.initial_state(batch, device) if isinstance(self.layer, (S4, S4D)) else None

    def step(self, x: torch.Tensor, state):
        if isinstance(self.layer, (S4, S4D)):
            y, state = self.layer.step(self.norm(x), state)
        else:
            y = self.layer(self.norm(x))
        return x + y, state


class Stack(nn.Module):
    """`n_layers` (S4 block, FF block) pairs at one width, as a sequence and step by step."""

    def __init__(self, width: int, config):
        super().__init__()
        blocks = []
        for _ in range(config.n_layers):
            if config.ssm == "s4":
                ssm = S4(width, config.state_size, config.ssm_copies, dropout=config.dropout)
            else:
                ssm = S4D(width, config.state_size, dropout=config.dropout)
            blocks.append(Residual(width, ssm, config.dropout, config.norm))
            if config.ff > 0:
                blocks.append(Residual(width, FeedForward(width, config.ff, config.dropout), config.dropout,
                                       config.norm))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def initial_state(self, batch: int, device: torch.device) -> list:
        return [block.initial_state(batch, device) for block in self.blocks]

    def step(self, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        new_state = []
        for block, block_state in zip(self.blocks, state):
            x, block_state = block.step(x, block_state)
            new_state.append(block_state)
        return x, new_state


def pooling(inputs: int, outputs: int, weight_norm: bool) -> nn.Linear:
    """A pooling projection; weight-normed (w = g v / |v| per output row) as the s4 training code's pools."""
    linear = nn.Linear(inputs, outputs)
    return nn.utils.parametrizations.weight_norm(linear) if weight_norm else linear


class Level(nn.Module):
    """One pooling level: down-pool, the inner level (or the centre stack), causal up-pool, skip, own stack.

    forward: z = up(inner(down(x))) + x;  out = stack(z) + z.
    Down-pooling reshapes (L, H) to (L / p, H p) and projects to H * expand; up-pooling projects H * expand to
    H p, shifts right by one pooled step (so no output sees its own future) and reshapes back to (L, H).
    """

    def __init__(self, width: int, pools: list[int], config):
        super().__init__()
        self.pool = pools[0]
        inner_width = width * config.expand
        self.down = pooling(width * self.pool, inner_width, config.pool_weight_norm)
        if len(pools) > 1:
            self.inner = Level(inner_width, pools[1:], config)
        else:
            self.inner = Stack(inner_width, config)
        self.up = pooling(inner_width, width * self.pool, config.pool_weight_norm)
        self.stack = Stack(width, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        pooled = self.down(x.reshape(batch, length // self.pool, width * self.pool))  # (B, L/p, H e)
        inner = self.inner(pooled)
        if isinstance(self.inner, Stack):
            inner = inner + pooled  # the centre's residual around its whole stack
        up = F.pad(self.up(inner)[:, :-1], (0, 0, 1, 0))  # (B, L/p, H p), shifted right by one pooled step
        z = up.reshape(batch, length, width) + x
        return self.stack(z) + z

    def initial_state(self, batch: int, device: torch.device) -> dict:
        width = self.up.out_features // self.pool
        return {
            "collected": [],  # inputs waiting to be pooled
            "upsampled": list(torch.zeros(self.pool, batch, width, device=device)),  # outputs waiting to be used
            "inner": self.inner.initial_state(batch, device),
            "stack": self.stack.initial_state(batch, device),
        }

    def step(self, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """x (B, H) one sample at this level's rate -> (B, H)."""
        collected = state["collected"] + [x]
        upsampled, inner_state = state["upsampled"], state["inner"]
        up, upsampled = upsampled[0], upsampled[1:]
        if len(collected) == self.pool:
            pooled = self.down(torch.cat(collected, dim=-1))  # (B, H e)
            inner, inner_state = self.inner.step(pooled, inner_state)
            if isinstance(self.inner, Stack):
                inner = inner + pooled
            upsampled = list(self.up(inner).reshape(x.shape[0], self.pool, -1).unbind(1))
            collected = []
        z = up + x
        out, stack_state = self.stack.step(z, state["stack"])
        return out + z, {"collected": collected, "upsampled": upsampled, "inner": inner_state,
                         "stack": stack_state}


class SaShiMi(nn.Module):
    """Input embedding (or a linear encoder of the sample value), the level stack, LayerNorm and the head."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        classes = 2**config.bits
        if config.input_encoder == "embedding":
            self.encoder = nn.Embedding(classes, config.d_model)
        else:
            self.encoder = nn.Linear(1, config.d_model)
        self.levels = Level(config.d_model, list(config.pool), config)
        self.norm = nn.LayerNorm(config.d_model)
        outputs = 3 * config.n_mixtures if config.head == "dml" else classes
        self.head = nn.Linear(config.d_model, outputs)
        if config.head == "dml":
            self.initialise_mixture_head()

    @property
    def receptive_multiple(self) -> int:
        """Sequence lengths must be multiples of this (the product of the pooling factors)."""
        return math.prod(self.config.pool)

    def initialise_mixture_head(self) -> None:
        """Mixture logits and means start near zero (symmetry broken by sigma 0.1), log-scales in [-1, -0.5]:
        scales of 0.37-0.61 cover the [-1, 1] range from the first step."""
        k = self.config.n_mixtures
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.1)
            self.head.bias.zero_()
            self.head.bias[2 * k:].uniform_(-1.0, -0.5)

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, L) codes -> (B, L, D) input features."""
        if isinstance(self.encoder, nn.Embedding):
            return self.encoder(codes)
        return self.encoder((codes.float() / (2**self.config.bits - 1) * 2 - 1).unsqueeze(-1))

    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """The backbone: (B, L) input codes -> (B, L, D) normalised features (before the head)."""
        if codes.shape[1] % self.receptive_multiple:
            raise ValueError(f"sequence length {codes.shape[1]} is not a multiple of the pooling product "
                             f"{self.receptive_multiple}")
        return self.norm(self.levels(self.encode(codes)))

    def forward(self, codes: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) input codes -> (B, L, outputs) head outputs (logits, or mixture parameters); with `targets`
        (B, L), the mean negative log-likelihood in nats per sample instead."""
        features = self.features(codes)
        return self.head(features) if targets is None else self.loss(features, targets)

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The head and its loss on backbone features (B, L, D): mean nats per sample of `targets` (B, L)."""
        if self.config.head == "dml":
            return dml_nll(self.head(features), targets, self.config.bits)
        return chunked_cross_entropy(features, self.head, targets, self.config.loss_chunk)

    def initial_state(self, batch: int, device: torch.device | None = None) -> dict:
        device = device or self.head.weight.device
        return self.levels.initial_state(batch, device)

    @torch.no_grad()
    def step(self, codes: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """One sample: codes (B,) -> head outputs (B, outputs), the same as `forward` at that position."""
        x = self.encode(codes.unsqueeze(1)).squeeze(1)  # (B, D)
        y, state = self.levels.step(x, state)
        return self.head(self.norm(y)), state
