"""A full disk: a launch whose script filled the disk closes its attempt as what it was, and the commands that only
read need no free space. The disk is simulated in process (no mount): once full, every write of the lab's records
(atomic JSON writes, JSONL appends, the derived index's SQLite) raises ENOSPC unless files that existed when the
disk filled have been deleted since, freeing their bytes."""

from __future__ import annotations

import errno
import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from lab.launcher import launch
from lab.records import derived, files
from lab.records.store import Store, events

pytestmark = pytest.mark.light

SCRIPT = """from lab import tracker
for step in range(20000):
    tracker.log(step, **{'train/loss': 1.0 / (step + 1)})
print('done')
"""


class FullDisk:
    """A disk with no free bytes from `fill()` on, but what deleting the files present then gives back."""

    def __init__(self, root: Path):
        self.root, self.present, self.used = root, None, 0

    def fill(self) -> None:
        self.present = {path: path.stat().st_size for path in self.root.rglob("*") if path.is_file()}
        self.used = 0

    def take(self, size: int) -> None:
        if self.present is None:
            return
        freed = sum(size for path, size in self.present.items() if not path.exists())
        if self.used + size > freed:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.used += size


class FullConnection:
    """A SQLite connection on the full disk: reads work, writes fail as SQLite fails them."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def execute(self, sql: str, *args):
        if not sql.lstrip().lower().startswith(("select", "pragma")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.connection.execute(sql, *args)


@pytest.fixture
def disk(repo: Path, monkeypatch) -> FullDisk:
    disk = FullDisk(repo)
    atomic_write, append_jsonl, connect = files.atomic_write, files.append_jsonl, sqlite3.connect

    def full_atomic_write(path, write):
        buffer = io.BytesIO()
        write(buffer)
        disk.take(len(buffer.getvalue()))
        atomic_write(path, lambda stream: stream.write(buffer.getvalue()))

    def full_append(path, record):
        disk.take(len(json.dumps(record, sort_keys=True, default=str)) + 1)
        append_jsonl(path, record)

    def full_connect(*args, **kwargs):
        connection = connect(*args, **kwargs)
        return connection if disk.present is None else FullConnection(connection)

    monkeypatch.setattr(files, "atomic_write", full_atomic_write)
    monkeypatch.setattr(events, "append_jsonl", full_append)
    monkeypatch.setattr(derived.sqlite3, "connect", full_connect)
    return disk


@pytest.fixture
def filled_by_the_script(disk: FullDisk, monkeypatch) -> FullDisk:
    """The disk fills while the launched script runs (its rows took the last bytes)."""
    supervise = launch.supervise

    def supervise_then_full(*args, **kwargs):
        ended = supervise(*args, **kwargs)
        disk.fill()
        return ended

    monkeypatch.setattr(launch, "supervise", supervise_then_full)
    return disk


def test_a_launch_that_filled_the_disk_closes_its_attempt_finished_with_every_row(lab, repo, filled_by_the_script):
    (repo / "rows.py").write_text(SCRIPT)
    lab("new-run", "big_001", "--hypothesis", "h")
    out = lab("launch", "big_001", "--no-commit", "--", sys.executable, "rows.py")
    assert out.returncode == 0 and "done" in out.stdout
    assert "lab: error" not in out.stderr
    [attempt] = Store(repo).attempts.of("big_001")
    assert (attempt["status"], attempt["exit_code"]) == ("finished", 0)
    folder = Store(repo).attempt_dir("big_001", 1)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 20000
    assert not list(repo.rglob(".space-reserve"))  # the room it kept is given back


def test_reading_commands_need_no_free_space(lab, repo, disk):
    (repo / "rows.py").write_text(SCRIPT.replace("20000", "50"))
    lab("new-run", "big_001", "--hypothesis", "h")
    lab("launch", "big_001", "--no-commit", "--", sys.executable, "rows.py")
    before = {name: lab(*name.split()).stdout for name in ("runs", "show big_001")}
    Path(Store(repo).lab_dir / "derived.sqlite").unlink(missing_ok=True)
    disk.fill()
    for name, text in before.items():
        result = lab(*name.split())
        assert (result.returncode, result.stdout, result.stderr) == (0, text, "")


def test_a_disk_full_even_for_the_closing_record_says_what_is_missing(lab, repo, filled_by_the_script, monkeypatch):
    monkeypatch.setattr("lab.records.store.attempts.reserve_space", lambda path: None)  # no room kept at all
    (repo / "rows.py").write_text(SCRIPT.replace("20000", "50"))
    lab("new-run", "big_001", "--hypothesis", "h")
    result = lab("launch", "big_001", "--no-commit", "--", sys.executable, "rows.py", check=False)
    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if line.startswith("lab: error:")]
    assert line.startswith("lab: error: no space left on device: the command ended (finished, exit 0) but its "
                           "attempt could not be closed; its records are in ")
    kept = Path(line.split("its records are in ")[1].split(" (")[0])
    assert len((kept / "metrics.jsonl").read_text().splitlines()) == 50  # every row is there, named


FILLING = """import errno, os
import lab.tracking.tracker as module
from lab import tracker
reserve = os.path.join(os.environ['LAB_ATTEMPT_DIR'], '.space-reserve')
kept, free, used = os.path.getsize(reserve), FREE, [0]


