"""dia data: code clips with tags, crops of `audio_length` frames, conditioning bytes, delayed decoder sequences.

Items are (codes (T, C) long, tags list); the training collate shuffles, drops and limits tags, gives a whole
batch the unconditional input with probability `unconditional_frac` (classifier-free guidance; as nari-labs/dia
builds it, zero bytes under the condition's mask: `models.dia.unconditional`), and builds
the fixed-length decoder sequence [BOS, delayed codes with EOS, PAD...] so every batch has the same shape (one
XLA compilation). Randomness comes from torch's global generator, so an exact resume replays it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lab.records.files import atomic_write, cache_home
from models.delay import delays, training_sequence
from models.dia import unconditional as unconditional_input
from trainers.dia.config import BOS, EOS, PAD, Config

SYNTHETIC_TAGS = ("sine", "square", "drums", "bass")
TEMPI = ("90 bpm", "120 bpm", "150 bpm")


def pattern_of(config: Config) -> list[int]:
    """The model's per-channel delays."""
    pattern = config.model.delay_pattern
    if pattern not in ("dia", "musicgen"):
        pattern = [int(part) for part in pattern.split(",")]
    return delays(pattern, config.model.channels, config.model.stereo)


def synthetic_audio(tags: list[str], seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A clip whose sound follows its tags: tempo-locked drums, a bass pulse, sine or square melodies."""
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    bpm = next((int(tag.split()[0]) for tag in tags if tag.endswith("bpm")), 120)
    beat = 60.0 / bpm
    clip = np.zeros(frames)
    if "drums" in tags:
        for start in np.arange(0, seconds, beat / 2):
            index = int(start * rate)
            length = min(frames - index, int(0.04 * rate))
            clip[index:index + length] += rng.normal(0, 0.5, length) * np.exp(-np.arange(length) / (0.008 * rate))
    if "bass" in tags:
        clip += 0.4 * np.sin(2 * np.pi * 55 * t) * (np.mod(t, beat) < beat / 2)
    for tag, wave in (("sine", np.sin), ("square", lambda x: np.sign(np.sin(x)))):
        if tag in tags:
            notes = rng.choice([220, 262, 330, 392, 440], size=int(seconds / beat) + 1)
            clip += 0.25 * wave(2 * np.pi * notes[(t / beat).astype(int)] * t)
    return np.clip(clip, -1, 1).astype(np.float32)[None]


Clips = tuple[tuple[np.ndarray, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=4)
def synthetic_set(clips: int, seconds: float, seed: int, width: int) -> Clips:
    """Tagged synthetic clips encoded by a randomly initialised DAC: ((codes (9, T) int16, tags), ...).

    Encoding is most of a tiny run's start (about 20 s for the tiny preset's 32 clips on one CPU core), so the set
    is kept on disk once made (`synthetic_cache`) and read back by every later run with the same arguments.
    """
    cache = synthetic_cache(clips, seconds, seed, width)
    with contextlib.suppress(OSError, ValueError, KeyError):
        with np.load(cache) as saved:
            tags = json.loads(str(saved["tags"]))
            return tuple((saved[f"codes_{i}"], tuple(clip_tags)) for i, clip_tags in enumerate(tags))
    encoded = encode_synthetic_set(clips, seconds, seed, width)
    with contextlib.suppress(OSError):
        arrays = {f"codes_{i}": codes for i, (codes, _) in enumerate(encoded)}
        atomic_write(cache, lambda stream: np.savez(stream, tags=json.dumps([t for _, t in encoded]), **arrays))
    return encoded


def synthetic_cache(clips: int, seconds: float, seed: int, width: int) -> Path:
    """The file that keeps one synthetic set: `lab.records.files.cache_home()`/lab/dia-synthetic, named by
    the set's arguments and a digest of what makes its codes (this module, the codec module, torch's and DAC's
    versions), so a change to any of them makes a new set rather than reading a stale one."""
    from trainers.dia import codec

    digest = hashlib.sha256()
    for part in (Path(__file__).read_bytes(), Path(codec.__file__).read_bytes(), torch.__version__.encode(),
                 importlib.metadata.version("descript-audio-codec").encode()):
        digest.update(part)
    root = cache_home() / "lab" / "dia-synthetic"
    return root / f"{clips}x{seconds:g}s-seed{seed}-width{width}-{digest.hexdigest()[:16]}.npz"


def encode_synthetic_set(clips: int, seconds: float, seed: int, width: int) -> Clips:
    """`clips` synthetic clips of `seconds` each, tagged at random from `seed`, encoded by `random_codec(width)`."""
    from trainers.dia import codec

    rng = np.random.default_rng(seed)
    model = codec.random_codec(width, seed)
    encoded = []
    for _ in range(clips):
        tags = [str(tag) for tag in rng.choice(SYNTHETIC_TAGS, size=rng.integers(1, 3), replace=False)]
        tags.append(str(rng.choice(TEMPI)))
        encoded.append((codec.encode(model, synthetic_audio(tags, seconds, codec.SAMPLE_RATE, rng)), tuple(tags)))
    return tuple(encoded)


class ClipDataset(Dataset):
    """Clips of codes; a training item is a crop of `length` frames (random with `sliding`), validation the start."""

    def __init__(self, clips: list[tuple[np.ndarray, list[str]]], length: int, sliding: bool):
        self.clips = [(codes, tags) for codes, tags in clips if codes.shape[1] >= length]
        if not self.clips:
            raise ValueError(f"no clip has the {length} frames of data.audio_length")
        self.length, self.sliding = length, sliding

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[str]]:
        codes, tags = self.clips[index]
        start = int(torch.randint(0, codes.shape[1] - self.length + 1, ()).item()) if self.sliding else 0
        return torch.from_numpy(codes[:, start:start + self.length].astype(np.int64)).T, list(tags)  # (T, C)


def text_bytes(text: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """UTF-8 bytes padded (or cut) to `length`: (ids (length,), mask (length,) True for real bytes)."""
    data = list(text.encode("utf-8"))[:length]
    ids = torch.zeros(length, dtype=torch.long)
    ids[:len(data)] = torch.tensor(data, dtype=torch.long)
    mask = torch.zeros(length, dtype=torch.bool)
    mask[:len(data)] = True
    return ids, mask


def tag_text(tags: list[str], config: Config, augment: bool) -> str:
    """The conditioning string of a clip's tags: shuffled, dropped and limited when augmenting."""
    tags = list(tags)
    data = config.data
    if augment:
        if data.tag_shuffle:
            tags = [tags[i] for i in torch.randperm(len(tags)).tolist()]
        tags = [tag for tag in tags if torch.rand(()).item() >= data.tag_dropout]
    return ", ".join(tags[:data.tag_limit])


def collate(items: list, config: Config, augment: bool) -> dict:
    """A batch: text (B, S), text_mask (B, S), tokens (B, 1 + T + 1 + max(d), C)."""
    pattern = pattern_of(config)
    unconditional = augment and torch.rand(()).item() < config.train.unconditional_frac
    texts, masks, sequences = [], [], []
    for codes, tags in items:
        ids, mask = text_bytes(tag_text(tags, config, augment), config.data.text_length)
        if unconditional:
            ids, mask = unconditional_input(ids, mask)
        texts.append(ids)
        masks.append(mask)
        sequences.append(training_sequence(codes, pattern, BOS, EOS, PAD))
    return {"text": torch.stack(texts), "text_mask": torch.stack(masks), "tokens": torch.stack(sequences)}
