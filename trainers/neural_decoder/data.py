"""Data for the neural_decoder family: the competitionData pickle, a synthetic stand-in written in the same
format, the sentence dataset with its collate function, and the batch augmentations.

The pickle holds `{'train': [day, ...], 'test': [day, ...], 'competition': [day, ...]}`; each day is a dict with
`sentenceDat` (list of (T, F) float arrays, z-scored per block), `phonemes` (int arrays padded with 0 to 500;
ids 1-40 = 39 ARPAbet phonemes without stress, then SIL), `phoneLens`, `timeSeriesLens` and `transcriptions`.
A sentence's day is the position of its day dict in its split. 'train' trains and 'test' validates.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from lab.records.files import atomic_write
from trainers.family.context import one_line
from trainers.neural_decoder.config import DataConfig

PHONEMES = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
    "SIL",
)  # phoneme id = position + 1; id 0 pads
SIL = len(PHONEMES)  # 40
PADDED_PHONEME_LENGTH = 500
REQUIRED_SPLITS = ("train", "test")
REQUIRED_DAY_KEYS = ("sentenceDat", "phonemes", "phoneLens")


def load_competition_data(path: str | os.PathLike) -> dict:
    """Read and check a competitionData pickle (it is a pickle: load only files you trust).

    Raises FileNotFoundError when nothing is at `path` and ValueError when the file is not in the format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"competitionData pickle not found: {path}")
    try:
        with path.open("rb") as handle:
            data = pickle.load(handle)
    except Exception as error:
        raise ValueError(f"{path} is not a readable pickle: {type(error).__name__}: {one_line(error)}") from error
    problem = format_problem(data)
    if problem:
        raise ValueError(f"{path} is not competitionData: {problem}")
    return data


def format_problem(data) -> str | None:
    """What makes `data` depart from the competitionData format, or None when it conforms."""
    if not isinstance(data, dict):
        return f"expected a dict of splits, got {type(data).__name__}"
    missing = [split for split in REQUIRED_SPLITS if split not in data]
    if missing:
        return f"missing split(s) {', '.join(missing)}; found keys {sorted(map(str, data))}"
    feature_dims = set()
    for split in (split for split in ("train", "test", "competition") if split in data):
        days = data[split]
        if not isinstance(days, (list, tuple)):
            return f"split {split!r} should be a list of day dicts, got {type(days).__name__}"
        if split in REQUIRED_SPLITS and not days:
            return f"split {split!r} has no days"
        for index, day in enumerate(days):
            where = f"{split}[{index}]"
            if not isinstance(day, dict):
                return f"{where} should be a dict, got {type(day).__name__}"
            absent = [key for key in REQUIRED_DAY_KEYS if key not in day]
            if absent:
                return f"{where} lacks {', '.join(absent)}"
            for key in REQUIRED_DAY_KEYS:
                if not isinstance(day[key], (list, tuple, np.ndarray)):
                    return f"{where}[{key!r}] should be a list or array, got {type(day[key]).__name__}"
            sentences, phonemes, phone_lens = day["sentenceDat"], day["phonemes"], day["phoneLens"]
            if not len(sentences) == len(phonemes) == len(phone_lens):
                return (
                    f"{where} has {len(sentences)} sentences, {len(phonemes)} phoneme rows "
                    f"and {len(phone_lens)} phoneLens"
                )
            for sentence, row, length in zip(sentences, phonemes, phone_lens):
                shape = np.shape(sentence)
                if len(shape) != 2:
                    return f"{where} has a sentence of shape {shape}; expected (T, features)"
                feature_dims.add(shape[1])
                if np.ndim(row) != 1:
                    return f"{where} has a phoneme row of shape {np.shape(row)}; expected (500,)"
                if not 0 <= int(length) <= len(row):
                    return f"{where} has phoneLens {int(length)} outside its padded row of {len(row)}"
            if "timeSeriesLens" in day:
                frames = [np.shape(sentence)[0] for sentence in sentences]
                if [int(length) for length in day["timeSeriesLens"]] != frames:
                    return f"{where} timeSeriesLens disagree with the sentence lengths"
    if len(feature_dims) > 1:
        return f"sentences have different feature counts {sorted(feature_dims)}"
    return None


def _phoneme_sequence(rng: np.random.Generator) -> list[int]:
    """A pseudo-sentence: 2-4 words of 2-5 phonemes (no phoneme twice in a row), SIL after each word."""
    sequence = []
    for _ in range(rng.integers(2, 5)):
        previous = None
        for _ in range(rng.integers(2, 6)):
            phoneme = previous
            while phoneme == previous:
                phoneme = int(rng.integers(1, SIL))
            sequence.append(phoneme)
            previous = phoneme
        sequence.append(SIL)
    return sequence


