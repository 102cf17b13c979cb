"""Crash-safe file primitives: the one atomic write (records, checkpoints, pages, plots, data caches) and
flushed JSONL appends."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

TEMPORARY_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(stream)` on a temporary file in `path`'s folder, fsync it, then rename it over `path`.

    Readers see the old file or the new one, never a half-written one; a crash leaves at most a hidden
    `.<name>.*.tmp` beside it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    data = text.encode("utf-8")
    atomic_write(path, lambda stream: stream.write(data))


def write_json(path: Path, data: Any) -> None:
    """Write `data` as pretty JSON to `path` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class RecordError(ValueError):
    """A record file that cannot be read (edited by hand, or damaged); the message is one line."""


def read_json(path: Path, default: Any = None) -> Any:
    """Read JSON from `path`, or return `default` when the file does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except json.JSONDecodeError as error:
        raise RecordError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}); fix it or restore it "
                          "from git") from None


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line to `path` and flush it, so a crash loses at most the line being written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str)
    with open(path, "a+b") as stream:
        stream.write((fresh_line_prefix(stream) + line + "\n").encode("utf-8"))
        stream.flush()


def fresh_line_prefix(stream: BinaryIO) -> str:
    """A newline when the file open in `stream` ends in a torn (unterminated) line, else nothing: an append
    after a crash mid-write then starts on a line of its own instead of being swallowed by the torn one."""
    end = stream.seek(0, os.SEEK_END)
    if end == 0:
        return ""
    stream.seek(end - 1)
    last = stream.read(1)
    stream.seek(0, os.SEEK_END)
    return "" if last == b"\n" else "\n"


def read_jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSONL file; a torn last line (crash mid-write) is skipped."""
    try:
        stream = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with stream:
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
