"""ReDimNet (Yakovlev et al. 2024): speaker embeddings from a network that reshapes between 2D (C, F, T) and 1D
(C*F, T) views, with a mel front-end, attentive statistics pooling and a Matryoshka AAM-softmax head.

    model = ReDimNet(config)                    # config: trainers.redimnet.config.ModelConfig
    embeddings = model(waveforms)               # (B, samples) at 16 kHz -> (B, embed_dim)
    head = MatryoshkaAAM(embed_dim, speakers, dims=[64, 128, 192])
    losses = head(embeddings, labels, margin)   # {dim: cross-entropy}

Stages: each takes a softmax-weighted sum of all earlier 1D outputs, folds it to 2D, trades frequency for
channels with a (stride, 1) convolution, runs 2D blocks (ConvNeXt-like or basic ResNet, optionally with
frequency-wise squeeze-excitation), unfolds to 1D and refines time context with a 1D block at a reduced width
(by default four depthwise ConvNeXt-like convolutions of growing width, then a transformer layer).

Every option of IDRnD/ReDimNet's `ReDimNetWrap` that its published torch.hub files use is a config field
(redimnet/model.py: `block_1d_type`, `block_2d_type`, `group_divisor`, `out_channels`, `global_context_att`,
`emb_bn`, `hop_length`, `feat_agg_dropout`), and so are wespeaker's differences (its Kaldi fbank front-end, no
BatchNorm after the pooling), so both import exactly (trainers/redimnet/weights.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


class MelFrontEnd(nn.Module):
    """Pre-emphasis 0.97, STFT (n_fft 512, window 400 Hamming, hop `hop_length` samples), mel 20-7600 Hz,
    log(x + 1e-6), and mean normalisation over time: (B, samples) -> (B, n_mels, frames), as IDRnD/ReDimNet's
    MelBanks computes them (redimnet/layers/features.py; its pre-emphasis reflect-pads the first sample:
    y[0] = x[0] - 0.97 x[1])."""

    def __init__(self, n_mels: int, sample_rate: int = 16000, hop_length: int = 160):
        super().__init__()
        with torch.device("cpu"):  # filterbanks are computed eagerly, even when the model is built on "meta"
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=512, win_length=400, hop_length=hop_length, f_min=20.0, f_max=7600.0,
                n_mels=n_mels, window_fn=torch.hamming_window,
            )

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            x = waveforms.float()
            previous = torch.cat([x[:, 1:2], x[:, :-1]], dim=1)  # x[t - 1], reflected at t = 0
            x = x - 0.97 * previous
            features = torch.log(self.mel(x) + 1e-6)  # (B, n_mels, frames)
            return features - features.mean(dim=-1, keepdim=True)


class KaldiFbankFrontEnd(nn.Module):
    """Kaldi log-mel filterbanks (25 ms Hamming frames every `hop_length` samples, no dither, no energy) of the
    waveform in 16-bit units, then mean normalisation over time: (B, samples) -> (B, n_mels, frames), as
    wespeaker's recipes feed its ReDimNet (wespeaker/dataset/processor.py compute_fbank and apply_cmvn, through
    torchaudio.compliance.kaldi.fbank)."""

    def __init__(self, n_mels: int, sample_rate: int = 16000, hop_length: int = 160):
        super().__init__()
        self.n_mels, self.sample_rate, self.hop_length = n_mels, sample_rate, hop_length

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            features = torch.stack([torchaudio.compliance.kaldi.fbank(
                waveform[None].float() * (1 << 15), num_mel_bins=self.n_mels, frame_length=25.0,
                frame_shift=1000.0 * self.hop_length / self.sample_rate, dither=0.0,
                sample_frequency=self.sample_rate, window_type="hamming", use_energy=False)
                for waveform in waveforms])  # (B, frames, n_mels)
            return (features - features.mean(dim=1, keepdim=True)).transpose(1, 2)


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis (dim 1) of (B, C, ...) tensors."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class ConvNeXtLike(nn.Module):
    """x + pointwise(GELU(BatchNorm(grouped conv(x)))), in 1D or 2D; ReLU for `relu` (IDRnD's
    'convnext_like_relu')."""

    def __init__(self, channels: int, kernel: int | tuple, dims: int, group_divisor: int, relu: bool = False):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        self.spatial = conv(channels, channels, kernel, padding="same", groups=groups_of(channels, group_divisor))
        self.norm = norm(channels)
        self.pointwise = conv(channels, channels, 1)
        self.activation = F.relu if relu else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(self.activation(self.norm(self.spatial(x))))


class MultiKernelConvNeXt(nn.Module):
    """x + pointwise(GELU(BatchNorm(concat of depthwise 1D convs of several kernels))): (B, C, T) -> (B, C, T).
    IDRnD/ReDimNet's ConvNeXtLikeBlock with several kernel_sizes (redimnet/layers/convnext.py), as its 'conv'
    time-context block uses it."""

    def __init__(self, channels: int, kernels: tuple[int, ...]):
        super().__init__()
        self.spatial = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding="same", groups=channels)
                                     for kernel in kernels)
        self.norm = nn.BatchNorm1d(channels * len(kernels))
        self.pointwise = nn.Conv1d(channels * len(kernels), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.cat([conv(x) for conv in self.spatial], dim=1)  # (B, C * kernels, T)
        return x + self.pointwise(F.gelu(self.norm(branches)))


class PositionalConv(nn.Module):
    """x + ChannelNorm(depthwise conv(x)): the convolutional position encoding before the 'att' time-context
    block's transformer layer (IDRnD/ReDimNet redimnet/model.py PosEncConv)."""

    def __init__(self, channels: int, kernel: int = 59):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = ChannelNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.conv(x))