class FullFile:  # metrics.jsonl on a disk with FREE bytes left, plus what the lab's reserve gives back
    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        freed = kept - (os.path.getsize(reserve) if os.path.exists(reserve) else 0)
        if used[0] + len(text) > free + freed:
            raise OSError(errno.ENOSPC, 'No space left on device')
        used[0] += len(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


module.open = lambda path, mode='r', *args, **kwargs: (
    FullFile(open(path, mode, *args, **kwargs)) if str(path).endswith('metrics.jsonl') and mode == 'a'
    else open(path, mode, *args, **kwargs))
""" + SCRIPT


def row_bytes(repo: Path, lab) -> int:
    """What the 20,000 rows of SCRIPT take in metrics.jsonl, from a launch with room."""
    (repo / "rows.py").write_text(SCRIPT)
    lab("new-run", "room_001", "--hypothesis", "h")
    lab("launch", "room_001", "--no-commit", "--", sys.executable, "rows.py")
    return (Store(repo).attempt_dir("room_001", 1) / "metrics.jsonl").stat().st_size


def test_the_reserve_gives_the_script_its_bytes_when_the_script_fills_the_disk(lab, repo, filled_by_the_script):
    needed = row_bytes(repo, lab)
    (repo / "fill.py").write_text(FILLING.replace("FREE", str(needed - 200 * 1024)))  # short of the rows' bytes
    lab("new-run", "big_001", "--hypothesis", "h")
    out = lab("launch", "big_001", "--no-commit", "--", sys.executable, "fill.py")
    assert "done" in out.stdout and "lab: error" not in out.stderr and "rows" not in out.stderr
    [attempt] = Store(repo).attempts.of("big_001")
    assert (attempt["status"], attempt["exit_code"]) == ("finished", 0) and "rows_lost" not in attempt
    assert len((Store(repo).attempt_dir("big_001", 1) / "metrics.jsonl").read_text().splitlines()) == 20000


def test_rows_the_full_disk_refused_are_counted_on_the_attempt(lab, repo, filled_by_the_script):
    needed = row_bytes(repo, lab)
    (repo / "fill.py").write_text(FILLING.replace("FREE", str(needed - 600 * 1024)))
    lab("new-run", "big_001", "--hypothesis", "h")
    out = lab("launch", "big_001", "--no-commit", "--", sys.executable, "fill.py")
    assert "done" in out.stdout and "lab: error" not in out.stderr
    [attempt] = Store(repo).attempts.of("big_001")
    kept = len((Store(repo).attempt_dir("big_001", 1) / "metrics.jsonl").read_text().splitlines())
    assert attempt["status"] == "finished" and 0 < kept < 20000 and attempt["rows_lost"] == 20000 - kept
    assert (f"lab: warning: no space left on device: {20000 - kept} rows the script logged could not be written to "
            "metrics.jsonl (attempt.json rows_lost)") in out.stderr
