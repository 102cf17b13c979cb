"""The Descript Audio Codec around the dia family: local weights only, strict keys, an encode cache.

    codec = load_codec("/weights/dac_44khz.pth")            # or random_codec(width) for synthetic data
    report = encode_folder("music/", codec, "data/codes")    # resumable; bad files listed and skipped
    audio = decode(codec, codes)                             # (C, T) codes -> (channels, samples)

The cache holds one `.npy` of int16 codes (codebooks, frames) per audio file, written atomically, and
`index.jsonl` with each file's frames, seconds and tags (from a `<name>.txt` sidecar: comma-separated). A killed
encode resumes where it stopped: files already in the index are skipped.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab.errors import ConfigError
from lab.records.files import append_jsonl, atomic_write, read_jsonl
from trainers.formats import audio
from trainers.engine.initial_weights import load_initial_weights

SAMPLE_RATE = 44100
CODEBOOKS = 9
INDEX = "index.jsonl"


def random_codec(width: int = 16, seed: int = 0):
    """A randomly initialised DAC with 9 codebooks x 1024 and hop 512 (the 44.1 kHz layout), `width` wide."""
    import dac

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        codec = dac.DAC(encoder_dim=width, decoder_dim=4 * width, n_codebooks=CODEBOOKS, sample_rate=SAMPLE_RATE)
    finally:
        torch.random.set_rng_state(generator_state)
    return codec.eval()


def load_codec(weights: str | Path):
    """DAC from a local weights file (dac's own format: state_dict + metadata kwargs), every key checked."""
    import dac

    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"codec weights not found: {path} (download dac_44khz.pth once and give its local path)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    kwargs = (saved.get("metadata") or {}).get("kwargs", {}) if isinstance(saved, dict) else {}
    codec = dac.DAC(**kwargs)
    load_initial_weights(codec, str(path), strict=True)
    return codec.eval()


@torch.no_grad()
def encode(codec, samples: np.ndarray) -> np.ndarray:
    """(channels, samples) float audio at 44.1 kHz -> (channels * 9, frames) int16 codes, channel by channel."""
    codes = []
    for channel in samples:
        signal = torch.from_numpy(np.ascontiguousarray(channel)).view(1, 1, -1)
        _, channel_codes, *_ = codec.encode(codec.preprocess(signal, SAMPLE_RATE))
        codes.append(channel_codes[0])  # (9, frames)
    return torch.cat(codes).numpy().astype(np.int16)


@torch.no_grad()
def decode(codec, codes: np.ndarray | torch.Tensor) -> np.ndarray:
    """(channels * 9, frames) codes -> (channels, samples) float32 audio at 44.1 kHz."""
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    channels = []
    for start in range(0, codes.shape[0], CODEBOOKS):
        latent = codec.quantizer.from_codes(codes[start:start + CODEBOOKS].unsqueeze(0))[0]
        channels.append(codec.decode(latent)[0, 0])
    return torch.stack(channels).numpy().astype(np.float32)


def tags_of(path: Path) -> list[str]:
    """Comma-separated tags from the `<name>.txt` beside an audio file (none when there is no such file)."""
    sidecar = path.with_suffix(".txt")
    if not sidecar.is_file():
        return []
    return [tag.strip() for tag in sidecar.read_text(encoding="utf-8", errors="replace").split(",") if tag.strip()]


@dataclass
class EncodeReport:
    encoded: int = 0
    skipped: int = 0  # already in the cache
    failed: list[str] = field(default_factory=list)  # one line each: the file and why


def encode_folder(audio_dir: str | Path, codec, out_dir: str | Path, channels: int = 1,
                  progress: bool = True) -> EncodeReport:
    """Encode every audio file under `audio_dir` into the cache at `out_dir` (resumable: files already in its
    index are skipped). With `progress`, a bar on a terminal, else a line every few seconds on stderr with the
    time left (`codec encode: 40/300 files, ETA 6m 30s`)."""
    from trainers.commands.progress import StepProgress

    source, out = Path(audio_dir), Path(out_dir)
    if not source.is_dir():
        raise ConfigError(f"--audio {source} is not a folder")
    files = sorted(path for path in source.rglob("*")
                   if path.suffix.lower() in (*audio.WAV_SUFFIXES, ".flac", ".mp3", ".m4a", ".ogg"))
    done = {entry["file"] for entry in read_jsonl(out / INDEX)}
    report = EncodeReport()
    meter = StepProgress("codec encode", unit="file") if progress else None
    for number, path in enumerate(files, 1):
        name = path.relative_to(source).as_posix()
        if name in done:
            report.skipped += 1
        else:
            _encode_file(codec, path, name, out, channels, report)
        if meter is not None:
            meter(number, len(files))
    if meter is not None:
        meter.close()
    return report


def _encode_file(codec, path: Path, name: str, out: Path, channels: int, report: EncodeReport) -> None:
    """Encode one file into the cache at `out` and index it (`report.failed` names an unreadable one)."""
    try:
        samples = audio.load(path, SAMPLE_RATE, channels)
    except audio.AudioError as error:
        report.failed.append(str(error))
        print(f"skipped: {error}", file=sys.stderr, flush=True)
        return
    codes = encode(codec, samples)
    target = out / f"{name}.npy"
    buffer = io.BytesIO()
    np.save(buffer, codes)
    atomic_write(target, lambda stream: stream.write(buffer.getvalue()))
    append_jsonl(out / INDEX, {"file": name, "codes": target.relative_to(out).as_posix(),
                               "frames": int(codes.shape[1]), "seconds": round(samples.shape[1] / SAMPLE_RATE, 3),
                               "channels": channels, "tags": tags_of(path)})
    report.encoded += 1


def read_cache(folder: str | Path) -> list[dict]:
    """The cache's entries, each with its codes loaded: {"codes": (C, T) int16, "tags": [...], ...}."""
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        raise FileNotFoundError(f"data.codes {folder} has no {INDEX}: encode audio first with `lab codec encode`")
    entries = []
    for entry in read_jsonl(folder / INDEX):
        path = folder / entry["codes"]
        try:
            codes = np.load(path)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: unreadable codes ({error}); delete it and its index line, then re-encode") \
                from None
        entries.append({**entry, "codes": codes})
    return entries


def describe(report: EncodeReport) -> str:
    return json.dumps({"encoded": report.encoded, "skipped": report.skipped, "failed": len(report.failed)})