class FrequencySE(nn.Module):
    """Frequency-wise squeeze-excitation: scale each frequency row by a gate from the mean over (C, T)."""

    def __init__(self, frequencies: int, hidden: int):
        super().__init__()
        self.squeeze = nn.Linear(frequencies, hidden)
        self.excite = nn.Linear(hidden, frequencies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=(1, 3))))))  # (B, F)
        return x * gate[:, None, :, None]


class BasicResidual(nn.Module):
    """Two 3x3 (grouped, then pointwise) convolutions with ReLU and BatchNorm, optional frequency SE, residual.
    The pointwise convolutions are there for every group count, as in IDRnD/ReDimNet's ResBasicBlock
    (redimnet/layers/resblocks.py) and wespeaker's port."""

    def __init__(self, channels: int, frequencies: int, group_divisor: int, frequency_se: bool):
        super().__init__()
        groups = groups_of(channels, group_divisor)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, groups=groups)
        self.point1 = nn.Conv2d(channels, channels, 1)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, groups=groups)
        self.point2 = nn.Conv2d(channels, channels, 1)
        self.norm2 = nn.BatchNorm2d(channels)
        self.se = FrequencySE(frequencies, min(64, max(channels, 32))) if frequency_se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(F.relu(self.point1(self.conv1(x))))
        y = self.se(self.norm2(self.point2(self.conv2(y))))
        return F.relu(x + y)


class TransformerLayer(nn.Module):
    """Post-norm self-attention and feed-forward (tanh-GELU) over (B, C, T) channels-first input."""

    def __init__(self, width: int, hidden: int, heads: int = 4):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.ff = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.norm2 = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, T, C)
        x = self.norm1(x + self.attention(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.ff(x)).transpose(1, 2)


BLOCKS_1D = ("conv+att", "att", "conv", "fc")


class TimeContext(nn.Module):
    """The 1D block: reduce C*F to hidden, time context, expand back, residual. The context is one of
    IDRnD/ReDimNet's TimeContextBlock1d types (redimnet/model.py):
    'conv+att': depthwise ConvNeXt-like kernels 7/19/31/59, then a transformer layer (feed-forward width hidden);
    'att': a depthwise position convolution (kernel 59), then a transformer layer (feed-forward 2 x hidden);
    'conv': four ConvNeXt-like blocks of depthwise kernels 7, 15 and 31 side by side;
    'fc': pointwise hidden -> 2 x hidden, channel LayerNorm, GELU, pointwise back."""

    def __init__(self, width: int, hidden: int, kind: str = "conv+att"):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv1d(width, hidden, 1), ChannelNorm(hidden))
        if kind == "conv+att":
            self.context = nn.Sequential(*(ConvNeXtLike(hidden, kernel, dims=1, group_divisor=1)
                                           for kernel in (7, 19, 31, 59)), TransformerLayer(hidden, hidden))
        elif kind == "att":
            self.context = nn.Sequential(PositionalConv(hidden, 59), TransformerLayer(hidden, 2 * hidden))
        elif kind == "conv":
            self.context = nn.Sequential(*(MultiKernelConvNeXt(hidden, (7, 15, 31)) for _ in range(4)))
        elif kind == "fc":
            self.context = nn.Sequential(nn.Conv1d(hidden, 2 * hidden, 1), ChannelNorm(2 * hidden), nn.GELU(),
                                         nn.Conv1d(2 * hidden, hidden, 1))
        else:
            raise ValueError(f"1D block type {kind!r} is not one of: {', '.join(BLOCKS_1D)}")
        self.expand = nn.Conv1d(hidden, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.context(self.reduce(x)))


