"""Git capture: commit the working tree for a launch, refuse secrets and large files, list a day's commits.

A launch commits without touching the user's index until the commit exists: everything is staged into a
temporary copy of the index, checked, written as a tree and committed with `commit-tree`/`update-ref`; only
then does the copy replace the index (under git's own index.lock). A refused or failed capture leaves the
index byte for byte as it was (partial staging, intent-to-add, assume-unchanged and skip-worktree flags
included), and two launches at once take turns through a lock in the git folder. The user's policy holds for
the lab's commits too: the pre-commit and commit-msg hooks run (against the staged copy) as for `git commit`, and
a refusal refuses the launch in one line; commit.gpgSign signs them (a signer that fails refuses the launch).

Every launch's commit is kept reachable under `refs/lab/commits/<sha>` (shared by lab.launcher.remote's
refspecs), so a rebase cannot orphan the sha an attempt recorded; an attempt's records are committed when it
ends (`commit_records`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from lab.errors import LabError, say, warn
from lab.records.files import atomic_write
from lab.records.secrets import SecretDetector

if TYPE_CHECKING:
    from git import Repo

SCAN_CHUNK_BYTES = 1024 * 1024
SCAN_OVERLAP_BYTES = 4096  # kept from the previous chunk, so a key across a chunk boundary is still found
MB = 1_000_000
NO_COMMIT = "0" * 40
# under the lab's records folder
RECORD_FILES = ("metrics.jsonl", "events.jsonl", "stdout.log", "media.jsonl", "samples.jsonl")
NUMBERS_ONLY = ("metrics.jsonl",)  # the tracker writes numbers only: nothing there to scan
SPARSE_REFUSAL = "outside of your sparse-checkout definition"  # git's words for paths it will not stage
BINARY_PROBE_BYTES = 8000  # as git: a NUL byte in the first 8000 bytes makes a file binary (not scanned)


@dataclass
class CapturePolicy:
    """What a launch may commit: no secret (by name or content), no file over `max_file_mb`, and no commit adding
    more than `max_commit_mb` in all; the lab's own metric and output streams count towards neither limit.

    Set in lab.json: {"commit": {"max_file_mb": 10, "max_commit_mb": 50}, "secrets": {...}}.
    """

    detector: SecretDetector
    max_file_mb: float = 10.0
    max_commit_mb: float = 50.0

    @classmethod
    def from_settings(cls, settings: dict) -> CapturePolicy:
        section = settings.get("commit") or {}
        limits = {key: section.get(key, default) for key, default in (("max_file_mb", 10.0), ("max_commit_mb", 50.0))}
        if not isinstance(section, dict) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 for value in limits.values()
        ):
            raise LabError('lab.json "commit" takes {"max_file_mb": 10, "max_commit_mb": 50} (positive numbers)')
        return cls(SecretDetector.from_settings(settings), **limits)


def _open_repo(root: Path) -> Repo | None:
    """The git repository containing `root`, or None outside git."""
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def _git(repo: Repo, command: str, *args: str) -> str:
    """Run `git COMMAND ARGS...` in `repo`; a failure becomes a one-line LabError."""
    import git

    try:
        return getattr(repo.git, command.replace("-", "_"))(*args)
    except git.GitCommandError as error:
        stderr = (error.stderr or "").strip().removeprefix("stderr:").strip().strip("'")
        raise LabError(f"git {command} failed: {failure_reason(stderr) or f'exit status {error.status}'}") from None


def failure_reason(stderr: str) -> str | None:
    """The cause of a git failure as one line, from git's stderr: its first `error:` or `fatal:` line, else its first
    line that is not a `hint:`. Paths outside a sparse checkout (git names them and only hints) become "logs/ is
    outside the sparse checkout ...: add it with `git sparse-checkout add logs`"; None when stderr is empty."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(SPARSE_REFUSAL in line for line in lines):
        return sparse_reason(lines)
    reasons = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (reasons or [line for line in lines if not line.startswith("hint:")] or [None])[0]


def sparse_reason(lines: list[str]) -> str:
    """What to do about paths git refused because they are outside the sparse checkout: `lines` is git's stderr,
    the paths (relative to the repository's top) listed between "...updated in the index:" and its hints."""
    start = next((index + 1 for index, line in enumerate(lines) if line.endswith("index:")), len(lines))
    paths = [line for line in lines[start:] if not line.startswith(("hint:", "error:", "fatal:"))]
    folders = sorted({path.split("/")[0] for path in paths}) or ["logs"]
    named = " and ".join(f"{folder}/" for folder in folders)
    verb, it = ("is", "it") if len(folders) == 1 else ("are", "them")
    return (f"{named} {verb} outside the sparse checkout, so git cannot commit {it} (a launch commits the lab's "
            f"records and code): add {it} with `git sparse-checkout add {' '.join(folders)}`")


