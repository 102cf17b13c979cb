"""neural_decoder configs: the cffan/neural_seq_decoder baseline and a tiny preset for tests and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.family.config import OptimConfig, TrainConfig

PROVENANCE = {
    "baseline": "cffan_baseline",
    "repository": "https://github.com/cffan/neural_seq_decoder",
    "config_file": "src/neural_decoder/conf/config.yaml",
    "reference": "Willett et al. 2023, a high-performance speech neuroprosthesis",
}


@dataclass
class ModelConfig:
    """GRU + CTC decoder over binned neural features."""

    n_input_features: int = 256  # 128 threshold crossings + 128 spike power
    n_classes: int = 40  # phonemes + SIL; the output adds the CTC blank (id 0)
    n_units: int = 1024
    n_layers: int = 5
    bidirectional: bool = True
    dropout: float = 0.4
    kernel_len: int = 32  # unfold window, in 20 ms bins
    stride_len: int = 4
    gaussian_smooth_width: float = 2.0
    n_days: int = 24


@dataclass
class DataConfig:
    """Where the data comes from, and its augmentations."""

    source: str = "synthetic"  # path to a competitionData pickle, or 'synthetic'
    synthetic_days: int = 24
    synthetic_sentences_per_day: int = 32
    synthetic_seed: int = 0
    white_noise_sd: float = 0.8  # per element
    constant_offset_sd: float = 0.2  # per batch x channel, constant over time
    time_mask_prob: float = 0.0
    time_mask_width: int = 20
    freq_mask_prob: float = 0.0
    freq_mask_width: int = 16
    beam_width: int = 0  # 0 = greedy CTC decoding at evaluation; > 0 = prefix beam search
    pad_frames_to: int = 0  # pad each batch's frames to a multiple of this; 0 = none (64 on train.device=xla)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def baseline() -> Config:
    """The original repository's defaults (config.yaml of cffan/neural_seq_decoder)."""
    return Config(
        model=ModelConfig(),
        data=DataConfig(),
        optim=OptimConfig(
            name="adam", lr=0.02, lr_end=0.02, betas=[0.9, 0.999], eps=0.1, weight_decay=1e-5,
            schedule="constant",
        ),
        train=TrainConfig(
            batch_size=64, max_steps=10000, grad_clip=0.0, eval_every=100, log_every=10,
            best_metric="val/per", best_mode="min", seed=0,
        ),
    )


def tiny() -> Config:
    """A few-minute CPU run on synthetic data: small GRU, few days, short sentences."""
    return Config(
        model=ModelConfig(n_units=64, n_layers=2, dropout=0.1, kernel_len=8, stride_len=4, n_days=4),
        data=DataConfig(
            source="synthetic", synthetic_days=4, synthetic_sentences_per_day=64,
            white_noise_sd=0.2, constant_offset_sd=0.05,
        ),
        optim=OptimConfig(name="adam", lr=3e-3, lr_end=3e-3, eps=1e-8, weight_decay=1e-5, schedule="constant"),
        train=TrainConfig(
            batch_size=16, max_steps=300, eval_every=50, log_every=10,
            best_metric="val/per", best_mode="min", seed=0,
        ),
    )


PRESETS = {"baseline": baseline, "tiny": tiny}
