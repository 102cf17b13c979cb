"""Where a lab is and what every piece of its store shares: its folders, its settings (lab.json), the zone its
days are read in, this clone's id, the lock across processes, and the redaction of whatever is recorded.

`Place` holds no record of its own; the pieces of the store (runs, attempts, events, baselines, ids) are each
handed the place and write under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import socket
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lab.errors import LabError
from lab.records.files import read_json
from lab.records.store.names import RUN_ID, attempt_order, check_run_id, is_attempt_key
from lab.records.store.settings import SETTINGS_FILE, check_settings

if TYPE_CHECKING:
    from lab.records.derived import Derived


def git_dir(start: Path) -> Path | None:
    """The git folder of the repository holding `start` (a `.git` folder, or the one a `.git` file names, as in
    a worktree), or None outside git. Found without running git."""
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            target = dot_git.read_text(encoding="utf-8", errors="replace").partition("gitdir:")[2].strip()
            return (folder / target).resolve() if target else None
    return None


def folder_version(folder: Path) -> tuple[int, int] | None:
    """(mtime in ns, links) of a folder, None when absent: the mtime changes when an entry is added, removed or
    renamed (to the file system's clock tick), the links count its subfolders (within one tick as well)."""
    try:
        stat = folder.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_mtime_ns, stat.st_nlink


def work_tree(start: Path) -> Path | None:
    """The folder holding the `.git` of the repository that holds `start` (resolved), or None outside git."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


@dataclass
class Place:
    """A lab rooted at `root` (the folder holding lab.json); every record lives under root/logs."""

    root: Path
    _folders: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- settings, days and redaction --------------------------------------------------------------------

    @functools.cached_property
    def settings(self) -> dict:
        """lab.json, read once per Store and checked by `check_settings` (LabError, one line)."""
        return check_settings(read_json(self.root / SETTINGS_FILE, {}))

    @functools.cached_property
    def zone(self) -> tzinfo:
        """The zone every record's day is read in, on every page and in the commit list: lab.json's `timezone`
        (an IANA name such as "Europe/Berlin"), else the zone of the machine the lab runs on."""
        name = self.settings.get("timezone")
        if not name:
            return datetime.now().astimezone().tzinfo
        try:
            return zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise LabError(f'lab.json "timezone" {name!r} is not a time zone name (e.g. "Europe/Berlin", "UTC")') \
                from None

    def day(self, timestamp: str) -> date:
        """The day of a recorded ISO timestamp (written with the writer's UTC offset), in the lab's zone."""
        return datetime.fromisoformat(timestamp).astimezone(self.zone).date()

    def today(self) -> date:
        """Today in the lab's zone."""
        return datetime.now(self.zone).date()

    @functools.cached_property
    def detector(self):
        """The lab's secret detector (lab.json `secrets`), used to redact what is recorded."""
        from lab.records.secrets import SecretDetector

        return SecretDetector.from_settings(self.settings)

    def redact(self, value: Any) -> Any:
        """`value` with secrets redacted in every string inside (dicts, lists)."""
        if isinstance(value, str):
            return self.detector.redact(value)
        if isinstance(value, dict):
            return {key: self._redact_entry(key, item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(item) for item in value]
        return value

    def _redact_entry(self, key: Any, item: Any) -> Any:
        """A dict value redacted, its key read as context: {"token": "<40 hex digits>"} is a secret although
        the value alone is not recognisable."""
        from lab.records.secrets import REDACTED

        redacted = self.redact(item)
        if isinstance(item, str) and redacted == item:
            entry = f"{key}={item}"
            return REDACTED if self.detector.redact(entry) != entry else item
        return redacted

    # -- this clone ----------------------------------------------------------------------------------------

    @functools.cached_property
    def clone_dir(self) -> Path:
        """This clone's own folder, which no git command reads or rewrites: .git/lab (its clone id), or
        artefacts/.lab outside git."""
        found = git_dir(self.root)
        return found / "lab" if found else self.artefacts_root / ".lab"

    @functools.cached_property
    def derived(self) -> Derived:
        """What reading derives from the records, kept for the next reader (lab.records.derived)."""
        from lab.records.derived import Derived

        return Derived(self.lab_dir / "derived.sqlite")

    @functools.cached_property
    def lab_dir(self) -> Path:
        """This lab's own state in this clone (running attempts, what reading derives, caches): `clone_dir` for
        a lab at the repository's top, else clone_dir/labs/<the lab's folder from the top>, so that two labs of
        one repository (vision/ and speech/) never see each other's running attempts."""
        top = work_tree(self.root)
        if top is None or top == self.root.resolve():
            return self.clone_dir
        return self.clone_dir / "labs" / self.root.resolve().relative_to(top).as_posix().replace("/", "__")

    @functools.cached_property
    def clone_id(self) -> str:
        """This clone's UUID, made on first use and kept in .git/lab/clone-id (a fresh `git clone` gets its
        own, as a git-annex repository does): it names who wrote a record and which attempts are this clone's."""
        path = self.clone_dir / "clone-id"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return str(uuid.UUID(path.read_text().strip()))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".clone-id.{os.getpid()}")
        temporary.write_text(f"{uuid.uuid4()}\n")
        try:
            os.link(temporary, path)  # the first process to make it wins; the others read its id
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
        return str(uuid.UUID(path.read_text().strip()))

    def mine(self, record: dict) -> bool:
        """Whether a record was written by this clone (records older than clone ids: by this host)."""
        if record.get("clone"):
            return record["clone"] == self.clone_id
        return record.get("host") == socket.gethostname()

    @contextlib.contextmanager
    def lock(self, name: str = "store") -> Iterator[None]:
        """An exclusive lock across processes (new ids, attempt numbers, attempt records).

        Lock files live in the git-ignored artefacts folder, so they never reach a commit.
        """
        folder = self.artefacts_root / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- folders -------------------------------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        return self.root / self.settings.get("logs", "logs")

    @property
    def artefacts_root(self) -> Path:
        return self.root / self.settings.get("artefacts", "artefacts")

    @property
    def runs_dir(self) -> Path:
        return self.logs_dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / check_run_id(run_id)

    def run_ids(self) -> list[str]:
        """The ids of the runs in the lab (folders of logs/runs/ holding a run.json), sorted."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if RUN_ID.fullmatch(p.name) and (p / "run.json").exists())

    def removed_with_attempts(self) -> list[str]:
        """The ids of folders in logs/runs/ holding attempts but no run.json: runs removed on one clone while
        another ran attempts of them, which a git merge brought together (`lab rm ID` moves them to the archive)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(folder.name for folder in self.runs_dir.iterdir() if RUN_ID.fullmatch(folder.name)
                      and not (folder / "run.json").exists() and (folder / "attempts").is_dir()
                      and any((folder / "attempts").iterdir()))

    def exists(self, run_id: str) -> bool:
        """Whether the lab has a run `run_id` (its run.json, readable or not)."""
        return (self.run_dir(run_id) / "run.json").is_file()

    def home(self, run_id: str) -> Path:
        """Where the run's records are now: logs/runs/<id>/ while it has a run.json there; once it was removed
        (`lab rm` here, or on another clone and pulled in), its newest logs/archive/<id>-<time>/ folder, or a new
        one of those when the folder is gone without an archive. An attempt that ends after its run was removed
        is kept there, beside the run's records, never in a logs/runs/ folder without a run.json."""
        if self.exists(run_id):
            return self.run_dir(run_id)
        archive = self.logs_dir / "archive"
        stamp = re.compile(re.escape(check_run_id(run_id)) + r"-\d{8}T\d{6}")
        archived = sorted(folder for folder in archive.glob(f"{run_id}-*") if stamp.fullmatch(folder.name)) \
            if archive.is_dir() else []
        return archived[-1] if archived else archive / f"{run_id}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"

    def running_dir(self, run_id: str) -> Path:
        """Where this clone's running attempts of `run_id` are written, out of git's reach."""
        return self.lab_dir / "running" / check_run_id(run_id) / "attempts"

    def attempt_folders(self, run_id: str) -> list[Path]:
        """The run's attempt folders, ended ones (logs/) and this clone's running ones, in Test order: older
        labs' numbered folders first, then by start time. A half-made folder (no record) is not an attempt.
        Listed again only when a parent folder changed (`folder_version`) or a half-made folder got its record."""
        parents = (self.running_dir(run_id), self.run_dir(run_id) / "attempts")
        versions = tuple(folder_version(parent) for parent in parents)
        known = self._folders.get(run_id)
        if known and known[0] == versions and not any((p / "attempt.json").is_file() for p in known[2]):
            return known[1]  # no folder came or went (a parent's mtime says), and no half-made one got its record
        folders: dict[str, Path] = {}
        half_made = []
        for parent in parents:
            for path in parent.iterdir() if parent.is_dir() else ():
                if not is_attempt_key(path.name):
                    continue
                if (path / "attempt.json").is_file():
                    folders[path.name] = path
                else:
                    half_made.append(path)
        ordered = [folders[name] for name in sorted(folders, key=attempt_order)]
        self._folders[run_id] = (versions, ordered, half_made)
        return ordered

    def forget_folders(self, run_id: str) -> None:
        """Drop what `attempt_folders` knows of `run_id` (after this process made or moved one of its attempts)."""
        self._folders.pop(run_id, None)

    def attempt_dir(self, run_id: str, number: int) -> Path:
        """The folder of Test `number` (1-based, in start order); a path that does not exist for no such test."""
        folders = self.attempt_folders(run_id)
        if isinstance(number, int) and 1 <= number <= len(folders):
            return folders[number - 1]
        return self.run_dir(run_id) / "attempts" / str(number)

    def attempt_number(self, run_id: str, key: str) -> int | None:
        """The Test number of the attempt in folder `key`, or None."""
        names = [folder.name for folder in self.attempt_folders(run_id)]
        return names.index(key) + 1 if key in names else None
