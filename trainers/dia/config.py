"""dia configs: the 1.6B Dia architecture (baseline), the seed's small model, scaled sweeps, and a tiny preset.

Fine-tuning defaults follow stlohrey/dia-finetuning (batch 2, grad accum 2, lr 1e-5, warmup 500, cosine,
unconditional_frac 0.15, 8-bit AdamW, channel 0 weighted 4:1); the music presets follow the music fork
(batch 4, weight decay 0.1, clipping 5.0, embeddings out of weight decay, uniform channel weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.family.config import OptimConfig, TrainConfig

PROVENANCE = {
    "baseline": "nari_dia_1.6b",
    "repository": "https://github.com/nari-labs/dia",
    "config_file": "dia/config.py (DiaConfig); fine-tuning: stlohrey/dia-finetuning",
    "reference": "Dia 1.6B: 12-layer 1024-d text encoder, 18-layer 2048-d GQA decoder over 9 DAC codebooks",
}

EOS, PAD, BOS = 1024, 1025, 1026


@dataclass
class ModelConfig:
    """Encoder, decoder and codebook layout (sizes of nari-labs/dia's DiaConfig by default)."""

    enc_layers: int = 12
    enc_d_model: int = 1024
    enc_ffn: int = 4096
    enc_heads: int = 16
    enc_head_dim: int = 128
    text_vocab: int = 256  # bytes
    enc_max_positions: int = 1024
    dec_layers: int = 18
    dec_d_model: int = 2048
    dec_ffn: int = 8192
    dec_q_heads: int = 16
    dec_kv_heads: int = 4
    dec_head_dim: int = 128
    cross_heads: int = 16
    cross_head_dim: int = 128
    channels: int = 9  # DAC codebooks (18 for stereo)
    vocab: int = 1028  # 1024 codes + EOS 1024, PAD 1025, BOS 1026
    dec_max_positions: int = 3072
    delay_pattern: str = "dia"  # dia | musicgen | comma-separated delays, e.g. "0,1,2,3,4,5,6,7,8"
    stereo: bool = False  # the pattern repeats per channel group of 9
    norm_eps: float = 1e-5
    rope_min_timescale: float = 1.0
    rope_max_timescale: float = 10000.0
    attention_scale: float = 1.0  # Dia attends with scale 1.0 (no 1/sqrt(head_dim))
    cross_rope: bool = True  # RoPE on cross-attention queries and keys (first release); Dia-1.6B-0626 has none


@dataclass
class DataConfig:
    """Pre-encoded DAC codes (lab codec encode) or a synthetic tagged-music set; conditioning options."""

    codes: str = "synthetic"  # a folder written by `lab codec encode`, or 'synthetic'
    codec_weights: str = ""  # local DAC weights, to decode generated codes (the synthetic set has its own codec)
    audio_length: int = 860  # frames per training crop (about 10 s at 86 frames/s)
    sliding_window: bool = True  # random crops of audio_length; otherwise the clip's start
    val_fraction: float = 0.1
    text_length: int = 128  # conditioning bytes (padded to this fixed length)
    condition: str = "tags"  # tags | text
    tag_shuffle: bool = True
    tag_dropout: float = 0.1  # probability of dropping each tag
    tag_limit: int = 8  # at most this many tags
    synthetic_clips: int = 48
    synthetic_seconds: float = 1.0
    synthetic_seed: int = 0
    synthetic_codec_width: int = 16  # encoder width of the randomly initialised DAC that encodes synthetic audio
    sample_every: int = 0  # steps between generated CFG samples logged to the run; 0: none
    sample_seconds: float = 1.0


@dataclass
class DiaTrainConfig(TrainConfig):
    """The engine's training settings plus Dia's recipe."""

    unconditional_frac: float = 0.15  # share of batches trained with empty conditioning (for CFG)
    channel_weights: str = "dia"  # dia (channel 0 weighted 4, others 1, normalised) | uniform


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: DiaTrainConfig = field(default_factory=DiaTrainConfig)


def finetune_optim() -> OptimConfig:
    return OptimConfig(name="adamw8bit", lr=1e-5, weight_decay=0.0, schedule="cosine", warmup_steps=500)


def baseline() -> Config:
    """The 1.6B architecture with dia-finetuning's recipe."""
    return Config(
        optim=finetune_optim(),
        train=DiaTrainConfig(batch_size=2, grad_accum=2, precision="bf16", max_steps=20000, eval_every=500,
                             best_metric="val/loss", best_mode="min"),
    )


def music() -> Config:
    """The music fork's recipe on the full model: batch 4, AdamW wd 0.1, clip 5.0, no decay on embeddings."""
    config = baseline()
    config.optim = OptimConfig(name="adamw", lr=1e-5, weight_decay=0.1, no_decay_embed=True, schedule="cosine",
                               warmup_steps=500)
    config.train.batch_size, config.train.grad_accum, config.train.grad_clip = 4, 1, 5.0
    config.train.channel_weights = "uniform"
    return config


def small() -> Config:
    """The seed's model: 6 encoder and 6 decoder layers at 1024 wide (16 heads of 64), trained from scratch."""
    config = music()
    config.model = ModelConfig(enc_layers=6, enc_d_model=1024, enc_ffn=4096, enc_heads=16, enc_head_dim=64,
                               dec_layers=6, dec_d_model=1024, dec_ffn=4096, dec_q_heads=16, dec_kv_heads=4,
                               dec_head_dim=64, cross_heads=16, cross_head_dim=64)
    config.optim.lr = 2e-4
    return config


def half() -> Config:
    """Half the decoder depth of the full model (9 of 18 layers), full width: a sweep point between small and full."""
    config = music()
    config.model.dec_layers = 9
    return config


def tiny() -> Config:
    """A few-minute CPU run on synthetic tagged tones and drums."""
    return Config(
        model=ModelConfig(enc_layers=1, enc_d_model=32, enc_ffn=64, enc_heads=2, enc_head_dim=16, dec_layers=2,
                          dec_d_model=64, dec_ffn=128, dec_q_heads=4, dec_kv_heads=2, dec_head_dim=16, cross_heads=2,
                          cross_head_dim=16, delay_pattern="musicgen", attention_scale=0.25, dec_max_positions=128),
        data=DataConfig(audio_length=32, text_length=32, synthetic_clips=32, synthetic_seconds=0.5, tag_dropout=0.0,
                        sample_seconds=0.25),
        optim=OptimConfig(name="adamw", lr=3e-3, weight_decay=0.0, schedule="constant"),
        train=DiaTrainConfig(device="cpu", batch_size=8, max_steps=200, eval_every=50, log_every=10, grad_clip=1.0,
                             unconditional_frac=0.15, channel_weights="uniform", best_metric="val/loss",
                             best_mode="min"),
    )


PRESETS = {"baseline": baseline, "music": music, "small": small, "half": half, "tiny": tiny}
