"""redimnet configs: ReDimNet b0-b6 as in wespeaker's port of IDRnD/ReDimNet, and a tiny preset.

Stages are (stride, 2D blocks, conv expansion, attention reduction; 0 = no 1D block). Each size, given to
IDRnD's ReDimNetWrap, builds the same keys and shapes as here (tests/trainers/test_weights.py); the model options
mirror its arguments, so its torch.hub files import with the config they carry (trainers/redimnet/weights.py).
Training follows wespeaker's recipe: AAM-softmax with scale 32 and margin ramped to 0.2, here over Matryoshka dims.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.family.config import OptimConfig, TrainConfig

PROVENANCE = {
    "baseline": "redimnet_b2",
    "repository": "https://github.com/IDRnD/ReDimNet",
    "config_file": "wespeaker/models/redimnet.py (ReDimNetB2); loss and margin schedule: wenet-e2e/wespeaker",
    "reference": "Yakovlev et al. 2024; b2 VoxCeleb1-O EER 0.57%",
}

SIZES = {  # (n_mels F, channels C, 2D block, channels per group, stages)
    "b0": (60, 10, "basic_resnet", 1, [[1, 2, 1, 30], [2, 3, 2, 30], [1, 3, 3, 30], [2, 4, 2, 10], [1, 3, 1, 10]]),
    "b1": (72, 12, "convnext_like", 8, [[1, 2, 1, 0], [2, 3, 1, 0], [3, 4, 1, 12], [2, 5, 1, 12], [2, 3, 1, 8]]),
    "b2": (72, 16, "convnext_like", 4, [[1, 2, 1, 12], [2, 2, 1, 12], [1, 3, 1, 12], [2, 4, 1, 8], [1, 4, 1, 8],
                                        [2, 4, 1, 4]]),
    "b3": (72, 16, "basic_resnet_fwse", 1, [[1, 6, 4, 32], [2, 6, 2, 32], [1, 8, 2, 32], [2, 10, 2, 16],
                                            [1, 10, 1, 16], [2, 8, 1, 16]]),
    "b4": (72, 32, "basic_resnet_fwse", 1, [[1, 4, 2, 48], [2, 4, 2, 48], [1, 6, 2, 48], [2, 6, 1, 32],
                                            [1, 8, 1, 24], [2, 4, 1, 16]]),
    "b5": (72, 32, "basic_resnet_fwse", 16, [[1, 4, 2, 48], [2, 4, 2, 48], [1, 6, 2, 48], [2, 6, 1, 32],
                                             [1, 8, 1, 24], [2, 4, 1, 16]]),
    "b6": (72, 32, "basic_resnet", 32, [[1, 4, 4, 32], [2, 6, 2, 32], [1, 6, 2, 24], [3, 8, 1, 24], [1, 8, 1, 16],
                                        [2, 8, 1, 16]]),
}


@dataclass
class ModelConfig:
    """ReDimNet size and the Matryoshka AAM head."""

    size: str = "b2"  # b0 .. b6, or custom (the fields below)
    n_mels: int = 72
    channels: int = 16
    block_type: str = "convnext_like"  # 2D: convnext_like | convnext_like_relu | basic_resnet | basic_resnet_fwse
    block_1d_type: str = "conv+att"  # 1D time-context blocks: conv+att | att | conv | fc (IDRnD's block_1d_type)
    group_divisor: int = 4  # convolution groups = channels // group_divisor (wespeaker); 1 = depthwise
    stages: list[list[int]] = field(default_factory=lambda: [list(stage) for stage in SIZES["b2"][4]])
    embed_dim: int = 192
    hop_length: int = 160  # mel frame hop in samples
    front_end: str = "mel"  # mel (IDRnD's MelBanks) | kaldi_fbank (wespeaker's Kaldi fbank and mean normalisation)
    pooled_norm: bool = True  # BatchNorm1d on the pooled statistics (IDRnD's; wespeaker's ReDimNet has none)
    out_channels: int = 0  # > 0: pointwise projection + BatchNorm of the C*F output to this width before pooling
    global_context: bool = True  # the pooling's attention sees the utterance mean and std (global_context_att)
    embedding_norm: bool = False  # BatchNorm1d on the embedding (IDRnD's emb_bn)
    stage_dropout: float = 0.0  # dropout on each stage's 1D output while training (IDRnD's feat_agg_dropout)
    dropout: float = 0.0  # before the embedding layer
    mrl_dims: list[int] = field(default_factory=lambda: [64, 128, 192])  # nested dims, each <= embed_dim
    scale: float = 32.0
    margin: float = 0.2
    margin_start_epoch: int = 20
    margin_fix_epoch: int = 40
    speakers: int = 5994  # training speakers (VoxCeleb2 dev)


@dataclass
class DataConfig:
    """VoxCeleb-layout folders (<speaker>/<video>/<utt>.wav) and a trial list, or synthetic speakers."""

    train: str = "synthetic"
    val: str = "synthetic"  # speakers for verification: must not overlap the training speakers
    trials: str = ""  # `label path_a path_b` lines, paths relative to data.val; empty: all pairs (synthetic)
    sample_rate: int = 16000
    train_seconds: float = 2.0  # random crops for training
    val_seconds: float = 2.0  # held-out utterances of training speakers (the validation loss)
    held_out_per_speaker: int = 1
    speakers_per_batch: int = 0  # > 0: batches of this many speakers x (batch_size / it) utterances
    synthetic_speakers: int = 24
    synthetic_val_speakers: int = 8
    synthetic_utterances: int = 6
    synthetic_seconds: float = 1.0
    synthetic_seed: int = 0
    eer_every: int = 5000  # steps between EER/minDCF evaluations (also at the first evaluation and the end); 0: never


@dataclass
class RedimnetTrainConfig(TrainConfig):
    """The engine's training settings plus the head's own learning rate (two-stage fine-tuning)."""

    head_lr: float = 0.0  # peak LR of the AAM head; 0: optim.lr like the backbone


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RedimnetTrainConfig = field(default_factory=RedimnetTrainConfig)


def sized(size: str) -> Config:
    """The ReDimNet size `size` with wespeaker's recipe (SGD-free here: AdamW, warmup then cosine)."""
    mels, channels, block, per_group, stages = SIZES[size]
    return Config(
        model=ModelConfig(size=size, n_mels=mels, channels=channels, block_type=block, group_divisor=per_group,
                          stages=[list(stage) for stage in stages]),
        optim=OptimConfig(name="adamw", lr=2e-3, weight_decay=1e-4, schedule="cosine", warmup_steps=6000,
                          lr_end=5e-5),
        train=RedimnetTrainConfig(batch_size=128, max_steps=150000, eval_every=5000, best_metric="val/eer_192",
                          best_mode="min", grad_clip=5.0),
    )


def tiny() -> Config:
    """A few-minute CPU run on synthetic speakers."""
    return Config(
        model=ModelConfig(size="custom", n_mels=24, channels=4, block_type="convnext_like", group_divisor=1,
                          stages=[[1, 1, 1, 8], [2, 1, 1, 8]], embed_dim=64, mrl_dims=[16, 32, 64], speakers=24,
                          margin_start_epoch=2, margin_fix_epoch=6),
        data=DataConfig(train_seconds=0.5, val_seconds=0.5, speakers_per_batch=8, eer_every=80),
        optim=OptimConfig(name="adamw", lr=3e-3, weight_decay=1e-4, schedule="constant"),
        train=RedimnetTrainConfig(device="cpu", batch_size=16, max_steps=240, eval_every=40, log_every=10,
                                  grad_clip=5.0, best_metric="val/eer_64", best_mode="min"),
    )


PRESETS = {"baseline": lambda: sized("b2"), **{size: (lambda size=size: sized(size)) for size in SIZES},
           "tiny": tiny}
