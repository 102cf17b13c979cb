"""The run store: one folder per run under logs/runs/, JSON records written atomically, append-only events.

    logs/runs/<id>/run.json           identity and notebook fields
    logs/runs/<id>/config.json        resolved config of the run
    logs/runs/<id>/events.jsonl       every action on the run, timestamped
    logs/runs/<id>/attempts/<key>/    attempt.json, config.json, metrics.jsonl, summary.json, stdout.log
    logs/baselines/<name>.json        a baseline's config and provenance, snapshotted on first use
    logs/journal.jsonl                day-level notes (overview, insights)

Several clones of one repository share these records through git (git-annex's model: every clone has a UUID,
`.git/lab/clone-id`, and writes only what is its own). An attempt's folder is named `<UTC start>-<clone>`
(`20261130T145123Z-1a2b3c4d`), so two clones never make the same one; attempts are shown as Test 1, 2, 3 in
start order, and folders of older labs (`attempts/1`, `attempts/2`) come first in their own order. A running
attempt lives in `.git/lab/running/<id>/attempts/<key>/`, where no git command touches it, and moves into
logs/ when it ends. Events and notes carry the clone that wrote them and the attempt key they are about.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import socket
import sys
import uuid
import zipfile
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Callable, Iterator

from lab.errors import LabError, RecordError
from lab.records.files import append_jsonl, conflict_sides, read_json, read_jsonl, write_json

RUN_ID = re.compile(r"^[a-z][a-z0-9_]*_[0-9]{3}$")
PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")
BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME_LENGTH = 100
SETTINGS_FILE = "lab.json"
TITLE_STOPWORDS = {
    "a", "an", "the", "to", "of", "and", "or", "is", "are", "be", "will", "for", "on", "in", "with", "that",
    "this", "it", "we", "i", "if", "by", "at", "as", "than", "from", "does", "do", "can", "should",
}
NOTE_FIELDS = ("findings", "observations", "conclusion", "next", "result")
FINAL_STATUSES = ("finished", "failed", "killed", "crashed")
ATTEMPT_KEY = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(-[0-9]+)?$")  # <UTC start>-<clone>[-<n>]


def now_iso() -> str:
    """The current local time as ISO 8601 with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def slugify(text: str, max_words: int = 5) -> str:
    """A short snake_case title from free text, without filler words."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    kept = [word for word in words if word not in TITLE_STOPWORDS] or words
    return "_".join(kept[:max_words]) or "untitled"


def check_run_id(run_id: str) -> str:
    """Return `run_id` if it is a valid id (prefix + 3 digits, no path characters), else raise LabError."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or len(run_id) > MAX_NAME_LENGTH:
        raise LabError(
            f"invalid run id {run_id!r}: use a lowercase prefix and three digits, like dia_009 or nsd_011, "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    return run_id


def process_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this host."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def is_attempt_key(name: str) -> bool:
    """Whether a folder name under attempts/ is an attempt: a number (older labs) or `<UTC start>-<clone>`."""
    return name.isdigit() or bool(ATTEMPT_KEY.fullmatch(name))


def attempt_order(name: str) -> tuple:
    """Sort key of attempt folders: older labs' numbered folders first, by number, then by start time (and
    for two launches of one clone in one second, `-2`, `-3` ... in order)."""
    if name.isdigit():
        return (0, int(name), "", 0)
    start, clone, copy = (name.split("-") + ["1"])[:3]
    return (1, 0, f"{start}-{clone}", int(copy))


RUN_FIELDS = {"id": str, "created": str, "slug": str, "title": str}
ATTEMPT_FIELDS = {"number": int, "status": str, "run": str}


def require_fields(path: Path, record: dict, fields: dict[str, type]) -> None:
    """RecordError (one line) unless `record` has each of `fields` with its type."""
    wrong = [name for name, kind in fields.items() if not isinstance(record.get(name), kind)]
    if wrong:
        raise RecordError(f"{path} lacks a valid {', '.join(wrong)}; fix it or restore it from git")


def intact_checkpoint(path: Path) -> bool:
    """Whether a torch checkpoint file is whole: torch.save writes a zip archive whose directory sits at the
    end, so a truncated file fails this check without torch being imported."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def well_formed_event(event: dict) -> bool:
    """Whether an events.jsonl line has what the pages read: a kind, an ISO time, and a note's field and text."""
    if not isinstance(event.get("kind"), str) or not isinstance(event.get("time"), str):
        return False
    try:
        datetime.fromisoformat(event["time"])
    except ValueError:
        return False
    if event["kind"] == "note":
        return event.get("field") in NOTE_FIELDS and isinstance(event.get("text"), str)
    return True


def event_time(event: dict) -> datetime:
    """An event's time as an aware datetime (a time without offset is read as local time)."""
    return datetime.fromisoformat(event["time"]).astimezone()


def same_run(first: dict, second: dict) -> bool:
    """Whether two run.json describe one run edited on two clones, rather than two runs given one id."""
    return first.get("created") == second.get("created") and first.get("clone") == second.get("clone")


@dataclass
class Store:
    """A lab rooted at `root` (the folder holding lab.json); every record lives under root/logs."""

    root: Path

    unreadable: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _readable: tuple[tuple[str, ...], list[str]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def find(cls, start: Path | None = None) -> "Store":
        """The lab containing `start` (default: the working directory), searching parent folders: first the path
        as given (a symlinked logs/ leads back to its lab), then with symlinks resolved."""
        given = Path(os.path.abspath(start or Path.cwd()))
        for candidate in dict.fromkeys((given, given.resolve())):
            for folder in (candidate, *candidate.parents):
                if (folder / SETTINGS_FILE).is_file():
                    return cls(folder)
        start = given
        raise LabError(f"no lab found at {start} or above: run `lab init` in your repository first")

    @classmethod
    def init(cls, root: Path, **settings: Any) -> "Store":
        """Create (or update) a lab at `root` with the given settings; returns it."""
        root = Path(root).resolve()
        path = root / SETTINGS_FILE
        current = read_json(path, {"logs": "logs", "artefacts": "artefacts", "prefixes": {}, "wandb": {}})
        for key, value in settings.items():
            if isinstance(value, dict):
                current.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
            elif value is not None:
                current[key] = value
        write_json(path, current)
        store = cls(root)
        store.runs_dir.mkdir(parents=True, exist_ok=True)
        return store

    # -- locations -------------------------------------------------------------------------------------

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

    @functools.cached_property
    def lab_dir(self) -> Path:
        """This clone's own lab folder, which no git command reads or rewrites: .git/lab, or artefacts/.lab
        outside git."""
        found = git_dir(self.root)
        return found / "lab" if found else self.artefacts_root / ".lab"

    @functools.cached_property
    def clone_id(self) -> str:
        """This clone's UUID, made on first use and kept in .git/lab/clone-id (a fresh `git clone` gets its
        own, as a git-annex repository does): it names who wrote a record and which attempts are this clone's."""
        path = self.lab_dir / "clone-id"
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

    def running_dir(self, run_id: str) -> Path:
        """Where this clone's running attempts of `run_id` are written, out of git's reach."""
        return self.lab_dir / "running" / check_run_id(run_id) / "attempts"

    def attempt_folders(self, run_id: str) -> list[Path]:
        """The run's attempt folders, ended ones (logs/) and this clone's running ones, in Test order: older
        labs' numbered folders first, then by start time. A half-made folder (no record) is not an attempt."""
        folders: dict[str, Path] = {}
        for parent in (self.running_dir(run_id), self.run_dir(run_id) / "attempts"):
            if parent.is_dir():
                folders.update({p.name: p for p in parent.iterdir()
                                if is_attempt_key(p.name) and (p / "attempt.json").is_file()})
        return [folders[name] for name in sorted(folders, key=attempt_order)]

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

    # -- runs ------------------------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if RUN_ID.fullmatch(p.name) and (p / "run.json").exists())

    def readable_run_ids(self) -> list[str]:
        """The runs whose records can be read; each unreadable one is named once on stderr and left out, so
        one damaged run does not stop a page command for the whole lab. Checked once per set of runs."""
        run_ids = tuple(self.run_ids())
        if self._readable is not None and self._readable[0] == run_ids:
            return list(self._readable[1])
        readable = []
        for run_id in run_ids:
            try:
                self.load_run(run_id)
                self.attempts(run_id)
                self.events(run_id)
            except RecordError as error:
                if run_id not in self.unreadable:
                    print(f"lab: warning: run {run_id} is unreadable: {error}", file=sys.stderr)
                self.unreadable[run_id] = str(error)
                continue
            readable.append(run_id)
        self._readable = (run_ids, readable)
        return list(readable)

    def exists(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / "run.json").is_file()

    def next_id(self, prefix: str, skip: set[str] = frozenset()) -> str:
        """The next free id for `prefix`, passing over the ids in `skip` (call under `lock()`)."""
        if not PREFIX.fullmatch(prefix) or len(prefix) > MAX_NAME_LENGTH - 4:
            raise LabError(f"invalid run prefix {prefix!r}: lowercase letters, digits and underscores, at most "
                           f"{MAX_NAME_LENGTH - 4} characters")
        numbers = [int(rid.rsplit("_", 1)[1]) for rid in self.run_ids() if rid.rsplit("_", 1)[0] == prefix]
        taken = ({p.name for p in self.runs_dir.iterdir()} if self.runs_dir.is_dir() else set()) | set(skip)
        number = max(numbers, default=0) + 1
        while f"{prefix}_{number:03d}" in taken:
            number += 1
        if number > 999:
            raise LabError(f"prefix {prefix!r} has used all 999 run numbers")
        return f"{prefix}_{number:03d}"

    def create_run(self, run_id: str | None, *, prefix: str | None = None,
                   reserve: Callable[[str], bool] | None = None, **fields: Any) -> dict:
        """Create a run folder with run.json and its config; `prefix` instead of an id takes the next free one.

        `reserve(id)` claims an id for this clone (through the git remote) and is False when another clone
        holds it: `--next` then passes over it, an explicit id is refused.
        """
        config = self.redact(fields.pop("config", None))
        fields = self.redact(fields)
        with self.lock():
            if run_id is None:
                refused: set[str] = set()
                while True:
                    run_id = self.next_id(prefix or "", refused)
                    if reserve is None or reserve(run_id):
                        break
                    refused.add(run_id)
            elif self.run_dir(run_id).exists():
                raise LabError(f"run {run_id} already exists ({self.run_dir(run_id)})")
            elif reserve is not None and not reserve(run_id):
                raise LabError(f"run id {run_id} is already taken by another clone (refs/lab/ids/{run_id} on the "
                               "remote): pull to see its run, and choose another id or use --next")
            folder = self.run_dir(run_id)
            created = now_iso()
            title = slugify(fields.get("title_text") or fields.get("hypothesis") or run_id)
            record = {
                **fields,
                "id": run_id,
                "slug": f"{self.day(created).strftime('%Y%m%d')}_{run_id}_{title}",
                "title": title,
                "created": created,
                "clone": self.clone_id,
            }
            folder.mkdir(parents=True)
            try:
                write_json(folder / "config.json", config or {})
                write_json(folder / "run.json", record)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        self.add_event(run_id, "created", hypothesis=record.get("hypothesis"))
        return record

    def load_run(self, run_id: str) -> dict:
        """run.json of `run_id`, or LabError when there is no such run."""
        path = self.run_dir(run_id) / "run.json"
        try:
            record = read_json(path)
        except RecordError:
            self.check_collision(run_id)
            raise
        if record is None:
            raise LabError(f"no run {run_id} in {self.runs_dir}")
        require_fields(path, record, RUN_FIELDS)
        try:
            datetime.fromisoformat(record["created"])
        except ValueError:
            raise RecordError(f"{path} has a created time that is not ISO 8601; fix it or restore it from "
                              "git") from None
        return record

    def conflicted_run(self, run_id: str) -> tuple[dict, dict] | None:
        """(ours, theirs): the two run.json a git merge left in conflict, when both sides are readable."""
        try:
            sides = conflict_sides((self.run_dir(run_id) / "run.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        if sides is None:
            return None
        try:
            ours, theirs = (json.loads(side) for side in sides)
        except json.JSONDecodeError:
            return None
        return (ours, theirs) if isinstance(ours, dict) and isinstance(theirs, dict) else None

    def check_collision(self, run_id: str) -> None:
        """RecordError (one line, naming `lab rename`) when a merge brought in another clone's run under the
        same id: two run.json in conflict that were created apart."""
        sides = self.conflicted_run(run_id)
        if sides is None or same_run(*sides):
            return
        ours, theirs = sides
        with self.lock():
            free = self.next_id(run_id.rsplit("_", 1)[0])
        found = git_dir(self.root)
        rebasing = found is not None and any((found / name).exists() for name in ("rebase-merge", "rebase-apply"))
        how = ("git rebase --abort, git pull --no-rebase, then " if rebasing else "")
        raise RecordError(
            f"run {run_id} was created on two clones ({ours.get('title')!r} and {theirs.get('title')!r}); keep both "
            f"by giving this clone's run a new id: {how}lab rename {run_id} {free}")

    def set_headline(self, run_id: str, number: int) -> None:
        """Make attempt `number` the one that speaks for the run on its pages."""
        key = self.attempt_dir(run_id, number).name
        self.load_attempt(run_id, number)
        path = self.run_dir(run_id) / "run.json"
        with self.lock():
            write_json(path, {**self.load_run(run_id), "headline": number, "headline_key": key})
        self.add_event(run_id, "headline", attempt=number)

    def headline(self, run_id: str) -> int | None:
        """The Test number the researcher picked to speak for the run (`lab note ID --headline N`), or None."""
        run = self.load_run(run_id)
        number = self.attempt_number(run_id, run["headline_key"]) if run.get("headline_key") else None
        picked = number or run.get("headline")
        return picked if isinstance(picked, int) and picked in self.attempt_numbers(run_id) else None

    def run_config(self, run_id: str) -> dict:
        return read_json(self.run_dir(run_id) / "config.json", {})

    # -- events and notes ------------------------------------------------------------------------------

    def add_event(self, run_id: str, kind: str, **data: Any) -> dict:
        """Append an event to the run, stamped with this clone's id; an `attempt` number is also recorded as
        its folder (`attempt_key`), which stays right when a merge brings in attempts that started earlier."""
        if isinstance(data.get("attempt"), int) and not data.get("attempt_key"):
            folder = self.attempt_dir(run_id, data["attempt"])
            data["attempt_key"] = folder.name if folder.exists() else None
        event = {"time": now_iso(), "kind": kind, "clone": self.clone_id,
                 **self.redact({k: v for k, v in data.items() if v is not None})}
        append_jsonl(self.run_dir(run_id) / "events.jsonl", event)
        return event

    def events(self, run_id: str) -> list[dict]:
        """The run's events in time order (lines merged from several clones interleave), each `attempt` the
        Test number its `attempt_key` has now; a line that is not a well-formed event is skipped."""
        events = [event for event in read_jsonl(self.run_dir(run_id) / "events.jsonl") if well_formed_event(event)]
        if any(event.get("attempt_key") for event in events):
            numbers = {folder.name: index for index, folder in enumerate(self.attempt_folders(run_id), 1)}
            for event in events:
                if event.get("attempt_key") in numbers:
                    event["attempt"] = numbers[event["attempt_key"]]
        return sorted(events, key=event_time)

    def add_journal(self, kind: str, text: str) -> dict:
        """A day-level note (`overview` or `insight`) not tied to a run."""
        event = {"time": now_iso(), "kind": kind, "text": self.detector.redact(text)}
        append_jsonl(self.logs_dir / "journal.jsonl", event)
        return event

    def journal(self) -> list[dict]:
        return [event for event in read_jsonl(self.logs_dir / "journal.jsonl") if well_formed_event(event)]

    # -- attempts --------------------------------------------------------------------------------------

    def attempt_numbers(self, run_id: str) -> list[int]:
        """The run's Test numbers, 1 to the number of attempts (see `attempt_folders` for their order)."""
        return list(range(1, len(self.attempt_folders(run_id)) + 1))

    def begin_attempt(self, run_id: str, *, command: list[str], pid: int, **fields: Any) -> Path:
        """Open a new attempt of `run_id` in this clone's running folder; returns that folder (status
        `running`). Its name, `<UTC start>-<clone>`, is one no other clone can make."""
        self.load_run(run_id)
        command, fields = self.redact(command), self.redact(fields)
        with self.lock(f"attempt_{run_id}"):
            running = self.running_dir(run_id)
            running.mkdir(parents=True, exist_ok=True)
            taken = {folder.name for folder in self.attempt_folders(run_id)}
            stem = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{self.clone_id[:8]}"
            key, copy = stem, 1
            while key in taken:  # a second launch in the same second
                copy += 1
                key = f"{stem}-{copy}"
            partial = running / f".{key}.{os.getpid()}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            record = {
                "run": run_id,
                "key": key,
                "number": len(taken) + 1,
                "command": command,
                "status": "running",
                "started": now_iso(),
                "clone": self.clone_id,
                "host": socket.gethostname(),
                "pid": pid,
                "artefacts": str(self.artefacts_root / run_id / key),
                **fields,
            }
            write_json(partial / "attempt.json", record)
            folder = running / key
            partial.rename(folder)  # the attempt appears whole, record included, or not at all
        self.add_event(run_id, "attempt_started", attempt=record["number"], attempt_key=key, note=fields.get("note"))
        return folder

    def update_attempt(self, attempt_dir: Path, merge: Callable[[dict], dict] | None = None, **fields: Any) -> dict:
        """Merge `fields` (and whatever `merge(record)` returns) into attempt.json, under the attempt's lock.

        The launcher, the trainer's tracker and `lab sync` all write this record; the lock keeps their updates.
        """
        path = Path(attempt_dir) / "attempt.json"
        with self.lock(f"attempt_{path.parent.parent.parent.name}_{path.parent.name}"):
            record = {**read_json(path, {}), **self.redact(fields)}
            if merge is not None:
                record.update(merge(record))
            write_json(path, record)
        return record

    def end_attempt(self, attempt_dir: Path, *, exit_code: int | None, status: str) -> dict:
        """Mark an attempt ended with `status` (finished, failed, killed, crashed), move it from the running
        folder into logs/ (where git carries it), and record the event.

        An attempt that has already ended is left as it is (two processes may notice a crash at once).
        """
        ended: list[bool] = []

        def close(record: dict) -> dict:
            if record.get("status") != "running":
                ended.append(True)
                return {}
            return {"status": status, "ended": now_iso(), "exit_code": exit_code}

        attempt_dir = Path(attempt_dir)
        record = self.update_attempt(attempt_dir, merge=close)
        self.settle_attempt(attempt_dir)
        if not ended:
            self.add_event(record["run"], f"attempt_{status}", attempt=self.attempt_number(record["run"],
                           attempt_dir.name), attempt_key=attempt_dir.name, exit_code=exit_code)
        return record

    def settle_attempt(self, attempt_dir: Path) -> Path:
        """Move an ended attempt from this clone's running folder to logs/runs/<id>/attempts/; returns where
        it now is."""
        attempt_dir = Path(attempt_dir)
        run_id = attempt_dir.parent.parent.name
        if attempt_dir.parent != self.running_dir(run_id) or not attempt_dir.is_dir():
            return attempt_dir
        target = self.run_dir(run_id) / "attempts" / attempt_dir.name
        with self.lock(f"attempt_{run_id}_{attempt_dir.name}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(attempt_dir, target)
        with contextlib.suppress(OSError):
            attempt_dir.parent.rmdir()
            attempt_dir.parent.parent.rmdir()
        return target

    def load_attempt(self, run_id: str, number: int) -> dict:
        """attempt.json of Test `number` (its `number` and `key` as they are now), with this clone's attempt
        whose process has vanished turned into `crashed`. Another clone's attempt is never changed."""
        folder = self.attempt_dir(run_id, number)
        record = read_json(folder / "attempt.json")
        if record is None:
            raise LabError(f"run {run_id} has no attempt {number}")
        require_fields(folder / "attempt.json", record, ATTEMPT_FIELDS)
        if record.get("status") == "running" and self.mine(record) and not process_alive(record.get("pid")):
            record = self.end_attempt(folder, exit_code=None, status="crashed")
        return {**record, "number": number, "key": folder.name}

    def attempts(self, run_id: str) -> list[dict]:
        return [self.load_attempt(run_id, number) for number in self.attempt_numbers(run_id)]

    def latest_checkpoint(self, run_id: str, kind: str) -> str:
        """The path of the newest `kind` checkpoint ('best' or 'last') among the run's attempts that still exists."""
        for record in reversed(self.attempts(run_id)):
            path = record.get("checkpoints", {}).get(kind, {}).get("path")
            if not path or not Path(path).exists():
                continue
            if not intact_checkpoint(Path(path)):
                print(f"lab: warning: {path} is damaged (truncated or overwritten); trying an earlier attempt's",
                      file=sys.stderr)
                continue
            return path
        raise LabError(f"run {run_id} has no intact {kind} checkpoint on this machine")

    def run_status(self, run_id: str) -> str:
        """`created` before any attempt, `running` while any attempt runs, else the latest attempt's status."""
        statuses = [attempt["status"] for attempt in self.attempts(run_id)]
        return "running" if "running" in statuses else statuses[-1] if statuses else "created"

    def archive_run(self, run_id: str) -> Path:
        """Move a run's records to logs/archive/<id>-<time>/ (out of every list and page) and delete its
        artefacts; returns the archive folder."""
        with self.lock():
            self.load_run(run_id)
            target = self.logs_dir / "archive" / f"{run_id}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.run_dir(run_id), target)
        shutil.rmtree(self.artefacts_root / run_id, ignore_errors=True)
        return target

    # -- baselines -------------------------------------------------------------------------------------

    def baseline_path(self, name: str) -> Path:
        if not BASELINE_NAME.match(name or "") or len(name) > MAX_NAME_LENGTH:
            raise LabError(f"invalid baseline name {name!r}: letters, digits, '_', '-' and '.', starting with a "
                           f"letter or digit, at most {MAX_NAME_LENGTH} characters")
        return self.logs_dir / "baselines" / f"{name}.json"

    def baseline(self, name: str) -> dict | None:
        """The snapshot `{"name", "provenance", "config"}` of a baseline, or None."""
        return read_json(self.baseline_path(name))

    def write_baseline(self, snapshot: dict) -> None:
        write_json(self.baseline_path(snapshot["name"]), snapshot)

    def save_baseline(self, name: str, provenance: dict, config: dict) -> dict:
        """Snapshot a baseline the first time a run uses it; later runs diff against the same snapshot."""
        existing = self.baseline(name)
        if existing is not None:
            return existing
        snapshot = {"name": name, "provenance": provenance, "config": config}
        self.write_baseline(snapshot)
        return snapshot


def latest_attempt_with_metrics(store: Store, run_id: str) -> int | None:
    numbers = [n for n in store.attempt_numbers(run_id) if (store.attempt_dir(run_id, n) / "metrics.jsonl").exists()]
    return numbers[-1] if numbers else None


SECTIONS = ("wandb", "prefixes", "launch", "capture", "remote", "commit", "secrets")  # lab.json keys holding objects
TEXTS = ("logs", "artefacts", "timezone")  # ... holding text
NUMBERS = {("launch", "kill_grace_seconds"): 0, ("launch", "output_head_mb"): 0, ("launch", "output_tail_mb"): 0,
           ("remote", "timeout_s"): 0, (None, "device_memory_gb"): 0}  # numbers and their least value (exclusive
# for the device size and the remote's timeout)


def check_settings(settings: dict) -> dict:
    """`settings` (lab.json) when every key the lab reads has the right kind of value; LabError naming the first
    that does not (a section that is not an object, a path that is not text, a number that is not one)."""
    for key in SECTIONS:
        if key in settings and not isinstance(settings[key], dict):
            raise LabError(f'lab.json "{key}" must be an object ({{...}}), not {json_kind(settings[key])}')
    for key in TEXTS:
        if key in settings and not isinstance(settings[key], str):
            raise LabError(f'lab.json "{key}" must be text, not {json_kind(settings[key])}')
    for (section, key), least in NUMBERS.items():
        holder = settings.get(section, {}) if section else settings
        if key not in holder:
            continue
        value = holder[key]
        strict = key in ("device_memory_gb", "timeout_s")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > least if strict else
                                                                                   value >= least):
            name = f"{section}.{key}" if section else key
            raise LabError(f'lab.json "{name}" must be a number {">" if strict else ">="} {least}, not {value!r}')
    return settings


def json_kind(value: object) -> str:
    """The JSON word for a value's kind: 'a list', 'text', 'a number' ..."""
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)