def _changed_paths(repo: Repo, *diff_args: str) -> list[str]:
    """The paths `git diff --name-only DIFF_ARGS` lists, exactly as stored (no quoting of odd names)."""
    return [name for name in _git(repo, "diff", "--name-only", "--no-renames", "-z", *diff_args).split("\0") if name]


def quoted(name: str) -> str:
    """A path as one safe line: as it is when plain, else JSON-quoted (a newline cannot fake a record line)."""
    return name if name.isprintable() and name.strip() == name and '"' not in name else json.dumps(name)


def unfinished_operation(repo: Repo) -> str | None:
    """What keeps a launch from committing: a detached HEAD, or a merge, rebase, cherry-pick or revert still
    in progress (or paths left unmerged); None when HEAD is a branch in a settled state."""
    git_dir = Path(repo.git_dir)
    for marker, what in (("MERGE_HEAD", "a merge"), ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase"),
                         ("CHERRY_PICK_HEAD", "a cherry-pick"), ("REVERT_HEAD", "a revert")):
        if (git_dir / marker).exists():
            return f"{what} is in progress: finish it (resolve, git add, git commit) or abort it first"
    if _git(repo, "ls-files", "--unmerged"):
        return "some paths are unmerged: resolve them and git add them first"
    if repo.head.is_detached:
        return ("HEAD is detached, so the launch commit would belong to no branch: check out a branch first "
                "(git switch -c NAME)")
    return None


def keep_reachable(repo: Repo, sha: str) -> None:
    """Keep a launch commit reachable under refs/lab/commits/<sha>, which `git push` carries (lab init's
    refspecs), so `git checkout <recorded sha>` works after a rebase, on any clone."""
    _git(repo, "update-ref", f"refs/lab/commits/{sha}", sha)


def branch_name(repo: Repo) -> str:
    return "detached" if repo.head.is_detached else repo.active_branch.name


def heads(root: Path) -> list[list[str]]:
    """[[branch, sha], ...] of the local branches of the repository at `root`, sorted; [] outside git (what the
    daily pages' commit lists are read from, as a version)."""
    repo = _open_repo(root)
    if repo is None:
        return []
    return sorted([head.name, head.object.hexsha] for head in repo.heads)


def head_sha(repo: Repo) -> str | None:
    return repo.head.commit.hexsha if repo.head.is_valid() else None


def file_secret(path: Path, detector: SecretDetector) -> str | None:
    """The rule that finds a secret anywhere in a text file (read in overlapping chunks), or None.

    A binary file (a NUL byte in its first 8000 bytes, git's own test) is not read further.
    """
    with open(path, "rb") as stream:
        if b"\0" in stream.read(BINARY_PROBE_BYTES):
            return None
        stream.seek(0)
        tail = ""
        while chunk := stream.read(SCAN_CHUNK_BYTES):
            window = tail + chunk.decode("latin-1")
            found = detector.find(window)
            if found:
                return found[0].rule
            tail = window[-SCAN_OVERLAP_BYTES:]
    return None


def redact_file(path: Path, detector: SecretDetector) -> bool:
    """Rewrite a text record with its secrets redacted (the fast path of `redact_lines`); True when anything
    changed."""
    data = path.read_bytes()
    cleaned = detector.redact_lines(data)
    if cleaned == data:
        return False
    atomic_write(path, lambda stream: stream.write(cleaned))
    return True


