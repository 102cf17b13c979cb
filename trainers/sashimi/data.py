"""sashimi data: wav folders and the MUSDB18 layout, quantised to codes, with synthetic audio of the same form.

Every clip is read once into memory as (channels, frames) float32 at the configured rate. Training items are
random crops of `train_length` samples per channel (drawn from torch's global generator, so an exact resume
replays them); validation items are the consecutive `val_length` chunks of the held-out clips. Stereo is
interleaved per sample (left, right, left, ...), so a stereo item is twice as long.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from models.dml import quantize
from trainers.formats import audio
from trainers.formats.audio import wav_bytes
from trainers.sashimi.config import DataConfig

MUSDB_STEMS = ("mixture", "drums", "bass", "other", "vocals")


def synthetic_clips(count: int, seconds: float, rate: int, channels: int, seed: int) -> list[np.ndarray]:
    """Clips of harmonic tones with vibrato and decaying noise bursts: (channels, frames) float32 each."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    clips = []
    for _ in range(count):
        pitch = rng.uniform(110, 880)
        vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        tone = sum(np.sin(2 * np.pi * pitch * harmonic * vibrato * t) / harmonic for harmonic in (1, 2, 3))
        bursts = np.zeros(frames)
        for start in rng.integers(0, frames, size=rng.integers(1, 4)):
            length = min(frames - start, int(0.05 * rate))
            bursts[start:start + length] += rng.normal(0, 1, length) * np.exp(-np.arange(length) / (0.01 * rate))
        mono = 0.3 * tone / 1.83 + 0.2 * bursts
        pan = rng.uniform(0.3, 0.7)
        clip = np.stack([mono * pan * 2, mono * (1 - pan) * 2])[:channels] if channels == 2 else mono[None]
        clips.append(np.clip(clip, -1, 1).astype(np.float32))
    return clips


def write_synthetic(folder: str | Path, count: int, seconds: float, rate: int = 16000, channels: int = 1,
                    seed: int = 0) -> Path:
    """Write synthetic clips as 16-bit wav files `clip_000.wav`, ... in `folder` (for the real loader)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, clip in enumerate(synthetic_clips(count, seconds, rate, channels, seed)):
        (folder / f"clip_{index:03d}.wav").write_bytes(wav_bytes(clip, rate))
    return folder


def wav_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in audio.WAV_SUFFIXES)


def split_files(config: DataConfig) -> tuple[list[Path], list[Path]]:
    """(training files, validation files) of a folder or a MUSDB18 root."""
    root = Path(config.source)
    if not root.is_dir():
        raise FileNotFoundError(f"data.source {root} is not a folder (give a folder of wav files or 'synthetic')")
    if config.layout == "musdb18":
        if config.musdb_stem not in MUSDB_STEMS:
            raise ValueError(f"data.musdb_stem={config.musdb_stem!r} is not one of {', '.join(MUSDB_STEMS)}")
        splits = [sorted((root / split).glob(f"*/{config.musdb_stem}.wav")) for split in ("train", "test")]
        if not all(splits):
            raise FileNotFoundError(f"{root} is not a MUSDB18 (wav) root: expected train/<track>/"
                                    f"{config.musdb_stem}.wav and test/<track>/{config.musdb_stem}.wav")
        return splits[0], splits[1]
    if config.layout != "folder":
        raise ValueError(f"data.layout={config.layout!r} is not one of: folder, musdb18")
    if (root / "train").is_dir() and (root / "valid").is_dir():
        return wav_files(root / "train"), wav_files(root / "valid")
    files = wav_files(root)
    held_out = max(1, round(len(files) * config.val_fraction))
    if len(files) < 2:
        raise FileNotFoundError(f"{root} holds {len(files)} wav file(s); training and validation need two or more")
    step = len(files) / held_out
    val_indices = {int(i * step) for i in range(held_out)}
    train = [path for index, path in enumerate(files) if index not in val_indices]
    return train, [path for index, path in enumerate(files) if index in val_indices]


def load_clips(files: list[Path], config: DataConfig) -> list[np.ndarray]:
    """Every file as (channels, frames) float32 at the configured rate; AudioError names a bad file."""
    channels = 2 if config.stereo else 1
    return [audio.load(path, config.sample_rate, channels) for path in files]


def interleave(clip: np.ndarray) -> np.ndarray:
    """(C, N) -> (N * C,): samples of all channels, one time step after another."""
    return clip.T.reshape(-1)


def deinterleave(samples: np.ndarray, channels: int) -> np.ndarray:
    """(N * C,) -> (C, N)."""
    return samples.reshape(-1, channels).T


class CropDataset(Dataset):
    """Random crops of `length` samples per channel from whole clips, as quantised interleaved codes."""

    def __init__(self, clips: list[np.ndarray], length: int, config: DataConfig, bits: int):
        self.clips = [clip for clip in clips if clip.shape[1] >= length]
        if not self.clips:
            raise ValueError(f"no clip has the {length} samples of data.train_length")
        self.length, self.config, self.bits = length, config, bits

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> torch.Tensor:
        clip = self.clips[index]
        start = int(torch.randint(0, clip.shape[1] - self.length + 1, ()).item())
        return codes_of(clip[:, start:start + self.length], self.config, self.bits)


class ChunkDataset(Dataset):
    """Every consecutive chunk of `length` samples per channel, in order (validation)."""

    def __init__(self, clips: list[np.ndarray], length: int, config: DataConfig, bits: int):
        self.chunks = [clip[:, start:start + length] for clip in clips
                       for start in range(0, clip.shape[1] - length + 1, length)]
        if not self.chunks:
            raise ValueError(f"no validation clip has the {length} samples of data.val_length")
        self.config, self.bits = config, bits

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> torch.Tensor:
        return codes_of(self.chunks[index], self.config, self.bits)


def codes_of(clip: np.ndarray, config: DataConfig, bits: int) -> torch.Tensor:
    """(C, N) audio -> (N * C,) long codes."""
    return quantize(torch.from_numpy(np.ascontiguousarray(interleave(clip))), bits, config.quantization)


def collate(items: list[torch.Tensor]) -> dict:
    """Equal-length code sequences -> {"codes": (B, L)}."""
    return {"codes": torch.stack(items)}