def _transcription(phonemes: list[int]) -> str:
    """Spell a phoneme sequence as lower-case words, one per SIL-terminated run."""
    words, word = [], []
    for phoneme in phonemes:
        if phoneme == SIL:
            words.append("".join(word).lower())
            word = []
        else:
            word.append(PHONEMES[phoneme - 1])
    return " ".join(words)


def _synthetic_day(
    rng: np.random.Generator, templates: np.ndarray, mixing: np.ndarray, sentences: int, noise_sd: float,
    bins_per_phoneme: tuple[int, int],
) -> dict:
    """One day's sentences: each phoneme holds its template for a few bins, plus noise, through the day's mixing,
    then z-scored over the day (the day is one block)."""
    features, phoneme_rows, phone_lens, transcriptions = [], [], [], []
    for _ in range(sentences):
        phonemes = _phoneme_sequence(rng)
        durations = rng.integers(bins_per_phoneme[0], bins_per_phoneme[1] + 1, size=len(phonemes))
        lead_in, lead_out = rng.integers(5, 16, size=2)
        pattern_ids = np.concatenate([np.zeros(lead_in, int), np.repeat(phonemes, durations), np.zeros(lead_out, int)])
        clean = templates[pattern_ids]  # (T, F); rows of zeros before and after speech
        noisy = clean + noise_sd * rng.standard_normal(clean.shape)  # (T, F)
        features.append(noisy @ mixing)  # (T, F)
        row = np.zeros(PADDED_PHONEME_LENGTH, dtype=np.int32)
        row[: len(phonemes)] = phonemes
        phoneme_rows.append(row)
        phone_lens.append(len(phonemes))
        transcriptions.append(_transcription(phonemes))
    stacked = np.concatenate(features)  # (sum T, F)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    features = [((sentence - mean) / (std + 1e-8)).astype(np.float32) for sentence in features]
    return {
        "sentenceDat": features,
        "transcriptions": transcriptions,
        "phonemes": phoneme_rows,
        "phoneLens": np.array(phone_lens),
        "timeSeriesLens": np.array([len(sentence) for sentence in features]),
    }