@contextlib.contextmanager
def capture_lock(repo: Repo) -> Iterator[None]:
    """One lab capture at a time in this repository, across processes."""
    with open(Path(repo.git_dir) / "lab-capture.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_index(repo: Repo, staged_index: Path) -> None:
    """Make `staged_index` the repository's index the way git does: write index.lock, then rename it."""
    git_dir = Path(repo.git_dir)
    lock = git_dir / "index.lock"
    try:
        handle = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise LabError(f"the commit was made, but {lock} exists (another git command is running), so the index "
                       "still shows the old state: run `git reset` once it has finished") from None
    try:
        with os.fdopen(handle, "wb") as stream, open(staged_index, "rb") as source:
            shutil.copyfileobj(source, stream)
        os.replace(lock, git_dir / "index")
    except BaseException:
        lock.unlink(missing_ok=True)
        raise


def check_staged(repo: Repo, names: list[str], policy: CapturePolicy, records: Path | None) -> tuple[list[str], bool]:
    """(why staged files must not be committed, whether a record was redacted): names and sizes first (cheap),
    then, when those pass, contents.

    Lab records that hold a secret are redacted in place instead of refused (and must be staged again).
    """
    top = Path(repo.working_tree_dir).resolve()
    offending, sizes, streams = [], {}, set()
    for name in names:
        path = top / name
        if policy.detector.secret_file_name(name):
            offending.append(f"{quoted(name)} (secret file name)")
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):  # a symlink is committed as a link; a submodule is not a file
            continue
        sizes[name] = info.st_size
        if records is not None and path.is_relative_to(records) and path.name in RECORD_FILES:
            streams.add(name)
        elif info.st_size > policy.max_file_mb * MB:
            offending.append(f"{quoted(name)} ({info.st_size / MB:.1f} MB > {policy.max_file_mb:g} MB)")
    total = sum(size for name, size in sizes.items() if name not in streams)  # the lab's own never block a launch
    if total > policy.max_commit_mb * MB:
        biggest = sorted(set(sizes) - streams, key=sizes.get, reverse=True)[:5]
        offending.append(f"the commit would add {total / MB:.1f} MB > {policy.max_commit_mb:g} MB; biggest: "
                         + ", ".join(f"{quoted(name)} ({sizes[name] / MB:.1f} MB)" for name in biggest))
    if offending:
        return offending, False
    redacted = False
    for name in sizes:
        path = top / name
        in_records = records is not None and path.is_relative_to(records)
        if in_records and path.name in NUMBERS_ONLY:
            continue
        if in_records:
            redacted = redact_file(path, policy.detector) or redacted
            continue
        rule = file_secret(path, policy.detector)
        if rule:
            offending.append(f"{quoted(name)} (contains what looks like a secret: {rule})")
    return offending, redacted


def run_hook(repo: Repo, name: str, *args: str) -> bool:
    """Run the repository's own git hook `name` (core.hooksPath honoured; none is fine) as `git commit` would;
    a hook that refuses makes a one-line LabError with the last line it printed. Returns whether the hook is
    there (an executable file in git's hooks folder), which is what may have changed files."""
    import git

    hook = Path(repo.working_tree_dir) / _git(repo, "rev-parse", "--git-path", f"hooks/{name}")
    if not os.access(hook, os.X_OK):
        return False
    try:
        repo.git.hook("run", "--ignore-missing", name, "--", *args)
    except git.GitCommandError as error:
        lines = f"{error.stdout or ''}\n{error.stderr or ''}".splitlines()  # GitPython quotes them: stderr: '...'
        said = [text for line in lines
                if (text := line.strip().removeprefix("stdout:").removeprefix("stderr:").strip().strip("'").strip())]
        raise LabError(f"refusing to commit: the {name} hook refused (exit {error.status})"
                       + (f": {said[-1][:200]}" if said else "") + ". Fix what it says, or launch with --no-commit"
                       ) from None
    return True


def checked_message(repo: Repo, message: str) -> str:
    """The commit message after the repository's commit-msg hook (which may refuse it, or edit it)."""
    path = Path(repo.git_dir) / f"LAB_COMMIT_MSG-{os.getpid()}"
    path.write_text(message + "\n", encoding="utf-8")
    try:
        run_hook(repo, "commit-msg", str(path))
        return path.read_text(encoding="utf-8").strip() or message
    finally:
        path.unlink(missing_ok=True)


def wants_signing(repo: Repo) -> bool:
    """Whether the repository asks for signed commits (commit.gpgSign), which `commit-tree` does not read itself."""
    import git

    try:
        return repo.git.config("--type=bool", "--get", "commit.gpgsign") == "true"
    except git.GitCommandError:  # not set
        return False


def lab_scope(repo: Repo, root: Path) -> str | None:
    """The lab's folder relative to the repository's top ('speech' for a lab in speech/), None for a lab at the
    top: a launch commit and the daily page's commit list then hold that folder alone."""
    inside = Path(root).resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    return None if inside == "." else inside


