"""GRU + CTC phoneme decoder over binned intracortical features (cffan/neural_seq_decoder, Willett et al. 2023).

    features (B, T, F) -> Gaussian smoothing over time -> per-day affine x @ W_d + b_d -> softsign
    -> unfold into overlapping windows (kernel_len bins, stride_len hop) -> bidirectional GRU -> Linear
    -> logits (B, T', n_classes + 1), class 0 being the CTC blank.

The original also creates one `inpLayer{d}` Linear layer per day that its forward never uses; they are left out
here, so the parameter count is smaller than the original's by n_days * (F * F + F).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.scan_gru import scan_gru

SMOOTHING_KERNEL_SIZE = 20  # bins, as in the original


def output_lengths(input_lengths: torch.Tensor, kernel_len: int, stride_len: int) -> torch.Tensor:
    """Frames the unfold yields per utterance: (T - kernel_len) // stride_len + 1 (integer division), at least 1.

    The original passed ((T - kernel_len) / stride_len).to(int32) to the CTC loss: one frame short, and zero or
    negative for utterances shorter than a window.
    """
    input_lengths = torch.as_tensor(input_lengths)
    frames = torch.div(input_lengths - kernel_len, stride_len, rounding_mode="floor") + 1
    return torch.clamp(frames, min=1)


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian window of `size` taps centred at (size - 1) / 2; shape (size,)."""
    positions = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (positions / sigma) ** 2)
    return kernel / kernel.sum()


class GaussianSmoothing(nn.Module):
    """Smooths every channel over time with the same fixed Gaussian window (depthwise conv, 'same' padding)."""

    def __init__(self, channels: int, kernel_size: int, sigma: float):
        super().__init__()
        self.channels = channels
        # 'same' padding; for an even kernel the extra zero goes on the right, as with conv1d(padding="same")
        self.padding = ((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2)
        kernel = gaussian_kernel(kernel_size, sigma)
        self.register_buffer("weight", kernel.expand(channels, 1, kernel_size).contiguous())  # (F, 1, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, F)
        x = F.pad(x.transpose(1, 2), self.padding)  # (B, F, T + K - 1)
        x = F.conv1d(x, self.weight, groups=self.channels)  # (B, F, T)
        return x.transpose(1, 2)  # (B, T, F)


class NeuralDecoder(nn.Module):
    """The GRU decoder; `forward` returns unnormalised logits, apply `log_softmax(-1)` before CTC."""

    def __init__(self, config):  # config: trainers.neural_decoder.config.ModelConfig
        super().__init__()
        self.config = config
        n_features = config.n_input_features
        self.smoothing = GaussianSmoothing(n_features, SMOOTHING_KERNEL_SIZE, config.gaussian_smooth_width)
        # one affine input map per recording day, starting as the identity
        self.day_weights = nn.Parameter(torch.eye(n_features).repeat(config.n_days, 1, 1))  # (D, F, F)
        self.day_biases = nn.Parameter(torch.zeros(config.n_days, n_features))  # (D, F)
        self.gru = nn.GRU(
            input_size=n_features * config.kernel_len,
            hidden_size=config.n_units,
            num_layers=config.n_layers,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            batch_first=True,
        )
        for name, parameter in self.gru.named_parameters():
            if name.startswith("weight_hh"):
                nn.init.orthogonal_(parameter)
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(parameter)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.n_units, config.n_classes + 1)  # +1: the CTC blank

    def forward(self, features: torch.Tensor, day: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T', n_classes + 1) for features (B, T, F) recorded on days `day` (B,) (long).

        T' = output_lengths(T); a batch shorter than kernel_len is zero-padded to one window. On an XLA device
        the GRU runs as scans (`models.scan_gru`), its backward direction over each utterance's valid windows
        when `lengths` (B,) gives the valid frames of `features`.
        """
        x = self.smoothing(features)  # (B, T, F)
        weights = self.day_weights[day]  # (B, F, F)
        biases = self.day_biases[day]  # (B, F)
        x = torch.bmm(x, weights) + biases[:, None, :]  # (B, T, F)
        x = F.softsign(x)
        if x.size(1) < self.config.kernel_len:
            x = F.pad(x, (0, 0, 0, self.config.kernel_len - x.size(1)))  # (B, kernel_len, F)
        windows = x.unfold(1, self.config.kernel_len, self.config.stride_len)  # (B, T', F, kernel_len)
        windows = windows.flatten(2)  # (B, T', F * kernel_len), feature-major as the original's nn.Unfold
        if windows.device.type == "xla":
            valid = None if lengths is None else output_lengths(lengths, self.config.kernel_len,
                                                                self.config.stride_len)  # (B,)
            hidden = scan_gru(self.gru, windows, valid)  # (B, T', directions * n_units)
        else:
            hidden, _ = self.gru(windows)  # (B, T', directions * n_units)
        return self.head(hidden)  # (B, T', n_classes + 1)
