"""sashimi configs: SaShiMi on SC09 (the baseline), on music, on MUSDB18 at 16 bits, and a tiny preset."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.family.config import OptimConfig, TrainConfig

PROVENANCE = {
    "baseline": "s4_sashimi_sc09",
    "repository": "https://github.com/state-spaces/s4",
    "config_file": "configs/experiment/audio/sashimi-sc09.yaml (model: models/sashimi/sashimi.py)",
    "reference": "Goel et al. 2022, It's Raw! Audio Generation with State-Space Models; SC09 NLL 1.891 bits",
}


@dataclass
class ModelConfig:
    """SaShiMi backbone and output head."""

    d_model: int = 64
    n_layers: int = 8  # (S4, FF) pairs per level
    pool: list[int] = field(default_factory=lambda: [4, 4])
    expand: int = 2  # width multiplier per pooling level: 64 -> 128 -> 256
    ff: int = 2  # feed-forward expansion
    state_size: int = 64  # S4 state N (N/2 complex modes)
    ssm: str = "s4d"  # s4d (diagonal) | s4 (DPLR with LegS init, as the paper and the SC09 checkpoint)
    ssm_copies: int = 1  # s4: independent (Lambda, P, B) sets shared across the channels (the SC09 config's n_ssm)
    norm: str = "layer"  # the blocks' pre-norm: layer (LayerNorm) | scalar (the s4 training code's, one scale+shift)
    pool_weight_norm: bool = False  # weight-normed pooling projections, as the s4 training code
    dropout: float = 0.0
    bits: int = 8  # 2^bits sample classes
    head: str = "categorical"  # categorical | dml
    n_mixtures: int = 10  # DML components (outputs 3K)
    input_encoder: str = "embedding"  # embedding | linear (of the sample value; for 16 bits)
    loss_chunk: int = 2048  # positions per chunk of the categorical loss (bounds its logits memory)


@dataclass
class DataConfig:
    """Audio source, quantisation and crops. Lengths are samples per channel."""

    source: str = "synthetic"  # a folder of wav files, or 'synthetic'
    layout: str = "folder"  # folder | musdb18 (root/{train,test}/<track>/<stem>.wav)
    musdb_stem: str = "mixture"  # mixture | drums | bass | other | vocals
    sample_rate: int = 16000
    quantization: str = "mulaw"  # mulaw | linear
    stereo: bool = False  # two channels interleaved per sample (the sequence is twice as long)
    train_length: int = 16000  # training crop
    val_length: int = 16000  # validation chunk: its own size, never the training crop's by accident
    val_batch_size: int = 0  # 0: the training batch size
    val_fraction: float = 0.1  # share of files held out when the folder has no train/ and valid/ subfolders
    synthetic_clips: int = 64
    synthetic_seconds: float = 1.0
    synthetic_seed: int = 0
    sample_every: int = 0  # steps between generated samples logged to the run; 0: none
    sample_seconds: float = 0.25


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def sc09_optim(lr: float) -> OptimConfig:
    """AdamW without weight decay, ReduceLROnPlateau (factor 0.2, patience 20), as the s4 audio configs."""
    return OptimConfig(name="adamw", lr=lr, weight_decay=0.0, schedule="plateau", plateau_factor=0.2,
                       plateau_patience=20)


def baseline() -> Config:
    """SC09 (1 s speech digits at 16 kHz, 8-bit mu-law), the paper's autoregressive SaShiMi."""
    return Config(
        model=ModelConfig(),
        data=DataConfig(train_length=16000, val_length=16000),
        optim=sc09_optim(0.001),
        train=TrainConfig(batch_size=32, max_steps=200000, eval_every=1000, best_metric="val/bits_per_sample",
                          best_mode="min"),
    )


def sc09() -> Config:
    """The paper's SC09 model as the s4 training code builds it (configs/experiment/audio/sashimi-sc09.yaml with
    model/sashimi.yaml and model/layer/s4.yaml): full S4 (DPLR, LegS, n_ssm=1, softplus dt), scalar transposed
    LayerNorm in the blocks, weight-normed pools; 4,751,072 parameters with the embedding and the head."""
    config = baseline()
    config.model = ModelConfig(ssm="s4", ssm_copies=1, norm="scalar", pool_weight_norm=True)
    return config


def music() -> Config:
    """Music (YouTubeMix/Beethoven-style): the same model at lr 0.004 on 8 s crops."""
    config = baseline()
    config.data = DataConfig(train_length=128000, val_length=128000)
    config.optim = sc09_optim(0.004)
    config.train.batch_size = 1
    return config


def musdb_mono() -> Config:
    """MUSDB18 mixtures at 16 bits, 8192-sample crops, DML head (5 components) with clipping."""
    config = baseline()
    config.model = ModelConfig(bits=16, head="dml", n_mixtures=5, input_encoder="linear")
    config.data = DataConfig(layout="musdb18", quantization="linear", train_length=8192, val_length=8192)
    config.optim = sc09_optim(0.001)
    config.train = TrainConfig(batch_size=1, max_steps=200000, eval_every=1000, grad_clip=1.0,
                               best_metric="val/bits_per_sample", best_mode="min")
    return config


def musdb_stereo() -> Config:
    """MUSDB18 stereo at 16 bits: 12288 samples per channel, interleaved (24576 positions)."""
    config = musdb_mono()
    config.data.stereo = True
    config.data.train_length = config.data.val_length = 12288
    return config


def tiny() -> Config:
    """A few-minute CPU run on synthetic tones and noise bursts."""
    return Config(
        model=ModelConfig(d_model=16, n_layers=1, pool=[4, 4], expand=2, ff=2, state_size=16),
        data=DataConfig(train_length=1024, val_length=2048, val_batch_size=4, synthetic_clips=48,
                        synthetic_seconds=0.5, sample_seconds=0.05),
        optim=OptimConfig(name="adamw", lr=3e-3, schedule="constant"),
        train=TrainConfig(batch_size=8, max_steps=200, eval_every=50, log_every=10,
                          best_metric="val/bits_per_sample", best_mode="min", grad_clip=1.0),
    )


PRESETS = {"baseline": baseline, "sc09": sc09, "music": music, "musdb_mono": musdb_mono,
           "musdb_stereo": musdb_stereo, "tiny": tiny}