def finish_index(repo: Repo, staging: Path, scope: str | None, add: list[str]) -> None:
    """After a launch commit: the staged copy becomes the user's index (a lab at the top), or, for a lab in
    folder `scope`, the user's index takes the folder as committed (what is staged elsewhere kept) and one
    warning names the modified tracked files outside it that the commit leaves out (a run importing them ran
    code the recorded sha does not hold)."""
    if not scope:
        install_index(repo, staging)
        return
    _git(repo, *add)
    outside = [name for name in _git(repo, "diff", "--name-only", "-z", "HEAD", "--", ".", f":(exclude){scope}")
               .split("\0") if name]
    if outside:
        named = ", ".join(outside[:3]) + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
        warn(f"the launch commit holds {scope}/ alone: {len(outside)} modified tracked file"
             f"{'s' if len(outside) > 1 else ''} outside it ({named}) {'are' if len(outside) > 1 else 'is'} not in "
             "it; if the run imports them, commit them first so the recorded sha is what ran")


def commit_working_tree(root: Path, message: str, *, policy: CapturePolicy | None = None,
                        records_dir: Path | None = None) -> dict:
    """Commit everything git does not ignore with `message`, without disturbing the user's index on failure.

    Returns {"sha", "branch", "committed", "files"}. Refuses (LabError, one line naming every offending
    file) a secret-looking file name or content, a file over the size limit, or a commit over the total
    limit. Lab records under `records_dir` that hold a secret are redacted in place instead of refused.
    """
    repo = _open_repo(root)
    if repo is None:
        raise LabError(f"{root} is not inside a git repository: run `git init`, or launch with --no-commit")
    problem = unfinished_operation(repo) if repo.head.is_valid() else None
    if problem:
        raise LabError(f"refusing to launch: {problem}")
    policy = policy or CapturePolicy(SecretDetector())
    records = Path(records_dir).resolve() if records_dir is not None else None
    git_dir = Path(repo.git_dir)
    with capture_lock(repo):
        if (git_dir / "index.lock").exists():
            raise LabError(f"another git command is running ({git_dir / 'index.lock'} exists); try again when it "
                           "has finished, or remove the file if no git process is left")
        staging = git_dir / f"lab-index-{os.getpid()}"
        scope = lab_scope(repo, root)
        if (git_dir / "index").exists() and not scope:
            shutil.copyfile(git_dir / "index", staging)
        add = ["add", "-A", "--", scope] if scope else ["add", "-A"]
        try:
            with repo.git.custom_environment(GIT_INDEX_FILE=str(staging)):
                if scope and repo.head.is_valid():
                    _git(repo, "read-tree", "HEAD")  # the lab's folder alone changes: nothing else is committed
                _git(repo, *add)
                parent = head_sha(repo)
                staged = (_changed_paths(repo, "--cached") if parent
                          else [name for name in _git(repo, "ls-files", "-z").split("\0") if name])
                offending, redacted = check_staged(repo, staged, policy, records)
                if offending:
                    raise LabError("refusing to commit: " + "; ".join(offending)
                                   + ". Add them to .gitignore, or launch with --no-commit")
                if not staged:
                    if parent:
                        keep_reachable(repo, parent)
                    return {"sha": parent, "branch": branch_name(repo), "committed": False, "files": 0}
                if redacted:
                    _git(repo, *add)  # again: redacted records changed on disk
                if run_hook(repo, "pre-commit"):
                    _git(repo, *add)  # and again: a pre-commit hook may have fixed files
                message = checked_message(repo, message)
                tree = _git(repo, "write-tree")
                signing = ["-S"] if wants_signing(repo) else []
                sha = _git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), *signing, "-m", message)
                _git(repo, "update-ref", "-m", f"lab launch: {message}", "HEAD", sha, parent or NO_COMMIT)
                keep_reachable(repo, sha)
            finish_index(repo, staging, scope, add)
        finally:
            staging.unlink(missing_ok=True)
    return {"sha": sha, "branch": branch_name(repo), "committed": True, "files": len(staged),
            **submodule_state(repo, policy.detector)}


def redacted_diff(repo: Repo, detector: SecretDetector) -> str:
    """The diff against HEAD, safe to record: secrets redacted, secret-named files left out (and named)."""
    changed = _changed_paths(repo, "HEAD")
    left_out = [name for name in changed if detector.secret_file_name(name)]
    excluded = [f":(exclude,literal){name}" for name in left_out]
    diff = _git(repo, "diff", "HEAD", "--no-renames", "--", ".", *excluded) if len(left_out) < len(changed) else ""
    notes = "".join(f"\n# left out: {quoted(name)} (secret file name)" for name in left_out)
    return detector.redact(diff) + notes


