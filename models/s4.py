"""The full S4 layer (Gu, Goel and Re 2022, "Efficiently Modeling Long Sequences with Structured State Spaces"):
a diagonal-plus-low-rank (DPLR) state matrix A = Lambda - P P^*, initialised from HiPPO-LegS, discretised with the
bilinear transform, its convolution kernel computed from a Cauchy kernel at the roots of unity (pure PyTorch).

    layer = S4(width=64, state_size=64, copies=1)   # copies: (Lambda, P, B) sets shared across the H channels
    y = layer(u)                                    # u (B, L, H) -> (B, L, H): FFT convolution, GELU, Linear, GLU
    state = layer.initial_state(batch, device)
    y_t, state = layer.step(u_t, state)             # the same outputs, one sample at a time

As in the original, `c` holds C-tilde = C (I - dA^L) for the kernel length L it is attuned to (`kernel_length`, a
buffer saved with the weights): the generating function is evaluated at L roots of unity, and the first forward
(or a longer one, by doubling) sets it. dt = softplus(inv_dt), one per channel, as the s4 configs' dt_transform.
"""

from __future__ import annotations

import cmath
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

FREQUENCY_CHUNK = 512  # frequencies of the Cauchy kernel computed at once: bounds its (.., H, N, f) memory


def legs_dplr(state_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HiPPO-LegS in DPLR form (the S4 paper, Theorem 1 and Appendix C.1), each (N/2,) complex: Lambda, P and B in
    the eigenbasis of the normal part S = A + P P^T (eigenvalues -1/2 + i w; the half with w < 0 kept, one per
    conjugate pair), in double precision. B's imaginary part is clipped to [-2, 2] as the s4 repository's
    nplr(B_clip=2.0)."""
    n = torch.arange(state_size, dtype=torch.float64)
    scale = torch.sqrt(2 * n + 1)
    a = -torch.where(n[:, None] > n[None, :], scale[:, None] * scale[None, :], torch.diag(n + 1))  # (N, N)
    p = torch.sqrt(n + 0.5)  # (N,)
    normal = a + p[:, None] * p[None, :]  # -1/2 I + skew-symmetric
    frequencies, vectors = torch.linalg.eigh(normal * -1j)  # S = i w-eigen of the Hermitian -i S
    order = torch.argsort(frequencies)[: state_size // 2]
    eigenvalues = torch.diagonal(normal).mean() + 1j * frequencies[order]
    inverse = vectors[:, order].conj().T  # (N/2, N)
    b = inverse @ scale.to(inverse.dtype)
    b = torch.complex(b.real, b.imag.clamp(-2.0, 2.0))
    return eigenvalues, inverse @ p.to(inverse.dtype), b


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_n v_n / (z - w_n) + conj(v_n) / (z - conj(w_n)): v (..., H, N/2), z (F,), w (H, N/2) -> (..., H, F)."""
    v, w = torch.cat([v, v.conj()], dim=-1), torch.cat([w, w.conj()], dim=-1)  # both conjugate halves
    return (v.unsqueeze(-1) / (z - w.unsqueeze(-1))).sum(dim=-2)


class S4(nn.Module):
    """A DPLR state-space layer with rank-1 correction, then GELU, Linear and GLU (the s4 repository's S4Block)."""

    def __init__(self, width: int, state_size: int = 64, copies: int = 1, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 dropout: float = 0.0):
        super().__init__()
        if width % copies:
            raise ValueError(f"width {width} is not a multiple of the S4 copies {copies}")
        modes = state_size // 2
        eigenvalues, p, b = (x.to(torch.complex64) for x in legs_dplr(state_size))
        dt = torch.exp(torch.rand(width, 1) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))  # (H, 1)
        self.inv_dt = nn.Parameter(torch.log(torch.expm1(dt)))  # softplus^-1
        self.a_real = nn.Parameter(torch.log(-eigenvalues.real).repeat(copies, 1))  # (S, N/2): Re Lambda = -exp
        self.a_imag = nn.Parameter(-eigenvalues.imag.repeat(copies, 1))  # (S, N/2): Im Lambda = -a_imag
        self.b = nn.Parameter(torch.view_as_real(b).repeat(copies, 1, 1))  # (S, N/2, 2)
        self.p = nn.Parameter(torch.view_as_real(p).repeat(1, copies, 1, 1))  # (1, S, N/2, 2): rank 1
        self.c = nn.Parameter(torch.randn(width, modes, 2) * math.sqrt(0.5))  # (H, N/2, 2) complex C-tilde
        self.d = nn.Parameter(torch.randn(width))
        self.register_buffer("kernel_length", torch.tensor(0))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(width, 2 * width)

    def parameters_by_channel(self) -> tuple[torch.Tensor, ...]:
        """dt (H, 1), Lambda (H, N/2), B (H, N/2), P (1, H, N/2), C-tilde (H, N/2): complex, copies repeated."""
        width = self.c.shape[0]
        repeat = width // self.a_real.shape[0]
        dt = F.softplus(self.inv_dt)
        lam = torch.complex(-torch.exp(self.a_real), -self.a_imag).repeat(repeat, 1)
        b = torch.view_as_complex(self.b.contiguous()).repeat(repeat, 1)
        p = torch.view_as_complex(self.p.contiguous()).repeat(1, repeat, 1)
        return dt, lam, b, p, torch.view_as_complex(self.c.contiguous())

    def discretised(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bilinear dA = (I - dt/2 A)^-1 (I + dt/2 A) (H, N, N) and dB = (I - dt/2 A)^-1 dt B (H, N), over both
        conjugate halves of the state (N = state_size)."""
        dt, lam, b, p, _ = self.parameters_by_channel()
        lam, b, p = (torch.cat([x, x.conj()], dim=-1) for x in (lam, b, p))
        a = torch.diag_embed(lam) - torch.einsum("rhn,rhm->hnm", p, p.conj())  # (H, N, N)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        half = (dt / 2).unsqueeze(-1)  # (H, 1, 1)
        left = eye - half * a
        return torch.linalg.solve(left, eye + half * a), torch.linalg.solve(left, (dt * b).unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def attune(self, length: int) -> None:
        """Set C-tilde for kernels up to `length`: C (I - dA^L) from C on first use, then by doubling L (C-tilde
        (I + dA^L), as the s4 repository's _setup_C)."""
        while self.kernel_length.item() < length:
            doubling = self.kernel_length.item() > 0
            steps = self.kernel_length.item() if doubling else length
            d_a, _ = self.discretised()
            c = torch.view_as_complex(self.c.data.contiguous())
            c_full = torch.cat([c, c.conj()], dim=-1)  # (H, N)
            product = torch.einsum("hn,hnm->hm", c_full, torch.linalg.matrix_power(d_a, steps))
            tilde = c_full + product if doubling else c_full - product
            self.c.data.copy_(torch.view_as_real(tilde[:, : c.shape[-1]]))
            self.kernel_length.fill_(2 * steps if doubling else steps)

    def kernel(self, length: int) -> torch.Tensor:
        """The convolution kernel (H, length), from the truncated generating function at the kernel length's
        roots of unity with the Woodbury correction for the low-rank term (the S4 paper, Algorithm 1)."""
        self.attune(length)
        attuned = int(self.kernel_length.item())
        dt, lam, b, p, c = self.parameters_by_channel()
        omega = torch.tensor(cmath.exp(-2j * math.pi / attuned), dtype=c.dtype, device=c.device) ** torch.arange(
            attuned // 2 + 1, device=c.device)  # (F,)
        z = 2 * (1 - omega) / (1 + omega)
        left, right = torch.cat([b.unsqueeze(0), p]), torch.cat([c.unsqueeze(0), p.conj()])  # (2, H, N/2) each
        v = left.unsqueeze(1) * right.unsqueeze(0) * dt  # (2, 2, H, N/2)
        w = lam * dt
        pieces = []
        for start in range(0, z.shape[0], FREQUENCY_CHUNK):
            piece = z[start:start + FREQUENCY_CHUNK]
            if torch.is_grad_enabled():
                pieces.append(checkpoint(cauchy, v, piece, w, use_reentrant=False))
            else:
                pieces.append(cauchy(v, piece, w))
        r = torch.cat(pieces, dim=-1)  # (2, 2, H, F)
        k_f = r[0, 0] - r[0, 1] * r[1, 0] / (1 + r[1, 1])  # (H, F)
        k_f = k_f * 2 / (1 + omega)
        return torch.fft.irfft(k_f, n=attuned)[..., :length]  # (H, length)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, L, H) -> (B, L, H), by FFT convolution."""
        return convolve(self, u)

    def initial_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, tuple]:
        """(zeros (B, H, N) complex over both conjugate halves, the step matrices): dA (H, N, N), dB (H, N) and
        C = C-tilde (I - dA^L)^-1 (H, N), computed once per generation rather than per sample."""
        with torch.no_grad():
            d_a, d_b = self.discretised()
            c = torch.view_as_complex(self.c.contiguous())
            c = torch.cat([c, c.conj()], dim=-1)  # (H, N)
            if self.kernel_length.item() > 0:
                eye = torch.eye(d_a.shape[-1], dtype=d_a.dtype, device=d_a.device)
                power = torch.linalg.matrix_power(d_a, int(self.kernel_length.item()))
                c = torch.linalg.solve(eye - power.transpose(-1, -2), c.unsqueeze(-1)).squeeze(-1)
        zeros = torch.zeros(batch, *c.shape, dtype=c.dtype, device=device)
        return zeros, (d_a.to(device), d_b.to(device), c.to(device))

    def step(self, u: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One sample: u (B, H) -> (B, H), with the state from `initial_state` (or the previous step)."""
        x, (d_a, d_b, c) = state
        x = torch.einsum("hnm,bhm->bhn", d_a, x) + d_b * u.to(d_b.dtype).unsqueeze(-1)  # (B, H, N)
        y = torch.einsum("hn,bhn->bh", c, x).real + u * self.d
        return F.glu(self.output(F.gelu(y)), dim=-1), (x, (d_a, d_b, c))



def convolve(layer: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """An SSM layer's convolution mode, shared by S4 and S4D: u (B, L, H) convolved with `layer.kernel(L)`
    (H, L) by FFT, plus the skip `layer.d` (H,), then GELU, dropout and the GLU output mix -> (B, L, H)."""
    length = u.shape[1]
    k = layer.kernel(length)  # (H, L)
    u_f = torch.fft.rfft(u.float().transpose(1, 2), n=2 * length)  # (B, H, L + 1)
    y = torch.fft.irfft(u_f * torch.fft.rfft(k, n=2 * length), n=2 * length)[..., :length]  # (B, H, L)
    y = y.transpose(1, 2).to(u.dtype) + u * layer.d
    return F.glu(layer.output(layer.dropout(F.gelu(y))), dim=-1)