class Stage(nn.Module):
    """(B, c, f, T) -> (B, C*F, T): frequency pooling into channels, 2D blocks, optional squeeze, 1D context."""

    def __init__(self, channels: int, frequencies: int, stride: int, blocks: int, conv_expand: int,
                 attention_reduction: int, block_type: str, group_divisor: int, total_width: int,
                 block_1d_type: str = "conv+att"):
        super().__init__()
        out_channels, out_frequencies = channels * stride, frequencies // stride
        wide = out_channels * conv_expand
        self.pool = nn.Conv2d(channels, wide, kernel_size=(stride, 1), stride=(stride, 1))
        if block_type.startswith("convnext_like"):
            blocks_2d = [ConvNeXtLike(wide, (3, 3), dims=2, group_divisor=group_divisor,
                                      relu=block_type == "convnext_like_relu") for _ in range(blocks)]
        else:
            blocks_2d = [BasicResidual(wide, out_frequencies, group_divisor, block_type == "basic_resnet_fwse")
                         for _ in range(blocks)]
        if conv_expand != 1:
            blocks_2d.append(nn.Sequential(
                nn.Conv2d(wide, out_channels, 3, padding="same", groups=groups_of(out_channels, group_divisor)),
                nn.BatchNorm2d(out_channels, eps=1e-6), nn.GELU(), nn.Conv2d(out_channels, out_channels, 1)))
        self.blocks = nn.Sequential(*blocks_2d)
        self.context = (TimeContext(total_width, total_width // attention_reduction, block_1d_type)
                        if attention_reduction else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.pool(x))  # (B, c', f', T)
        x = to_1d(x)
        return self.context(x) if self.context is not None else x


def groups_of(channels: int, group_divisor: int) -> int:
    """Convolution groups as wespeaker's ReDimNet counts them: channels // group_divisor, at least 1."""
    return max(1, channels // group_divisor)


def to_1d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, F*C, T), frequency-major."""
    batch, channels, frequencies, time = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, frequencies * channels, time)


def to_2d(x: torch.Tensor, channels: int, frequencies: int) -> torch.Tensor:
    """(B, F*C, T) -> (B, C, F, T), the inverse of to_1d."""
    return x.reshape(x.shape[0], frequencies, channels, x.shape[-1]).permute(0, 2, 1, 3)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over time: (B, D, T) -> (B, 2D). With `global_context`
    the attention sees each frame with the utterance's global mean and deviation. As wespeaker's ASTP (which
    IDRnD/ReDimNet uses, redimnet/layers/poolings.py): the global deviation is sqrt(unbiased variance + 1e-7), the
    weighted one sqrt(max(variance, 1e-7))."""

    def __init__(self, width: int, bottleneck: int = 128, global_context: bool = True):
        super().__init__()
        inputs = 3 * width if global_context else width
        self.attention = nn.Sequential(nn.Conv1d(inputs, bottleneck, 1), nn.Tanh(), nn.Conv1d(bottleneck, width, 1))
        self.global_context = global_context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, context = x.shape[-1], x
        if self.global_context:
            mean, std = x.mean(-1, keepdim=True), torch.sqrt(x.var(-1, keepdim=True) + 1e-7)  # (B, D, 1) each
            context = torch.cat([x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)], dim=1)
        weights = torch.softmax(self.attention(context), dim=-1)  # (B, D, T)
        weighted_mean = (weights * x).sum(-1)
        weighted_std = torch.sqrt(((weights * x * x).sum(-1) - weighted_mean**2).clamp(min=1e-7))
        return torch.cat([weighted_mean, weighted_std], dim=1)