def dirty_state(root: Path, detector: SecretDetector | None = None) -> tuple[dict | None, str]:
    """For --no-commit: ({"sha", "branch", "committed": False} or None outside git, the redacted diff)."""
    repo = _open_repo(root)
    if repo is None:
        return None, ""
    detector = detector or SecretDetector()
    sha = head_sha(repo)
    diff = redacted_diff(repo, detector) if sha else ""
    untracked = repo.untracked_files
    if untracked:
        diff += "".join(f"\n# untracked: {quoted(name)}" for name in untracked) + "\n"
    return {"sha": sha, "branch": branch_name(repo), "committed": False, "files": 0,
            **submodule_state(repo, detector)}, diff


RECORDS_COMMIT = "lab records: "  # how the commits of an ended attempt's records begin (left off the pages)


SUBMODULE_DIFF_BYTES = 200_000  # of a dirty submodule's diff kept on the attempt


def submodule_state(repo: Repo, detector: SecretDetector) -> dict:
    """{"submodules": [{"path", "sha", "dirty": [changed files], "diff": redacted diff}]} for the initialised
    submodules (recursively), or {} without any. A launch commit pins each submodule's checked-out commit but not
    its uncommitted edits, so those are recorded here and named in a warning on stderr."""
    import git

    if not (Path(repo.working_tree_dir) / ".gitmodules").is_file():
        return {}
    found = []
    for line in _git(repo, "submodule", "status", "--recursive").splitlines():
        if not line or line[0] == "-":  # not initialised: nothing of it ran
            continue
        sha, path = line[1:].split()[:2]
        module = git.Repo(Path(repo.working_tree_dir) / path)
        dirty = [entry[3:] for entry in module.git.status("--porcelain").splitlines() if entry]
        entry = {"path": path, "sha": sha, "dirty": dirty}
        if dirty:
            entry["diff"] = detector.redact(module.git.diff("HEAD"))[:SUBMODULE_DIFF_BYTES]
            warn(f"submodule {quoted(path)} has uncommitted changes ({len(dirty)} file"
                 f"{'s' if len(dirty) > 1 else ''}) that its pinned commit {sha[:7]} does not hold; the attempt "
                 "records them (git.submodules)")
        found.append(entry)
    return {"submodules": found} if found else {}


def commits_on(root: Path, day: date, zone: tzinfo | None = None) -> list[dict]:
    """The commits made on `day` in `zone` (default: the local zone; a lab passes `Store.zone`, the zone of its
    pages) on any local branch but the lab's pages (`lab-pages`) that change the lab's folder (`lab_scope`; any
    commit for a lab at the top), oldest first, without the lab's own records commits; `files` counts the files
    changed in that folder.

    Each is {"time": "HH:MM", "sha": full sha, "branch", "message" (first line), "files"}.
    """
    repo = _open_repo(root)
    if repo is None or not repo.head.is_valid():
        return []
    start = datetime.combine(day, time.min, tzinfo=zone) if zone else datetime.combine(day, time.min).astimezone()
    end = start + timedelta(days=1)
    heads = sorted((head for head in repo.heads if head.name != "lab-pages"),  # lab site --branch's
                   key=lambda head: (head.name != branch_name(repo), head.name))
    scope = lab_scope(repo, root)
    found: dict[str, dict] = {}  # newest first, in git's order, so reversing it breaks same-second ties
    for head in heads:
        for commit in repo.iter_commits(head, scope or "", since=start.isoformat(), until=end.isoformat()):
            when = commit.committed_datetime.astimezone(zone)
            if commit.hexsha in found or not start <= when < end or RECORDS_COMMIT in commit.message.partition("\n")[0]:
                continue
            found[commit.hexsha] = {
                "time": when.strftime("%H:%M"),
                "timestamp": when.isoformat(),
                "sha": commit.hexsha,
                "branch": head.name,
                "message": commit.message.strip().splitlines()[0] if commit.message.strip() else "",
                "files": len(commit_files(root, commit.hexsha)) if scope else changed_files(repo, commit),
            }
    return sorted(reversed(found.values()), key=lambda entry: entry["timestamp"])


def changed_files(repo: Repo, commit) -> int:
    """How many files `commit` changed (against its first parent). At a shallow clone's boundary, whose parents
    are not there, git's own view (the commit as a root) counts them."""
    import git

    try:
        return commit.stats.total["files"]
    except (git.GitCommandError, ValueError):
        return len([name for name in _git(repo, "diff-tree", "--no-commit-id", "--root", "-r", "--name-only", "-z",
                                          commit.hexsha).split("\0") if name])


