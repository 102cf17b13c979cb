"""redimnet data: speakers from the VoxCeleb layout (<speaker>/<video>/<utt>.wav) or synthetic voices.

Training items are random crops with the speaker's label; the last utterances of every training speaker are
held out for the validation loss; verification runs on other speakers (data.val) over a trial list. Synthetic
speakers differ in pitch, formants and spectral tilt, so that an embedding can tell them apart.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainers.formats import audio
from trainers.redimnet.config import DataConfig


def synthetic_voice(rng: np.random.Generator) -> dict:
    """A speaker: fundamental, three formants and a spectral tilt."""
    return {"f0": rng.uniform(85, 260), "formants": [rng.uniform(300, 900), rng.uniform(900, 2400),
                                                      rng.uniform(2200, 3500)], "tilt": rng.uniform(0.6, 1.4)}


def synthetic_utterance(voice: dict, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonics of a wandering pitch shaped by the speaker's formant envelope, in syllables with pauses."""
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    contour = voice["f0"] * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(contour) / rate
    syllable = rng.uniform(0.8, 1.2, size=3)  # each syllable moves the formants a little
    which = np.minimum((t / seconds * 3).astype(int), 2)
    signal = np.zeros(frames)
    for harmonic in range(1, 30):
        frequency = voice["f0"] * harmonic
        if frequency > rate / 2 - 200:
            break
        gain = sum(np.exp(-((frequency - f * syllable) / (0.12 * f)) ** 2) for f in voice["formants"])  # (3,)
        signal += gain[which] / harmonic ** voice["tilt"] * np.sin(harmonic * phase)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 / seconds * t - np.pi / 2) ** 2
    signal = signal * envelope + 0.01 * rng.normal(size=frames)
    return (0.5 * signal / (np.abs(signal).max() + 1e-6)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def synthetic_speakers(count: int, utterances: int, seconds: float, rate: int, seed: int) -> tuple:
    """((speaker name, (utterance arrays...)), ...) of `count` synthetic voices."""
    rng = np.random.default_rng(seed)
    speakers = []
    for index in range(count):
        voice = synthetic_voice(rng)
        speakers.append((f"syn{seed}_{index:04d}", tuple(synthetic_utterance(voice, seconds, rate, rng)
                                                          for _ in range(utterances))))
    return tuple(speakers)


def folder_speakers(root: str | Path, rate: int) -> list[tuple[str, list[np.ndarray], list[str]]]:
    """[(speaker, utterances (samples,), relative paths)] of a VoxCeleb-layout folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of <speaker>/<video>/<utterance> audio")
    speakers = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in (".wav", ".m4a", ".flac"))
        if files:
            speakers.append((folder.name, [audio.load(path, rate, 1)[0] for path in files],
                             [path.relative_to(root).as_posix() for path in files]))
    if not speakers:
        raise FileNotFoundError(f"{root} holds no speaker folders with audio")
    return speakers


class CropDataset(Dataset):
    """(waveform crop (samples,), speaker label) items; crops are random when `random_crop`, else the start."""

    def __init__(self, items: list[tuple[np.ndarray, int]], samples: int, random_crop: bool):
        self.items, self.samples, self.random_crop = items, samples, random_crop
        self.labels = [label for _, label in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        waveform, label = self.items[index]
        if len(waveform) < self.samples:
            waveform = np.tile(waveform, self.samples // len(waveform) + 1)
        start = int(torch.randint(0, len(waveform) - self.samples + 1, ()).item()) if self.random_crop else 0
        return torch.from_numpy(waveform[start:start + self.samples].copy()), label


def collate(items: list) -> dict:
    waveforms, labels = zip(*items)
    return {"waveforms": torch.stack(waveforms), "labels": torch.tensor(labels)}


def speaker_batches(speakers_per_batch: int):
    """A batch sampler: each batch holds `speakers_per_batch` speakers with batch_size / that many utterances
    each, shuffled by (seed, epoch) only (a resumed run replays it)."""

    def sample(dataset, batch_size: int, seed: int, epoch: int, rank: int, processes: int) -> list[list[int]]:
        per_speaker = max(1, batch_size // speakers_per_batch)
        rng = np.random.default_rng([seed, epoch, 7])
        by_speaker: dict[int, list[int]] = {}
        for index, label in enumerate(dataset.labels):
            by_speaker.setdefault(label, []).append(index)
        pools = {label: list(rng.permutation(indices)) for label, indices in by_speaker.items()}
        batches = []
        while True:
            ready = [label for label, pool in pools.items() if len(pool) >= per_speaker]
            if len(ready) < speakers_per_batch:
                break
            chosen = rng.choice(ready, size=speakers_per_batch, replace=False)
            batches.append([int(pools[label].pop()) for label in chosen for _ in range(per_speaker)])
        return batches[rank::processes][: len(batches) // processes]

    return sample


def verification_set(config: DataConfig) -> tuple[list[np.ndarray], list[tuple[int, int, int]], list[str]]:
    """(utterances, trials (label, index_a, index_b), speaker names) for EER: all pairs of synthetic speakers'
    utterances, or the trial list of data.val."""
    if config.val == "synthetic":
        speakers = synthetic_speakers(config.synthetic_val_speakers, config.synthetic_utterances,
                                      config.synthetic_seconds, config.sample_rate, config.synthetic_seed + 1)
        utterances, owner = [], []
        for index, (_, clips) in enumerate(speakers):
            utterances += list(clips)
            owner += [index] * len(clips)
        trials = [(int(owner[a] == owner[b]), a, b) for a in range(len(owner)) for b in range(a + 1, len(owner))]
        return utterances, trials, [name for name, _ in speakers]
    speakers = folder_speakers(config.val, config.sample_rate)
    utterances = [clip for _, clips, _ in speakers for clip in clips]
    index = {path: position for position, path in enumerate(p for _, _, paths in speakers for p in paths)}
    if not config.trials:
        raise FileNotFoundError("data.trials is empty: give a trial list (label path_a path_b) for data.val")
    trials = []
    for number, line in enumerate(Path(config.trials).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[0] not in ("0", "1") or parts[1] not in index or parts[2] not in index:
            raise ValueError(f"{config.trials} line {number}: expected 'label path_a path_b' with paths under "
                             f"{config.val}, got {line.strip()!r}")
        trials.append((int(parts[0]), index[parts[1]], index[parts[2]]))
    return utterances, trials, [name for name, _, _ in speakers]
