"""The dia family for the shared engine: next-step prediction of delayed DAC codebooks, conditioned on tags/text.

Batches are {"text": (B, S), "text_mask": (B, S), "tokens": (B, N, C)} (see trainers/dia/data.py); the decoder
sees tokens[:, :-1] and predicts tokens[:, 1:]. PAD and BOS targets are left out of the loss; channels are
weighted 4:1:...:1 (dia-finetuning) or uniformly.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lab.errors import LabError
from models.delay import revert_delay
from models.dia import Dia, unconditional
from trainers.dia import codec, data
from trainers.dia.config import BOS, EOS, PAD, Config
from trainers.family.context import Context, DataBundle, with_standard_error


def build_model(config: Config) -> Dia:
    return Dia(config.model)


def shard_modules(model: Dia) -> list:
    """The blocks `train.parallel=fsdp` shards: every encoder and decoder layer (a decoder layer's cross keys
    are also computed outside its forward, for decoding), and the root's own methods that generation calls."""
    return [*model.encoder_layers, *((layer, ("cross_keys_values",)) for layer in model.decoder_layers),
            (model, ("encode", "cross_sources", "decode_step"))]


TAGS_RECORDED = 100  # distinct tags listed in the run's data info (with their count): what `generate` checks


def build_data(config: Config) -> DataBundle:
    """Crops of cached codes (`data.codes`) or of the synthetic tagged set, with conditioning collates."""
    data_config = config.data
    if data_config.codes == "synthetic":
        clips = [(codes, list(tags)) for codes, tags in data.synthetic_set(
            data_config.synthetic_clips, data_config.synthetic_seconds, data_config.synthetic_seed,
            data_config.synthetic_codec_width)]
    else:
        clips = [(entry["codes"], entry.get("tags", [])) for entry in codec.read_cache(data_config.codes)]
    channels = {codes.shape[0] for codes, _ in clips}
    if channels != {config.model.channels}:
        raise ValueError(f"the codes have {sorted(channels)} codebooks but model.channels is {config.model.channels}")
    top = max((int(codes.max()) for codes, _ in clips if codes.size), default=0)
    low = min((int(codes.min()) for codes, _ in clips if codes.size), default=0)
    if top >= EOS or low < 0:
        raise ValueError(f"the codes span {low} to {top} but DAC codes are 0 to {EOS - 1} (the ids from {EOS} on are "
                         "EOS, PAD and BOS); they come from another codec or a corrupt cache")
    held_out = max(1, round(len(clips) * data_config.val_fraction))
    train = data.ClipDataset(clips[held_out:], data_config.audio_length, data_config.sliding_window)
    val = data.ClipDataset(clips[:held_out], data_config.audio_length, sliding=False)
    tags = sorted({t for _, clip_tags in clips for t in clip_tags})
    info = {"source": data_config.codes, "train_items": len(train), "val_items": len(val),
            "frames_per_item": data_config.audio_length, "tags": tags[:TAGS_RECORDED], "tag_count": len(tags)}
    return DataBundle(train=train, val=val, info=info,
                      collate=functools.partial(data.collate, config=config, augment=True),
                      val_collate=functools.partial(data.collate, config=config, augment=False))


def channel_weights(config: Config, device: torch.device) -> torch.Tensor:
    """(C,) weights summing to 1: channel 0 four times the others ('dia'), or uniform."""
    weights = torch.ones(config.model.channels, device=device)
    if config.train.channel_weights == "dia":
        weights[0] = 4.0
    return weights / weights.sum()