def commit_files(root: Path, sha: str) -> list[tuple[str, str]]:
    """(status letter, path relative to `root`) of each file under `root` that commit `sha` changed against its
    first parent (A added, M modified, D deleted; a root commit, or one at a shallow clone's boundary, adds every
    file); [] outside git or for a commit the repository does not have."""
    repo = _open_repo(root)
    if repo is None:
        return []
    inside = Path(root).resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    relative = [f"--relative={inside}/"] if inside != "." else []
    try:
        text = _git(repo, "diff-tree", "--no-commit-id", "--root", "-r", "--name-status", "--no-renames", "-z",
                    *relative, sha)
    except LabError:
        return []
    fields = [field for field in text.split("\0") if field]  # status, path, status, path, ...
    return list(zip(fields[0::2], fields[1::2]))


def commit_records(root: Path, paths: list[Path], message: str) -> str | None:
    """Commit the lab records under `paths` (and nothing else: the tree is HEAD's with those paths as they are
    on disk) on the current branch, and update the index for them; returns the new sha, or None when there
    is nothing to commit. LabError (one line) when HEAD is detached or a merge is in progress, or the
    commit-msg hook refuses. The message goes through that hook and the commit is signed as the repository asks
    (commit.gpgSign); the pre-commit hook, which checks the user's files, is not run for the lab's records."""
    repo = _open_repo(root)
    if repo is None or not repo.head.is_valid():
        return None
    problem = unfinished_operation(repo)
    if problem:
        raise LabError(problem)
    top = Path(repo.working_tree_dir).resolve()
    names = [str(Path(path).resolve().relative_to(top)) for path in paths]
    git_dir = Path(repo.git_dir)
    with capture_lock(repo):
        staging = git_dir / f"lab-index-{os.getpid()}"
        try:
            with repo.git.custom_environment(GIT_INDEX_FILE=str(staging)):
                parent = head_sha(repo)
                start_from_head(repo, staging)
                _git(repo, "add", "-A", "--", *names)
                tree = _git(repo, "write-tree")
                if tree == repo.head.commit.tree.hexsha:
                    return None
                message = checked_message(repo, message)
                signing = ["-S"] if wants_signing(repo) else []
                sha = _git(repo, "commit-tree", tree, "-p", parent, *signing, "-m", message)
                _git(repo, "update-ref", "-m", f"lab records: {message}", "HEAD", sha, parent)
        finally:
            staging.unlink(missing_ok=True)
        if (git_dir / "index.lock").exists():
            raise LabError(f"the records were committed ({sha[:7]}), but another git command holds the index: "
                           f"run `git reset -- {' '.join(names)}` once it has finished")
        _git(repo, "add", "-A", "--", *names)
    return sha


def start_from_head(repo: Repo, staging: Path) -> None:
    """Make `staging` (the index file git is pointed at) hold HEAD's tree. The user's index usually does already
    (a launch installs the index of its commit), and a copy of it keeps git's stat cache, so `add` need not
    read every file again; only when it differs from HEAD (something staged meanwhile) is HEAD's tree read in
    afresh, which costs about 0.1 s per 7,000 tracked files."""
    index = Path(repo.git_dir) / "index"
    if index.is_file():
        shutil.copyfile(index, staging)
        with contextlib.suppress(LabError):
            if _git(repo, "write-tree") == repo.head.commit.tree.hexsha:
                return
    _git(repo, "read-tree", head_sha(repo))


def commit_records_or_say(root: Path, paths: list[Path], what: str, kept: str) -> None:
    """`commit_records` of `paths` with the message RECORDS_COMMIT + `what`; when git cannot commit now (mid-merge,
    detached HEAD, a refusing hook) the records stay on disk for the next commit and one stderr line says so:
    "lab: <kept> but not committed: <why>"."""
    try:
        commit_records(root, paths, f"{RECORDS_COMMIT}{what}")
    except LabError as error:
        say(f"{kept} but not committed: {error}")


def stage(root: Path, paths: list[Path]) -> None:
    """`git add -A` these paths (marking a resolved conflict resolved); nothing outside git."""
    repo = _open_repo(root)
    if repo is not None:
        top = Path(repo.working_tree_dir).resolve()
        _git(repo, "add", "-A", "--", *(str(Path(path).resolve().relative_to(top)) for path in paths))
