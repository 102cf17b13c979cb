"""The redimnet family for the shared engine: speaker embeddings trained with Matryoshka AAM-softmax.

Batches are {"waveforms": (B, samples), "labels": (B,)}. The loss is the sum over nested dims of each dim's
AAM cross-entropy, at the margin of wespeaker's schedule for the current step. Validation reports the same
loss on held-out utterances of the training speakers, and (its own stage) EER and minDCF per dim on other
speakers' trials.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch
import torch.nn.functional as F

from lab import tracker
from models.redimnet import SpeakerModel, margin_at
from models.verification import bootstrap_se, equal_error_rate, min_dcf
from trainers.formats import audio
from trainers.family.context import Context, DataBundle, with_standard_error
from trainers.redimnet import data
from trainers.redimnet.config import Config


def build_model(config: Config) -> SpeakerModel:
    return SpeakerModel(config.model, config.model.speakers)


def training_speakers(config: Config) -> list[tuple[str, list[np.ndarray]]]:
    data_config = config.data
    if data_config.train == "synthetic":
        return [(name, list(clips)) for name, clips in data.synthetic_speakers(
            data_config.synthetic_speakers, data_config.synthetic_utterances, data_config.synthetic_seconds,
            data_config.sample_rate, data_config.synthetic_seed)]
    return [(name, clips) for name, clips, _ in data.folder_speakers(data_config.train, data_config.sample_rate)]


def build_data(config: Config) -> DataBundle:
    """Training crops of every speaker's utterances but the last `held_out_per_speaker`, which validate."""
    data_config = config.data
    speakers = training_speakers(config)
    if len(speakers) > config.model.speakers:
        raise ValueError(f"the training data has {len(speakers)} speakers but model.speakers is "
                         f"{config.model.speakers}; set model.speakers={len(speakers)}")
    held = data_config.held_out_per_speaker
    train_items, val_items = [], []
    for label, (_, clips) in enumerate(speakers):
        if len(clips) <= held:
            raise ValueError(f"speaker {speakers[label][0]} has {len(clips)} utterances; {held} are held out")
        train_items += [(clip, label) for clip in clips[:-held]]
        val_items += [(clip, label) for clip in clips[-held:]]
    rate = data_config.sample_rate
    train = data.CropDataset(train_items, int(data_config.train_seconds * rate), random_crop=True)
    val = data.CropDataset(val_items, int(data_config.val_seconds * rate), random_crop=False)
    _, _, val_speakers = data.verification_set(data_config)
    overlap = sorted({name for name, _ in speakers} & set(val_speakers))
    if overlap:
        message = (f"{len(overlap)} verification speaker(s) are also training speakers (e.g. {overlap[0]}): EER "
                   "on them measures memory, not generalisation; use disjoint speakers for data.val")
        print(f"lab: warning: {message}", file=sys.stderr, flush=True)
        tracker.event("health", rule="val_speakers_overlap", severity="warning", step=0, message=message,
                      evidence={"overlap": len(overlap), "example": overlap[0]},
                      suggestion="Point data.val at speakers absent from data.train (VoxCeleb1 test vs VoxCeleb2 dev).")
    sampler = data.speaker_batches(data_config.speakers_per_batch) if data_config.speakers_per_batch else None
    info = {"train_speakers": len(speakers), "train_items": len(train), "val_items": len(val),
            "verification_speakers": len(val_speakers), "speaker_overlap": len(overlap)}
    return DataBundle(train=train, val=val, collate=data.collate, info=info, batch_sampler=sampler)


def param_groups(model: SpeakerModel, config: Config) -> list[dict]:
    """The backbone's groups (weight decay on matrices only) at optim.lr, and the head at train.head_lr."""
    from trainers.engine.optim import parameter_groups

    head = {"params": [p for p in model.head.parameters() if p.requires_grad], "param_names": ["head.weight"],
            "weight_decay": config.optim.weight_decay}
    if config.train.head_lr:
        head["lr"] = config.train.head_lr
    return parameter_groups(model.backbone, config.optim) + [head]


def current_margin(ctx: Context) -> float:
    model = ctx.config.model
    return margin_at(ctx.step, ctx.steps_per_epoch, model.margin, model.margin_start_epoch, model.margin_fix_epoch)


