"""Crash-safe file primitives: the one atomic write (records, checkpoints, pages, plots, data caches) and
flushed JSONL appends."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from lab.errors import RecordError

TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back, once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(stream)` on a temporary file in `path`'s folder, fsync it, then rename it over `path`.

    Readers see the old file or the new one, never a half-written one; a crash leaves at most a hidden
    `.<name>.*.tmp` beside it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777  # a file written again keeps its mode
    except OSError:
        mode = 0o666 & ~UMASK  # a new file gets the mode `open` would give it (mkstemp's is 0600)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(handle, mode)
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



def read_json(path: Path, default: Any = None, *, shape: type | None = dict) -> Any:
    """Read JSON from `path`, or return `default` when the file does not exist.

    Anything else that makes the file unusable (not UTF-8, not JSON, not a `shape` at the top, a folder in
    its place) is a RecordError with a one-line message.
    """
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return default
    except json.JSONDecodeError as error:
        raise RecordError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}); fix it or restore it "
                          "from git") from None
    except UnicodeDecodeError as error:
        raise RecordError(f"{path} is not UTF-8 text (byte {error.start}); fix it or restore it from git") from None
    except OSError as error:
        raise RecordError(f"{path} cannot be read ({error.strerror or error})") from None
    if shape is not None and not isinstance(data, shape):
        raise RecordError(f"{path} holds a JSON {type(data).__name__} where an {JSON_NAMES.get(shape, shape)} "
                          "is expected; fix it or restore it from git")
    return data


JSON_NAMES = {dict: "object", list: "array"}


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


def open_record(path: Path) -> BinaryIO | None:
    """`path` opened for reading in binary, None when it does not exist, a RecordError (one line) when it
    cannot be opened (a folder in its place, no permission)."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise RecordError(f"{path} cannot be read ({error.strerror or error})") from None


def read_jsonl(path: Path) -> Iterator[dict]:
    """The object records of a JSONL file. A line that is not one (a torn last line after a crash, bytes that
    are not UTF-8, a JSON value that is not an object) is skipped; a file that cannot be opened (a folder in its
    place) or that holds git conflict markers is a RecordError."""
    stream = open_record(path)
    if stream is None:
        return
    with stream:
        try:
            yield from read_jsonl_lines(stream)
        except RecordError as error:
            raise RecordError(f"{path} {error}") from None


CONFLICT_MARKERS = (b"<<<<<<< ", b"=======", b">>>>>>> ", b"||||||| ")  # what git writes around a conflict


def read_jsonl_lines(lines: Iterable[bytes]) -> Iterator[dict]:
    """The object records among JSONL lines, skipping any line that is not one (see `read_jsonl`); a git
    conflict marker is a RecordError, so a half-merged file is never read as if it were whole."""
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if line.startswith(CONFLICT_MARKERS):
                raise RecordError(f"holds an unresolved git conflict (marker on line {number}): keep the lines of "
                                  "both sides, delete the markers, then git add it") from None
            continue
        if isinstance(record, dict):
            yield record


def conflict_sides(text: str) -> tuple[str, str] | None:
    """(ours, theirs): the two versions of a file that git left with conflict markers (merge or diff3 style),
    or None when it has none."""
    if not text.startswith("<<<<<<< ") and "\n<<<<<<< " not in text:
        return None
    ours, theirs, section = [], [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            section = "ours"
        elif line.startswith("||||||| ") and section == "ours":
            section = "base"
        elif line.startswith("=======") and section in ("ours", "base"):
            section = "theirs"
        elif line.startswith(">>>>>>> ") and section == "theirs":
            section = None
        else:
            if section in (None, "ours"):
                ours.append(line)
            if section in (None, "theirs"):
                theirs.append(line)
    return "".join(ours), "".join(theirs)


def require_fields(path: Path, record: dict, fields: dict[str, type]) -> None:
    """RecordError (one line) unless `record` (read from `path`) has each of `fields` with its type."""
    wrong = [name for name, kind in fields.items() if not isinstance(record.get(name), kind)]
    if wrong:
        raise RecordError(f"{path} lacks a valid {', '.join(wrong)}; fix it or restore it from git")


def cache_home() -> Path:
    """$XDG_CACHE_HOME when it is an absolute path (the XDG spec ignores a relative one, which would put the
    cache inside whatever folder a command runs in), else ~/.cache. RuntimeError without a home folder."""
    given = os.environ.get("XDG_CACHE_HOME")
    return Path(given) if given and os.path.isabs(given) else Path.home() / ".cache"