def make_synthetic(
    days: int,
    sentences_per_day: int,
    seed: int = 0,
    *,
    test_sentences_per_day: int | None = None,
    n_features: int = 256,
    signal_sd: float = 0.2,
    noise_sd: float = 1.0,
    day_drift: float = 2.0,
    bins_per_phoneme: tuple[int, int] = (5, 9),
) -> dict:
    """Synthetic competitionData in memory: learnable phoneme patterns seen through a different mixing each day.

    Every phoneme (and SIL) has a fixed random template over the `n_features` channels (sd `signal_sd`), held for
    `bins_per_phoneme` bins per occurrence; silence before and after speech is zero; noise is per element (sd
    `noise_sd`). Day d sees (pattern + noise) @ (I + day_drift * G_d / sqrt(F)) with G_d Gaussian, so the per-day
    input layers have a drift to undo. 'test' and 'competition' get `test_sentences_per_day` sentences a day
    (default: a quarter of `sentences_per_day`, at least 4), recorded through the same day mixings.
    """
    rng = np.random.default_rng(seed)
    if test_sentences_per_day is None:
        test_sentences_per_day = max(4, sentences_per_day // 4)
    templates = signal_sd * rng.standard_normal((SIL + 1, n_features))  # (41, F); row 0 is silence
    templates[0] = 0.0
    data = {"train": [], "test": [], "competition": []}
    for _ in range(days):
        mixing = np.eye(n_features) + day_drift * rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
        counts = {"train": sentences_per_day, "test": test_sentences_per_day, "competition": test_sentences_per_day}
        for split, count in counts.items():
            data[split].append(_synthetic_day(rng, templates, mixing, count, noise_sd, bins_per_phoneme))
    return data


def write_synthetic(path: str | os.PathLike, days: int, sentences_per_day: int, seed: int = 0, **options) -> Path:
    """Write `make_synthetic(days, sentences_per_day, seed, **options)` as a competitionData pickle at `path`."""
    data = make_synthetic(days, sentences_per_day, seed, **options)
    atomic_write(Path(path), lambda stream: pickle.dump(data, stream, protocol=pickle.HIGHEST_PROTOCOL))
    return Path(path)


class SentenceDataset(Dataset):
    """The sentences of one split as (features (T, F) float32, phonemes (L,) long, day index) items."""

    def __init__(self, days: list[dict]):
        self.n_days = len(days)
        self.items: list[tuple[np.ndarray, np.ndarray, int]] = []
        for day_index, day in enumerate(days):
            for features, phonemes, length in zip(day["sentenceDat"], day["phonemes"], day["phoneLens"]):
                targets = np.asarray(phonemes[: int(length)], dtype=np.int64)
                self.items.append((np.asarray(features, dtype=np.float32), targets, day_index))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        features, targets, day = self.items[index]
        return torch.from_numpy(features), torch.from_numpy(targets), day


def padded_length(length: int, multiple: int) -> int:
    """`length` rounded up to a multiple of `multiple` (unchanged when `multiple` is 0)."""
    return -(-length // multiple) * multiple if multiple else length


def collate_sentences(
    items: list[tuple[torch.Tensor, torch.Tensor, int]], frame_multiple: int = 0, target_multiple: int = 0
) -> dict[str, torch.Tensor]:
    """Zero-pad a list of dataset items into one batch dict.

    Frames and phonemes are padded to the longest in the batch, rounded up to a multiple of `frame_multiple`
    and `target_multiple` when those are set: XLA then compiles a handful of shapes instead of one per batch.
    """
    features, targets, days = zip(*items)
    frames = padded_length(max(len(sentence) for sentence in features), frame_multiple)
    phonemes = padded_length(max(len(sequence) for sequence in targets), target_multiple)
    feature_batch = pad_sequence(features, batch_first=True)  # (B, T, F)
    target_batch = pad_sequence(targets, batch_first=True).long()  # (B, L), 0 after each sentence's end
    return {
        "features": F.pad(feature_batch, (0, 0, 0, frames - feature_batch.size(1))),  # (B, T', F)
        "feature_lens": torch.tensor([len(sentence) for sentence in features], dtype=torch.long),  # (B,)
        "targets": F.pad(target_batch, (0, phonemes - target_batch.size(1))),  # (B, L')
        "target_lens": torch.tensor([len(sequence) for sequence in targets], dtype=torch.long),  # (B,)
        "day": torch.tensor(days, dtype=torch.long),  # (B,)
    }


def _span_mask(lengths: torch.Tensor, size: int, probability: float, max_width: int) -> torch.Tensor:
    """Per row, with `probability`, one span of width uniform in [0, max_width] (at most the row's length),
    placed uniformly inside [0, length). Returns a bool mask (B, size)."""
    batch = lengths.size(0)
    device = lengths.device
    applied = torch.rand(batch, device=device) < probability  # (B,)
    widths = torch.minimum(torch.randint(0, max_width + 1, (batch,), device=device), lengths)  # (B,)
    starts = (torch.rand(batch, device=device) * (lengths - widths + 1)).long()  # (B,)
    starts = torch.minimum(starts, lengths - widths)
    positions = torch.arange(size, device=device)[None, :]  # (1, size)
    inside = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])  # (B, size)
    return applied[:, None] & inside


def augment(features: torch.Tensor, feature_lens: torch.Tensor, config: DataConfig) -> torch.Tensor:
    """Training augmentations of a batch (B, T, F), drawn from torch's global RNG on the batch's device.

    In order: white noise (per element, sd white_noise_sd), a constant offset (per utterance and channel,
    constant over time, sd constant_offset_sd), a time mask (with time_mask_prob, zero up to time_mask_width
    bins inside the utterance), a frequency mask (with freq_mask_prob, zero up to freq_mask_width channels).
    Noise also lands on the padding, as in the original; masks stay inside the valid frames. Returns a new tensor.
    """
    batch, frames, channels = features.shape
    device, dtype = features.device, features.dtype
    if config.white_noise_sd > 0:
        features = features + config.white_noise_sd * torch.randn(features.shape, device=device, dtype=dtype)
    if config.constant_offset_sd > 0:
        features = features + config.constant_offset_sd * torch.randn(batch, 1, channels, device=device, dtype=dtype)
    if config.time_mask_prob > 0 and config.time_mask_width > 0:
        lengths = feature_lens.to(device)
        time_mask = _span_mask(lengths, frames, config.time_mask_prob, config.time_mask_width)  # (B, T)
        features = features.masked_fill(time_mask[:, :, None], 0.0)
    if config.freq_mask_prob > 0 and config.freq_mask_width > 0:
        all_channels = torch.full((batch,), channels, device=device)
        freq_mask = _span_mask(all_channels, channels, config.freq_mask_prob, config.freq_mask_width)  # (B, F)
        features = features.masked_fill(freq_mask[:, None, :], 0.0)
    return features