def training_loss(model: torch.nn.Module, batch: dict, ctx: Context) -> tuple[torch.Tensor, dict]:
    margin = current_margin(ctx)
    losses = model(batch["waveforms"], batch["labels"], margin)
    metrics = {f"loss_{dim}": loss.detach() for dim, loss in losses.items()}
    return sum(losses.values()), {**metrics, "margin": margin}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """The training loss (same margin) on held-out utterances of the training speakers, total (with its standard
    error over batches) and per dim, and the number of utterances."""
    margin = current_margin(ctx)
    sums: dict[int, float] = {}
    count, batch_losses = 0, []  # batch_losses: the total over dims of each batch, for its standard error
    for batch in batches:
        losses = {dim: loss.item() for dim, loss in model(batch["waveforms"], batch["labels"], margin).items()}
        for dim, loss in losses.items():
            sums[dim] = sums.get(dim, 0.0) + loss * len(batch["labels"])
        batch_losses.append(sum(losses.values()))
        count += len(batch["labels"])
    if count == 0:
        raise ValueError("evaluate got no validation batches")
    metrics = {f"val/loss_{dim}": total / count for dim, total in sums.items()}
    metrics = {"val/loss": sum(metrics.values()), **metrics, "val/utterances": count}
    return with_standard_error(metrics, "val/loss", batch_losses)


@functools.lru_cache(maxsize=2)
def cached_verification_set(config_key: tuple) -> tuple:
    return data.verification_set(data.DataConfig(**dict(config_key)))


@torch.no_grad()
def embed_utterances(backbone: torch.nn.Module, utterances: list[np.ndarray]) -> torch.Tensor:
    """Embeddings (N, D) of whole utterances, one at a time (no padding enters the statistics)."""
    device = next(backbone.parameters()).device
    return torch.cat([backbone(torch.from_numpy(clip).to(device).unsqueeze(0)).float().cpu() for clip in utterances])


def verification_stage(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """EER and minDCF (p_target 0.01) per Matryoshka dim, cosine scoring over the verification trials, each with
    its bootstrap standard error over trials (`val/eer_<dim>_se`), and the number of trials."""
    config = ctx.config
    utterances, trials, _ = cached_verification_set(tuple(sorted(vars(config.data).items())))
    embeddings = embed_utterances(model.backbone, utterances)
    labels = np.array([label for label, _, _ in trials])
    first, second = (torch.tensor([trial[i] for trial in trials]) for i in (1, 2))
    metrics = {}
    for dim in config.model.mrl_dims:
        normed = F.normalize(embeddings[:, :dim], dim=1)
        scores = (normed[first] * normed[second]).sum(1).numpy()
        metrics[f"val/eer_{dim}"] = equal_error_rate(scores, labels)
        metrics[f"val/eer_{dim}_se"] = bootstrap_se(equal_error_rate, scores, labels)
        metrics[f"val/mindcf_{dim}"] = min_dcf(scores, labels)
        metrics[f"val/mindcf_{dim}_se"] = bootstrap_se(min_dcf, scores, labels)
    return {**metrics, "val/trials": len(trials)}


@torch.no_grad()
def embed(model: SpeakerModel, config: Config, paths: list[str]) -> torch.Tensor:
    """Embeddings (N, embed_dim) of audio files, resampled to the model's rate; a silent clip (RMS under
    SILENT_RMS) or one shorter than SHORT_SECONDS is embedded with a warning on stderr, since its embedding
    says little about a speaker."""
    clips = [audio.load(path, config.data.sample_rate, 1)[0] for path in paths]
    for path, clip in zip(paths, clips):
        seconds = clip.shape[-1] / config.data.sample_rate
        if seconds < SHORT_SECONDS:
            print(f"lab: warning: {path} is {seconds:.2f} s long; under {SHORT_SECONDS:g} s an embedding says "
                  "little about the speaker", file=sys.stderr)
        elif float(np.sqrt(np.mean(clip.astype(np.float64) ** 2))) < SILENT_RMS:
            print(f"lab: warning: {path} is silent; its embedding says nothing about a speaker", file=sys.stderr)
    return embed_utterances(model.eval().backbone, clips)


SHORT_SECONDS = 0.5  # shorter clips hold too few frames for the statistics pooling of a speaker embedding
SILENT_RMS = 1e-4  # about -80 dBFS