class ReDimNet(nn.Module):
    """Waveforms (B, samples) at 16 kHz -> embeddings (B, embed_dim)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        channels, frequencies = config.channels, config.n_mels
        total = channels * frequencies
        front_end = KaldiFbankFrontEnd if config.front_end == "kaldi_fbank" else MelFrontEnd
        self.front_end = front_end(frequencies, hop_length=config.hop_length)
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding="same"), ChannelNorm(channels))
        self.shapes, stages = [], []
        for stride, blocks, conv_expand, reduction in config.stages:
            if frequencies % stride:
                raise ValueError(f"{frequencies} frequency rows do not divide by stage stride {stride}")
            self.shapes.append((channels, frequencies))
            stages.append(Stage(channels, frequencies, stride, blocks, conv_expand, reduction, config.block_type,
                                config.group_divisor, total, config.block_1d_type))
            channels, frequencies = channels * stride, frequencies // stride
        self.stages = nn.ModuleList(stages)
        # softmax weights over the earlier 1D outputs, per stage and for the final mix: zeros -> equal weights
        self.mix = nn.ParameterList(nn.Parameter(torch.zeros(1, count + 1, total, 1))
                                    for count in range(1, len(stages) + 1))
        width = config.out_channels or total
        # IDRnD's optional `out_channels`: a pointwise projection of the mixed output before pooling
        self.project = nn.Sequential(nn.Conv1d(total, width, 1), nn.BatchNorm1d(width)) if config.out_channels \
            else nn.Identity()
        self.pool = AttentiveStatsPooling(width, global_context=config.global_context)
        self.norm = nn.BatchNorm1d(2 * width) if config.pooled_norm else nn.Identity()  # wespeaker's has none
        self.embed = nn.Linear(2 * width, config.embed_dim)
        self.embed_norm = nn.BatchNorm1d(config.embed_dim) if config.embedding_norm else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)

    @staticmethod
    def mixed(outputs: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(outputs, dim=1)  # (B, n, C*F, T)
        return (torch.softmax(weights, dim=1) * stacked).sum(dim=1)

    def backbone(self, features: torch.Tensor) -> torch.Tensor:
        """Log-mel features (B, F, T) -> (B, C*F, T)."""
        x = self.stem(features.unsqueeze(1))  # (B, C, F, T)
        outputs = [to_1d(x)]
        for index, stage in enumerate(self.stages):
            mixed = outputs[0] if index == 0 else self.mixed(outputs, self.mix[index - 1])
            output = stage(to_2d(mixed, *self.shapes[index]))  # (B, C*F, T)
            outputs.append(F.dropout(output, self.config.stage_dropout, self.training))
        return self.mixed(outputs, self.mix[-1])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        features = self.project(self.backbone(self.front_end(waveforms)))  # (B, width, T)
        return self.embed_norm(self.embed(self.dropout(self.norm(self.pool(features)))))


def margin_at(step: int, steps_per_epoch: int, final: float = 0.2, start_epoch: int = 20, fix_epoch: int = 40) -> float:
    """wespeaker's margin schedule, stepped every batch: 0 before `start_epoch`, then an exponential ramp
    (1 - 1e-3^progress) to `final` at `fix_epoch`, then `final`."""
    start, end = start_epoch * steps_per_epoch, fix_epoch * steps_per_epoch
    if step < start:
        return 0.0
    if step >= end or end == start:
        return final
    progress = (step - start) / (end - start)
    return final * (1 - 1e-3**progress)


class MatryoshkaAAM(nn.Module):
    """Additive angular margin softmax over nested prefixes of the embedding, one shared weight matrix.

    For each dim m: cos = normalise(z[:, :m]) . normalise(W[:, :m]); the target logit becomes cos(theta + m)
    (or cos(theta) - m sin-free fallback past pi - margin, as ArcFace), all logits scaled by `scale`.
    """

    def __init__(self, embed_dim: int, speakers: int, dims: list[int], scale: float = 32.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(speakers, embed_dim) * 0.01)
        self.dims, self.scale = list(dims), scale

    def cosines(self, embeddings: torch.Tensor, dim: int) -> torch.Tensor:
        return F.linear(F.normalize(embeddings[:, :dim].float()), F.normalize(self.weight[:, :dim].float()))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> dict[int, torch.Tensor]:
        """Cross-entropy per nested dim."""
        losses = {}
        for dim in self.dims:
            cosine = self.cosines(embeddings, dim).clamp(-1 + 1e-7, 1 - 1e-7)  # (B, S)
            target = cosine.gather(1, labels[:, None])
            sine = torch.sqrt(1 - target**2)
            with_margin = target * math.cos(margin) - sine * math.sin(margin)
            with_margin = torch.where(target > math.cos(math.pi - margin), with_margin,
                                      target - (1 - math.cos(margin)))
            logits = cosine.scatter(1, labels[:, None], with_margin) * self.scale
            losses[dim] = F.cross_entropy(logits, labels)
        return losses


class SpeakerModel(nn.Module):
    """The embedding network and its training head, as one module for the engine."""

    training_only = ("head",)  # the AAM head over the training speakers: not part of the published model

    def __init__(self, config, speakers: int):
        super().__init__()
        self.config = config
        self.backbone = ReDimNet(config)
        self.head = MatryoshkaAAM(config.embed_dim, speakers, config.mrl_dims, config.scale)

    def forward(self, waveforms: torch.Tensor, labels: torch.Tensor | None = None,
                margin: float = 0.0) -> torch.Tensor | dict[int, torch.Tensor]:
        """Embeddings (B, embed_dim); with `labels`, the head's loss per nested dim instead."""
        embeddings = self.backbone(waveforms)
        return embeddings if labels is None else self.head(embeddings, labels, margin)
