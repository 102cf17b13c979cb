"""Audio files for the audio families: reading and writing PCM wav, resampling, channel layout.

Wav files are read with the standard library (8, 16, 24 and 32-bit PCM, and 32-bit float); any other format
goes through torchaudio, which needs torchcodec and FFmpeg. A file that cannot be read raises AudioError naming
the file and the fix, so a data loader can list it and go on.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np

WAV_SUFFIXES = (".wav", ".wave")


class AudioError(ValueError):
    """An audio file that cannot be read; the message names the file."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples (channels, frames) float32 in [-1, 1], sample rate) of an audio file."""
    path = Path(path)
    if path.suffix.lower() in WAV_SUFFIXES:
        return read_wav(path)
    try:
        import torchaudio

        waveform, rate = torchaudio.load(str(path))
    except ImportError:
        raise AudioError(f"{path}: reading {path.suffix or 'this'} files needs torchcodec and FFmpeg "
                         "(pip install torchcodec), or convert it to wav") from None
    except Exception as error:  # noqa: BLE001 - every decoder failure is the same one-line error
        raise AudioError(f"{path}: cannot decode it ({' '.join(str(error).split())[:160]})") from None
    return waveform.numpy().astype(np.float32), int(rate)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A PCM or float wav file as (channels, frames) float32 in [-1, 1] and its sample rate."""
    try:
        with open(path, "rb") as stream:
            header = stream.read(64)
            if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                raise AudioError(f"{path}: not a RIFF/WAVE file (corrupt, or another format named .wav)")
            if _wav_format(header) == 3:  # IEEE float: the wave module reads PCM only
                return _read_float_wav(path)
        with wave.open(str(path), "rb") as stream:
            channels, width, rate = stream.getnchannels(), stream.getsampwidth(), stream.getframerate()
            frames = stream.readframes(stream.getnframes())
    except (wave.Error, EOFError, struct.error, RuntimeError, ValueError) as error:
        raise AudioError(f"{path}: unreadable wav ({error})") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot open it ({error.strerror})") from None
    if width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        samples = (raw[:, 0].astype(np.int32) | raw[:, 1].astype(np.int32) << 8 | raw[:, 2].astype(np.int32) << 16)
        samples = np.where(samples >= 1 << 23, samples - (1 << 24), samples) / float(1 << 23)
    elif width in (1, 2, 4):
        kind = {1: np.uint8, 2: "<i2", 4: "<i4"}[width]
        samples = np.frombuffer(frames, dtype=kind).astype(np.float64)
        samples = (samples - 128) / 128 if width == 1 else samples / float(1 << (8 * width - 1))
    else:
        raise AudioError(f"{path}: {8 * width}-bit samples are not supported")
    if len(samples) % channels:
        raise AudioError(f"{path}: truncated wav (frames do not divide into {channels} channels)")
    return samples.reshape(-1, channels).T.astype(np.float32), rate


def _wav_format(header: bytes) -> int:
    """The wav format tag (1 PCM, 3 float, 0xFFFE extensible) from the first bytes of the file."""
    position = 12
    while position + 8 <= len(header):
        chunk, size = header[position:position + 4], struct.unpack("<I", header[position + 4:position + 8])[0]
        if chunk == b"fmt ":
            tag = struct.unpack("<H", header[position + 8:position + 10])[0]
            if tag == 0xFFFE and position + 34 <= len(header):
                tag = struct.unpack("<H", header[position + 32:position + 34])[0]
            return tag
        position += 8 + size
    return 1


def _read_float_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 32-bit float wav, read chunk by chunk."""
    data = path.read_bytes()
    position, channels, rate, samples = 12, 1, 0, None
    while position + 8 <= len(data):
        chunk, size = data[position:position + 4], struct.unpack("<I", data[position + 4:position + 8])[0]
        body = data[position + 8:position + 8 + size]
        if chunk == b"fmt ":
            channels, rate = struct.unpack("<HI", body[2:8])
        elif chunk == b"data":
            samples = np.frombuffer(body[: len(body) // 4 * 4], dtype="<f4")
        position += 8 + size + (size % 2)
    if samples is None or not rate:
        raise AudioError(f"{path}: float wav without fmt or data chunk")
    return samples.reshape(-1, channels).T.astype(np.float32), int(rate)


def to_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """(C, N) audio as `channels` channels: mono is averaged down or copied up."""
    if samples.shape[0] == channels:
        return samples
    if channels == 1:
        return samples.mean(axis=0, keepdims=True)
    return np.repeat(samples.mean(axis=0, keepdims=True), channels, axis=0)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(C, N) audio at `rate` resampled to `target` (torchaudio's windowed sinc)."""
    if rate == target:
        return samples
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), rate, target).numpy()


def load(path: str | Path, rate: int, channels: int) -> np.ndarray:
    """An audio file as (channels, frames) float32 at `rate`."""
    samples, file_rate = read_audio(path)
    return resample(to_channels(samples, channels), file_rate, rate)


def wav_bytes(audio: Any, sample_rate: int) -> bytes:
    """A 16-bit PCM wav file of `audio`: (samples,) or (channels, samples) floats in [-1, 1]."""
    samples = np.atleast_2d(np.asarray(audio, dtype=np.float32))  # (C, N)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").T  # (N, C), interleaved
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as stream:
        stream.setnchannels(samples.shape[0])
        stream.setsampwidth(2)
        stream.setframerate(int(sample_rate))
        stream.writeframes(pcm.tobytes())
    return buffer.getvalue()


SILENCE_DBFS = -60.0  # a frame quieter than this (all channels) counts as silence in `audio_stats`


def flac_bytes(audio: Any, sample_rate: int) -> bytes:
    """A 16-bit FLAC file of `audio` ((samples,) or (channels, samples) floats in [-1, 1]), through soundfile
    (libsndfile's encoder, so no FFmpeg is needed): lossless, about half a wav's size for generated audio."""
    import soundfile

    samples = np.atleast_2d(np.asarray(audio, dtype=np.float32))  # (C, N)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0).T, int(sample_rate), format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def audio_stats(audio: Any, sample_rate: int) -> dict[str, float]:
    """Length and level of `audio` ((samples,) or (channels, samples) in [-1, 1]): {"seconds", "rms", "peak",
    "silence"}, silence being the share of frames whose every channel is below SILENCE_DBFS (-60 dBFS)."""
    samples = np.atleast_2d(np.asarray(audio, dtype=np.float64))  # (C, N)
    frames = samples.shape[-1]
    if frames == 0:
        return {"seconds": 0.0, "rms": 0.0, "peak": 0.0, "silence": 1.0}
    quiet = (np.abs(samples) < 10 ** (SILENCE_DBFS / 20)).all(axis=0)  # (N,)
    return {"seconds": round(frames / sample_rate, 4), "rms": round(float(np.sqrt(np.mean(samples ** 2))), 5),
            "peak": round(float(np.abs(samples).max()), 5), "silence": round(float(quiet.mean()), 4)}