def per_channel_losses(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy per channel (C,) over real targets, and their counts (C,)."""
    valid = (targets != PAD) & (targets != BOS)  # (B, T, C)
    losses = F.cross_entropy(logits.flatten(0, 2), targets.flatten(), reduction="none").view_as(targets)
    return (losses * valid).sum(dim=(0, 1)), valid.sum(dim=(0, 1))


def training_loss(model: torch.nn.Module, batch: dict, ctx: Context) -> tuple[torch.Tensor, dict]:
    tokens = batch["tokens"]
    logits = model(batch["text"], tokens[:, :-1], batch["text_mask"])  # (B, T, C, V)
    sums, counts = per_channel_losses(logits, tokens[:, 1:])
    per_channel = sums / counts.clamp(min=1)
    loss = (per_channel * channel_weights(ctx.config, logits.device)).sum()
    return loss, {"loss_c0": per_channel[0].detach()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """Weighted validation loss (with its standard error over batches), loss and accuracy per codebook, the mean
    entropy of the predictions, and the evaluation's size (clips, predicted tokens)."""
    channels = ctx.config.model.channels
    sums, counts, correct = torch.zeros(channels), torch.zeros(channels), torch.zeros(channels)
    entropy_sum, entropy_count, clips = 0.0, 0, 0
    batch_losses = []  # the weighted loss of each batch, for the standard error over batches
    weights = channel_weights(ctx.config, torch.device("cpu"))  # (C,)
    for batch in batches:
        tokens = batch["tokens"]
        logits = model(batch["text"], tokens[:, :-1], batch["text_mask"])
        targets = tokens[:, 1:]
        batch_sums, batch_counts = per_channel_losses(logits, targets)
        sums += batch_sums.cpu()
        counts += batch_counts.cpu()
        batch_losses.append(float((batch_sums.cpu() / batch_counts.cpu().clamp(min=1) * weights).sum()))
        clips += tokens.shape[0]
        valid = (targets != PAD) & (targets != BOS)
        correct += ((logits.argmax(-1) == targets) & valid).sum(dim=(0, 1)).cpu()
        log_probs = logits.log_softmax(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)  # (B, T, C)
        entropy_sum += entropy[valid].sum().item()
        entropy_count += int(valid.sum().item())
    if entropy_count == 0:
        raise ValueError("evaluate got no validation batches")
    per_channel = sums / counts.clamp(min=1)
    metrics = {"val/loss": float((per_channel * weights).sum()), "val/entropy": entropy_sum / entropy_count,
               "val/clips": clips, "val/tokens": entropy_count}
    metrics = with_standard_error(metrics, "val/loss", batch_losses)
    for channel in range(channels):
        metrics[f"val/loss_c{channel}"] = float(per_channel[channel])
        metrics[f"val/acc_c{channel}"] = float(correct[channel] / counts[channel].clamp(min=1))
    return metrics


def guided_sample(logits: torch.Tensor, temperature: float, top_p: float, top_k: int) -> torch.Tensor:
    """Tokens (C,) from guided logits (C, V) (disallowed tokens at -inf): top-k and top-p, then temperature."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = (logits / max(temperature, 1e-6)).softmax(-1)
    if 0 < top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1).squeeze(-1)


@torch.no_grad()
def generate_codes(model: Dia, config: Config, frames: int, condition: str, cfg_scale: float = 3.0,
                   temperature: float = 1.2, top_p: float = 0.95, top_k: int = 45,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(C, frames') codes sampled with CFG: BOS where a channel has not started, EOS allowed on channel 0 only,
    the other channels following with EOS then PAD in a countdown matching their delays, then the delay reverted.
    `progress(steps done, steps in all)` is called after each decoding step (frames + the longest delay + 1)."""
    pattern = data.pattern_of(config)
    channels, longest = config.model.channels, max(pattern)
    device = next(model.parameters()).device
    ids, mask = data.text_bytes(condition, config.data.text_length)
    empty, empty_mask = unconditional(ids, mask)
    text = torch.stack([ids, empty]).to(device)  # (2, S): conditional, unconditional
    text_mask = torch.stack([mask, empty_mask]).to(device)
    memory = model.encode(text, text_mask)
    cross = model.cross_sources(memory)
    steps = frames + longest + 2
    cache = model.new_cache(2, steps, device, memory.dtype)
    delays_t = torch.tensor(pattern, device=device)
    token = torch.full((2, channels), BOS, dtype=torch.long, device=device)
    rows, eos_step = [], None
    for step in range(steps - 1):
        both = model.decode_step(token, step, cross, text_mask, cache)  # (2, C, V): conditional, unconditional
        logits = both[0] + cfg_scale * (both[0] - both[1])  # (C, V)
        logits[:, PAD] = logits[:, BOS] = -math.inf
        logits[1:, EOS] = -math.inf  # EOS only on channel 0; the others follow in the countdown
        if step >= frames:
            logits[0, :EOS] = -math.inf  # the requested length is reached: end now
        row = guided_sample(logits, temperature, top_p, top_k)  # (C,)
        position = step  # the frame index of this row in the delayed stream
        row = torch.where(position < delays_t, torch.full_like(row, BOS), row)
        if eos_step is not None:
            row = torch.where(position == eos_step + delays_t, torch.full_like(row, EOS), row)
            row = torch.where(position > eos_step + delays_t, torch.full_like(row, PAD), row)
        elif row[0] == EOS:
            eos_step = position
        rows.append(row)
        token = row.unsqueeze(0).expand(2, -1)
        if progress is not None:
            progress(step + 1, steps - 1)
        if eos_step is not None and position >= eos_step + longest:
            break
    delayed = torch.stack(rows).unsqueeze(0)  # (1, S, C)
    codes = revert_delay(delayed, pattern)[0]  # (S - max(d), C)
    end = eos_step if eos_step is not None else codes.shape[0]
    return codes[:end].clamp(max=1023).T.cpu().numpy()


def audio_codec(config: Config):
    """The codec that turns this run's codes back into audio."""
    if config.data.codes == "synthetic":
        return codec.random_codec(config.data.synthetic_codec_width, config.data.synthetic_seed)
    if not config.data.codec_weights:
        raise ValueError("decoding needs the DAC weights: set data.codec_weights=/path/to/dac_44khz.pth")
    return codec.load_codec(config.data.codec_weights)


def conditioning(config: Config, tags: str | None, text: str | None, data_info: dict | None = None) -> str:
    """The conditioning string for a model trained on `data.condition` (tags or text). LabError for both, or
    for the kind it was not trained on; a warning on stderr naming the tags its training data never had
    (`data_info`: the recorded `build_data` info, whose `tags` list is complete when `tag_count` says so)."""
    if tags is not None and text is not None:
        raise LabError("pass --tags or --text, not both")
    trained, given = config.data.condition, "text" if text is not None else "tags" if tags is not None else None
    if given is not None and given != trained:
        raise LabError(f"the model was trained on {trained} (data.condition={trained}), not {given}: "
                       f"pass --{trained} instead of --{given}")
    known = list((data_info or {}).get("tags") or [])
    if tags and known and len(known) >= (data_info or {}).get("tag_count", math.inf):
        unknown = [tag.strip() for tag in tags.split(",") if tag.strip() and tag.strip() not in known]
        if unknown:
            print(f"lab: warning: tags the model never saw in training: {', '.join(unknown)} (it knows: "
                  f"{', '.join(known)})", file=sys.stderr, flush=True)
    return text if text is not None else (tags or "")


@torch.no_grad()
def generate(model: Dia, config: Config, seconds: float = 10.0, tags: str | None = None, text: str | None = None,
             cfg_scale: float = 3.0, temperature: float = 1.2, seed: int = 0,
             progress: Callable[[int, int], None] | None = None, data_info: dict | None = None,
             ) -> tuple[np.ndarray, int]:
    """`seconds` of audio conditioned on tags or text (`conditioning`, checked against `data_info`, what the
    model was trained on): ((channels, samples), 44100), shorter when the model ends it (EOS).
    `progress(steps done, steps in all)` follows the decoding (`generate_codes`)."""
    condition = conditioning(config, tags, text, data_info)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        frames = max(1, round(seconds * codec.SAMPLE_RATE / 512))
        codes = generate_codes(model.eval(), config, frames, condition, cfg_scale, temperature, progress=progress)
    finally:
        torch.random.set_rng_state(state)
    if codes.shape[1] == 0:
        return np.zeros((1 + config.model.stereo, 0), dtype=np.float32), codec.SAMPLE_RATE
    return codec.decode(audio_codec(config), codes), codec.SAMPLE_RATE


def samples_stage(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """An evaluation stage: a CFG sample for the first validation clip's tags and an unconditional one."""
    config = ctx.config
    first = next(iter(batches))
    condition = bytes(first["text"][0][first["text_mask"][0]].tolist()).decode("utf-8", errors="replace")
    metrics = {}
    for name, text in (("conditional", condition), ("unconditional", "")):
        audio, rate = generate(model, config, config.data.sample_seconds, seed=ctx.step,
                               **{config.data.condition: text})
        ctx.log_media(f"samples/{name}", audio, kind="audio", sample_rate=rate)
        metrics[f"val/sample_rms_{name}"] = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    return metrics
