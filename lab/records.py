"""Crash-safe file primitives for the run store: atomic JSON writes and flushed JSONL appends."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def write_json(path: Path, data: Any) -> None:
    """Write `data` as pretty JSON to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


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
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")
        stream.flush()


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
