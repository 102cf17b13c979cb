"""What the engine hands a family and what a family hands back: the training context and the data bundle.

A family's callables (see `lab.families.spec.FamilySpec`):

    build_model(config) -> torch.nn.Module
    build_data(config) -> DataBundle
    training_loss(model, batch, ctx) -> (loss, metrics)     # loss: scalar tensor; metrics: name -> value
    evaluate(model, batches, ctx) -> {"val/<name>": float}  # the model is already in eval mode

Augmentations happen inside `training_loss` on the batch's device, drawing from torch's global RNG so that an
exact resume replays them. Models do no logging and no I/O; a family writes files (generated samples) only
through `ctx.log_media`.

Training metrics are floats or detached scalar tensors; the engine copies the tensors to the host with the loss, in
one transfer per step. `build_model` and `build_data` raise OSError or ValueError for input they cannot use.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab import tracker
from lab.records.files import atomic_write
from trainers.formats.audio import audio_stats, flac_bytes, wav_bytes

# (dataset, batch_size, seed, epoch, rank, processes) -> this process's index batches for the epoch
BatchSampler = Callable[[Any, int, int, int, int, int], list[list[int]]]


@dataclass
class DataBundle:
    """A family's datasets with how to batch them.

    `collate` and the engine's `train.batch_size` batch the training set; `val_collate` and `val_batch_size`
    (default: the same) the validation set, so training can use crops and validation whole utterances.
    `batch_sampler`, when given, deals out each epoch's training batches (length buckets, speakers per batch);
    it must depend on its arguments only, so that a resumed run replays the same order.
    """

    train: Any  # torch.utils.data.Dataset
    val: Any  # torch.utils.data.Dataset
    collate: Callable[[list], Any]
    info: dict = field(default_factory=dict)  # for reports: {"train_items": 1536, "val_items": 256, ...}
    val_collate: Callable[[list], Any] | None = None
    val_batch_size: int | None = None
    batch_sampler: BatchSampler | None = None


@dataclass
class Context:
    """What a family's loss and evaluations may know of the run besides the batch.

    A margin ramp, a curriculum or a tag-dropout schedule reads `step`; generated samples go out through
    `log_media`. The engine updates `step` and `epoch` before each call.
    """

    config: Any
    max_steps: int
    artefacts: Path  # this attempt's folder for heavy files (git-ignored)
    is_main: bool = True
    step: int = 0  # updates taken so far
    epoch: int = 0
    steps_per_epoch: int = 1  # updates in one pass over the training set (for schedules counted in epochs)

    def log_media(self, name: str, media: str | Path | Any, step: int | None = None, *,
                  kind: str = "audio", sample_rate: int | None = None) -> Path | None:
        """Record a sample: a file path, or an array (audio: (samples,) or (channels, samples) floats in
        [-1, 1] with `sample_rate`, kept as FLAC on the attempt by `log_audio`; image: (H, W) or (H, W, 3),
        written to the artefacts folder first). Returns the file's path (None off the main process)."""
        if not self.is_main:
            return None
        step = self.step if step is None else step
        if kind == "audio" and not isinstance(media, (str, Path)):
            return self.log_audio(name, media, step, sample_rate)
        if isinstance(media, (str, Path)):
            path = Path(media)
        else:
            path = self.artefacts / "media" / f"{safe_name(name)}_{step}.{'wav' if kind == 'audio' else 'png'}"
            write_media(path, media, kind, sample_rate)
        tracker.media(name, path, step, kind=kind, sample_rate=sample_rate)
        return path


    def log_audio(self, name: str, audio: Any, step: int, sample_rate: int | None) -> Path | None:
        """Record a generated sample as a FLAC file on the attempt, with its length and level (`audio_stats`),
        through `tracker.sample` (`lab.records.samples`); returns the file's path."""
        if not sample_rate:
            raise ValueError("log_media of an audio array needs sample_rate")
        array = as_array(audio)
        data = flac_bytes(array, sample_rate)
        kept = tracker.sample(name, data, step, sample_rate=sample_rate, **audio_stats(array, sample_rate))
        if kept is None:  # no attempt (a standalone run): the file still goes to the artefacts folder
            kept = self.artefacts / "media" / f"{safe_name(name)}_{step}.flac"
            atomic_write(kept, lambda stream: stream.write(data))
        return kept


def as_array(data: Any):
    """A tensor or array-like as a float32 numpy array (on the host)."""
    import numpy as np

    if hasattr(data, "detach"):  # a tensor
        data = data.detach().float().cpu().numpy()
    return np.asarray(data, dtype=np.float32)


def standard_error(values: list[float]) -> float | None:
    """Standard error of the mean of `values` (sample standard deviation / sqrt(n): the noise of a validation
    loss averaged over its batches, logged as `<metric>_se` for the lab's verdicts); None under two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return (variance / len(values)) ** 0.5


def with_standard_error(metrics: dict[str, float], name: str, values: list[float]) -> dict[str, float]:
    """`metrics` with `<name>_se` (`standard_error(values)`) added when it is known."""
    se = standard_error(values)
    return metrics if se is None else {**metrics, f"{name}_se": se}


def safe_name(name: str) -> str:
    """`name` usable as a file name: 'samples/drums 1' -> 'samples_drums_1'."""
    return "".join(char if char.isalnum() or char in "-." else "_" for char in name).strip("._") or "media"


def write_media(path: Path, data: Any, kind: str, sample_rate: int | None) -> None:
    """Write an array as a 16-bit PCM wav (`kind` 'audio') or a PNG ('image'), atomically."""
    import numpy as np

    array = as_array(data)
    if kind == "audio":
        if not sample_rate:
            raise ValueError("log_media of an audio array needs sample_rate")
        atomic_write(path, lambda stream: stream.write(wav_bytes(array, sample_rate)))
    elif kind == "image":
        from PIL import Image

        scaled = np.clip(array, 0.0, 1.0) * 255 if array.max(initial=0) <= 1.0 else np.clip(array, 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(scaled.astype(np.uint8)).save(buffer, format="PNG")
        atomic_write(path, lambda stream: stream.write(buffer.getvalue()))
    else:
        raise ValueError(f"media kind must be 'audio' or 'image', got {kind!r}")


def one_line(text: object) -> str:
    """`text` as a string with every run of whitespace, newlines included, collapsed to one space."""
    return " ".join(str(text).split())
