"""The neural_decoder family for the shared engine: GRU + CTC phoneme decoding of intracortical features.

Batches are the dicts of `collate_sentences`: features (B, T, F), feature_lens (B,), targets (B, L),
target_lens (B,), day (B,).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from models.ctc import beam_search_decode, count_all_blank, greedy_decode, phoneme_error_rate
from models.neural_decoder import NeuralDecoder, output_lengths
from trainers.family.context import Context, DataBundle, with_standard_error
from trainers.neural_decoder.config import Config
from trainers.neural_decoder.data import (
    SentenceDataset,
    augment,
    collate_sentences,
    load_competition_data,
    make_synthetic,
)

BLANK = 0
XLA_FRAME_MULTIPLE = 64  # on XLA, batches are padded to a few fixed shapes so each compiles once
TARGET_MULTIPLE = 16


def build_model(config: Config) -> NeuralDecoder:
    """The GRU decoder described by `config.model`."""
    return NeuralDecoder(config.model)


def build_data(config: Config) -> DataBundle:
    """'train' days train and 'test' days validate, read from `config.data.source` or generated ('synthetic')."""
    data_config = config.data
    if data_config.source == "synthetic":
        data = make_synthetic(
            data_config.synthetic_days, data_config.synthetic_sentences_per_day, data_config.synthetic_seed,
            n_features=config.model.n_input_features,
        )
    else:
        data = load_competition_data(data_config.source)
    train, val = SentenceDataset(data["train"]), SentenceDataset(data["test"])
    days = max(train.n_days, val.n_days)
    if days > config.model.n_days:
        raise ValueError(f"the data has {days} days but model.n_days is {config.model.n_days}; raise model.n_days")
    feature_dim = train.items[0][0].shape[1] if len(train) else config.model.n_input_features
    if feature_dim != config.model.n_input_features:
        raise ValueError(
            f"the data has {feature_dim} features per bin but model.n_input_features is "
            f"{config.model.n_input_features}"
        )
    top = max((int(targets.max()) for split in (train, val) for _, targets, _ in split.items if len(targets)),
              default=0)
    if top > config.model.n_classes:
        raise ValueError(
            f"the data has phoneme ids up to {top} but model.n_classes is {config.model.n_classes} (ids 1 to "
            f"n_classes, 0 is the CTC blank); set model.n_classes={top} or start from weights with as many classes"
        )
    info = {
        "source": data_config.source,
        "train_items": len(train),
        "val_items": len(val),
        "days": days,
        "feature_dim": feature_dim,
        "mean_frames": _mean(len(features) for features, _, _ in train.items),
        "mean_phonemes": _mean(len(targets) for _, targets, _ in train.items),
    }
    frame_multiple = data_config.pad_frames_to or (XLA_FRAME_MULTIPLE if config.train.device == "xla" else 0)
    collate = functools.partial(
        collate_sentences, frame_multiple=frame_multiple, target_multiple=TARGET_MULTIPLE if frame_multiple else 0
    )
    return DataBundle(train=train, val=val, collate=collate, info=info)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _ctc_loss(log_probs: torch.Tensor, batch: dict, output_lens: torch.Tensor, reduction: str) -> torch.Tensor:
    """CTC loss (blank 0, infinite losses zeroed) of log_probs (B, T', C) against the batch's targets."""
    return F.ctc_loss(
        log_probs.transpose(0, 1),  # (T', B, C)
        batch["targets"],
        output_lens,
        batch["target_lens"],
        blank=BLANK,
        reduction=reduction,
        zero_infinity=True,
    )


def _log_probs_and_lengths(model: torch.nn.Module, batch: dict, features: torch.Tensor, config: Config):
    """Float32 log-probabilities (B, T', C) of the model on `features`, and the valid output frames (B,)."""
    logits = model(features, batch["day"], batch["feature_lens"].to(features.device))  # (B, T', C)
    log_probs = logits.float().log_softmax(dim=-1)  # (B, T', C)
    output_lens = output_lengths(batch["feature_lens"], config.model.kernel_len, config.model.stride_len)  # (B,)
    return log_probs, output_lens


def _infeasible_fraction(output_lens: torch.Tensor, targets: torch.Tensor, target_lens: torch.Tensor) -> torch.Tensor:
    """Fraction of utterances with fewer output frames than CTC needs (labels plus a blank between repeats)."""
    positions = torch.arange(1, targets.size(1), device=targets.device)  # (L - 1,)
    repeats = (targets[:, 1:] == targets[:, :-1]) & (positions[None, :] < target_lens[:, None])  # (B, L - 1)
    needed = target_lens + repeats.sum(dim=1)  # (B,)
    return (output_lens < needed).float().mean()  # left on the device: the engine syncs once per step


def training_loss(model: torch.nn.Module, batch: dict, ctx: Context) -> tuple[torch.Tensor, dict]:
    """Mean CTC loss of a batch (each utterance's loss divided by its target length), augmented in train mode."""
    config = ctx.config
    features = batch["features"]
    if model.training:
        features = augment(features, batch["feature_lens"], config.data)
    log_probs, output_lens = _log_probs_and_lengths(model, batch, features, config)
    loss = _ctc_loss(log_probs, batch, output_lens, reduction="mean")
    metrics = {"ctc_infeasible_frac": _infeasible_fraction(output_lens, batch["targets"], batch["target_lens"])}
    return loss, metrics


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """CTC loss (mean per utterance, normalised by target length) and PER, each with its standard error over
    batches, the fraction of all-blank outputs and the number of utterances.

    Decodes greedily, or by prefix beam search when config.data.beam_width > 0.
    """
    config = ctx.config
    loss_sum, utterances, batch_losses = 0.0, 0, []  # the loss of each batch, for its standard error
    batch_pers, batch_labels, hypotheses = [], [], []  # PER and reference labels of each batch; all decodes
    for batch in batches:
        log_probs, output_lens = _log_probs_and_lengths(model, batch, batch["features"], config)
        losses = _ctc_loss(log_probs, batch, output_lens, reduction="none")  # (B,)
        normalised = (losses / batch["target_lens"].clamp(min=1)).sum().item()
        loss_sum += normalised
        batch_losses.append(normalised / max(losses.numel(), 1))
        utterances += losses.numel()
        if config.data.beam_width > 0:
            decoded = beam_search_decode(log_probs, output_lens, config.data.beam_width, blank=BLANK)
        else:
            decoded = greedy_decode(log_probs, output_lens, blank=BLANK)
        hypotheses += decoded
        targets, target_lens = batch["targets"].cpu(), batch["target_lens"].cpu()
        if int(target_lens.sum()) > 0:
            references = [row[:length].tolist() for row, length in zip(targets, target_lens)]
            batch_pers.append(phoneme_error_rate(references, decoded))
            batch_labels.append(int(target_lens.sum()))
    if utterances == 0:
        raise ValueError("evaluate got no validation batches")
    if not batch_labels:
        raise ValueError("the references hold no labels, so the error rate is undefined")
    metrics = {
        "val/loss": loss_sum / utterances,
        # batch PERs weighted by their labels: the summed edit distance over the summed reference length
        "val/per": sum(per * labels for per, labels in zip(batch_pers, batch_labels)) / sum(batch_labels),
        "val/blank_frac": count_all_blank(hypotheses) / utterances,
        "val/utterances": utterances,
    }
    return with_standard_error(with_standard_error(metrics, "val/loss", batch_losses), "val/per", batch_pers)
