"""Generated samples as records: each attempt's `samples.jsonl`, one line per audio file it (or `lab generate` with
its checkpoint) made, and the files themselves.

    logs/runs/<id>/attempts/<key>/samples.jsonl          {"step", "name", "source", "file", "stored", "sha256", ...}
    logs/runs/<id>/attempts/<key>/samples/<file>.flac    a sample up to lab.json "samples.max_mb" (default 2 MB)
    artefacts/<id>/<key>/samples/<file>.flac             a larger one: it stays on this machine

A file up to the size limit sits in the attempt's records, so it travels with them through git and a colleague
hears it; a larger one stays in the git-ignored artefacts folder and its line says `"stored": "local"`. Either way
the line holds the file's SHA-256 digest and size in bytes: the key a shared store (issue 34) will file it
under. Torch-free: the caller encodes the audio and measures it (`trainers.formats.audio`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lab.records.files import append_jsonl, atomic_write, read_jsonl

SAMPLES_FILE = "samples.jsonl"
SAMPLES_FOLDER = "samples"
DEFAULT_MAX_MB = 2.0


def max_bytes(settings: dict) -> int:
    """The largest sample kept in the records, in bytes: lab.json `"samples": {"max_mb": 2}` (MB = 10^6 bytes;
    `check_settings` has checked it is a number >= 0)."""
    return int(settings.get("samples", {}).get("max_mb", DEFAULT_MAX_MB) * 1_000_000)


def keep(attempt_dir: Path, artefacts_dir: Path, root: Path, file_name: str, data: bytes, entry: dict,
         limit: int) -> dict:
    """Write one sample's bytes and append its line to the attempt's samples.jsonl; returns the line.

    `file_name` is the file's name (no folder); `entry` what the caller knows (step, name, source, settings,
    statistics). Up to `limit` bytes the file goes under `attempt_dir/samples/` ("stored": "records", `file`
    relative to the attempt folder), else under `artefacts_dir/samples/` ("stored": "local", `file` relative to
    the lab's `root`)."""
    in_records = len(data) <= limit
    path = (attempt_dir if in_records else artefacts_dir) / SAMPLES_FOLDER / file_name
    atomic_write(path, lambda stream: stream.write(data))
    line = {**entry, "file": path.relative_to(attempt_dir if in_records else root).as_posix(),
            "stored": "records" if in_records else "local", "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}
    append_jsonl(attempt_dir / SAMPLES_FILE, line)
    return line


def file_stem(name: str) -> str:
    """A sample's name usable in a file name: 'samples/tone <b>' -> 'samples_tone__b_'."""
    return "".join(char if char.isalnum() or char in "-." else "_" for char in name).strip("._") or "sample"


def of_attempt(attempt_dir: Path) -> list[dict]:
    """The sample lines of one attempt, oldest first (none: [])."""
    return list(read_jsonl(attempt_dir / SAMPLES_FILE))


def file_of(root: Path, attempt_dir: Path, line: dict) -> Path | None:
    """Where a sample's file is on this machine, or None where it is not here (a large one made elsewhere)."""
    path = (attempt_dir if line.get("stored") == "records" else root) / str(line.get("file", ""))
    return path if line.get("file") and path.is_file() else None


def next_index(attempt_dir: Path) -> int:
    """A number for the next sample of an attempt, so file names never collide: 1 + the lines so far."""
    return 1 + len(of_attempt(attempt_dir))
