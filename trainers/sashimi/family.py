"""The sashimi family for the shared engine: next-sample prediction of quantised audio.

Batches are {"codes": (B, L)}; the model sees the codes shifted right by one (a mid-scale start code first)
and predicts each code. Loss and metrics are in nats and bits per sample, comparable across both heads.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import numpy as np
import torch

from models.dml import dequantize, dml_sample
from models.sashimi import SaShiMi
from trainers.family.context import Context, DataBundle, with_standard_error
from trainers.sashimi import data
from trainers.sashimi.config import Config


def build_model(config: Config) -> SaShiMi:
    """SaShiMi with the configured head."""
    return SaShiMi(config.model)


def build_data(config: Config) -> DataBundle:
    """Training crops and validation chunks from `data.source` (a folder, MUSDB18, or 'synthetic')."""
    data_config, bits = config.data, config.model.bits
    if data_config.source == "synthetic":
        channels = 2 if data_config.stereo else 1
        clips = data.synthetic_clips(data_config.synthetic_clips, data_config.synthetic_seconds,
                                     data_config.sample_rate, channels, data_config.synthetic_seed)
        held_out = max(1, round(len(clips) * data_config.val_fraction))
        train_clips, val_clips = clips[held_out:], clips[:held_out]
    else:
        train_files, val_files = data.split_files(data_config)
        train_clips, val_clips = data.load_clips(train_files, data_config), data.load_clips(val_files, data_config)
    train = data.CropDataset(train_clips, data_config.train_length, data_config, bits)
    val = data.ChunkDataset(val_clips, data_config.val_length, data_config, bits)
    channels = 2 if data_config.stereo else 1
    info = {
        "source": data_config.source, "train_items": len(train), "val_items": len(val),
        "train_positions": data_config.train_length * channels, "val_positions": data_config.val_length * channels,
        "seconds": round(sum(clip.shape[1] for clip in train_clips) / data_config.sample_rate, 1),
    }
    return DataBundle(train=train, val=val, collate=data.collate, info=info,
                      val_batch_size=data_config.val_batch_size or None)


def shifted(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """The model's input: codes (B, L) shifted right by one, starting from the mid-scale code."""
    start = torch.full_like(codes[:, :1], 2 ** (bits - 1))
    return torch.cat([start, codes[:, :-1]], dim=1)


def training_loss(model: torch.nn.Module, batch: dict, ctx: Context) -> tuple[torch.Tensor, dict]:
    """Mean negative log-likelihood of the next sample, in nats; also in bits per sample."""
    codes = batch["codes"]
    loss = model(shifted(codes, ctx.config.model.bits), codes)
    return loss, {"bits_per_sample": loss.detach() / math.log(2)}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """Validation NLL over every chunk: nats (with the standard error over batches) and bits per sample, and the
    evaluation's size (chunks as clips, samples)."""
    total, positions, clips, batch_losses = 0.0, 0, 0, []
    for batch in batches:
        codes = batch["codes"]  # (B, L)
        batch_losses.append(model(shifted(codes, ctx.config.model.bits), codes).item())
        total += batch_losses[-1] * codes.numel()
        positions += codes.numel()
        clips += codes.shape[0]
    if positions == 0:
        raise ValueError("evaluate got no validation batches")
    nats = total / positions
    metrics = {"val/loss": nats, "val/bits_per_sample": nats / math.log(2), "val/clips": clips,
               "val/samples": positions}
    return with_standard_error(metrics, "val/loss", batch_losses)


@torch.no_grad()
def generate(model: SaShiMi, config: Config, seconds: float, temperature: float = 1.0,
             seed: int = 0, progress: Callable[[int, int], None] | None = None,
             num: int | None = None) -> tuple[np.ndarray, int]:
    """`seconds` of audio sampled one code at a time through the recurrence (`SaShiMi.step`): ((channels,
    frames), rate); with `num`, that many samples in one batch: ((num, channels, frames), rate).
    `progress(codes done, codes in all)` is called after each code."""
    model.eval()
    channels = 2 if config.data.stereo else 1
    positions = int(seconds * config.data.sample_rate) * channels
    batch = 1 if num is None else num
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    try:
        with one_cpu_thread(device):
            codes = sample_codes(model, config, batch, positions, temperature, progress)  # (batch, positions)
    finally:
        torch.random.set_rng_state(generator_state)
    samples = dequantize(codes, config.model.bits, config.data.quantization).cpu().numpy()
    made = np.stack([data.deinterleave(row, channels) for row in samples])  # (batch, channels, frames)
    return (made[0] if num is None else made), config.data.sample_rate


def sample_codes(model: SaShiMi, config: Config, batch: int, positions: int, temperature: float,
                 progress: Callable[[int, int], None] | None) -> torch.Tensor:
    """(batch, positions) codes drawn one position at a time, each from the model's output given the codes
    before it (the first input: the middle code, silence)."""
    device = next(model.parameters()).device
    state = model.initial_state(batch, device)
    code = torch.full((batch,), 2 ** (config.model.bits - 1), dtype=torch.long, device=device)
    codes = []
    for position in range(positions):
        outputs, state = model.step(code, state)  # (batch, outputs)
        if config.model.head == "dml":
            code = dml_sample(outputs, config.model.bits, temperature)
        else:
            code = torch.multinomial(torch.softmax(outputs.float() / temperature, dim=-1), 1).squeeze(-1)
        codes.append(code)  # (batch,)
        if progress is not None:
            progress(position + 1, positions)
    return torch.stack(codes, dim=1)


@contextlib.contextmanager
def one_cpu_thread(device: torch.device):
    """On the CPU, one intra-op thread for the duration (restored after). A generation step's tensors hold a few
    hundred values, too few to share across threads, and where other jobs share the cores the threads' waits at
    each op dominate: 0.25 s of tiny's audio (4,000 samples) took 62 s with torch's 2 threads against 4.9 s with
    one, on a 2-core machine other jobs loaded (the issue's 66 samples/s)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def samples_stage(model: torch.nn.Module, batches, ctx: Context) -> dict[str, float]:
    """An evaluation stage: a short generated sample, logged as audio; reports its RMS level."""
    config = ctx.config
    audio, rate = generate(model, config, config.data.sample_seconds, seed=ctx.step)
    ctx.log_media("samples/generated", audio, kind="audio", sample_rate=rate)
    return {"val/sample_rms": float(np.sqrt(np.mean(audio**2)))}


def profile(model: SaShiMi, batch: dict, ctx: Context) -> dict[str, float]:
    """Peak tensor memory (MiB) of one training step, by component: the backbone's forward, then the head and
    loss forward and backward on the backbone's output, then the backbone's backward."""
    from trainers.sizing.tensor_memory import TensorMemory

    codes = batch["codes"]
    inputs = shifted(codes, ctx.config.model.bits)
    with TensorMemory() as memory:
        features = model.features(inputs)
        backbone = memory.peak_mb
        detached = features.detach().requires_grad_()
        memory.reset_peak()
        start = memory.live_mb
        loss = model.loss(detached, codes)
        loss.backward()
        head_and_loss = memory.peak_mb - start
        memory.reset_peak()
        features.backward(detached.grad)
        backward = memory.peak_mb
    return {"backbone forward": backbone, "head + loss (forward and backward)": head_and_loss,
            "backbone backward": backward}
