"""Git capture: commit the working tree for a launch, refuse secrets and large files, list a day's commits."""

from __future__ import annotations

import fnmatch
import re
import stat
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lab.store import LabError

if TYPE_CHECKING:
    from git import Repo

MAX_FILE_BYTES = 10 * 1024 * 1024
SCAN_CHUNK_BYTES = 1024 * 1024
SCAN_OVERLAP_BYTES = 4096  # kept from the previous chunk, so a key across a chunk boundary is still found
SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*", ".netrc",
                "credentials.json", "*.keystore")
SECRET_PATTERN = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|AKIA[0-9A-Z]{16}"
    r"|ghp_[A-Za-z0-9]{36}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|sk-[A-Za-z0-9_-]{20,}"
    r"|(?i:(?:api[_-]?key|secret|token|password)['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{20,})"
)
SECRET_CONTENT = re.compile(SECRET_PATTERN.encode())
SECRET_TEXT = re.compile(SECRET_PATTERN)
REDACTED = "[redacted]"


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
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        reasons = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-1:]
        raise LabError(f"git {command} failed: {reasons[0] if reasons else f'exit status {error.status}'}") from None


def _changed_paths(repo: Repo, *diff_args: str) -> list[str]:
    """The paths `git diff --name-only DIFF_ARGS` lists, exactly as stored (no quoting of odd names)."""
    return [name for name in _git(repo, "diff", "--name-only", "--no-renames", "-z", *diff_args).split("\0") if name]


def branch_name(repo: Repo) -> str:
    return "detached" if repo.head.is_detached else repo.active_branch.name


def head_sha(repo: Repo) -> str | None:
    return repo.head.commit.hexsha if repo.head.is_valid() else None


def secret_name(path: str | Path) -> bool:
    """Whether the file name looks like a secret (.env, a private key, credentials)."""
    name = Path(path).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_NAMES)


def contains_secret(path: Path) -> bool:
    """Whether anywhere in the file there is what looks like an API key or a private key."""
    with open(path, "rb") as stream:
        tail = b""
        while chunk := stream.read(SCAN_CHUNK_BYTES):
            window = tail + chunk
            if SECRET_CONTENT.search(window):
                return True
            tail = window[-SCAN_OVERLAP_BYTES:]
    return False


def unsafe_reason(path: Path, *, size_capped: bool = True) -> str | None:
    """Why `path` must not be committed (secret-looking name or content, or over 10 MB), or None.

    Only regular files are read: a symlink is committed as a link, and a submodule or folder is not a file.
    `size_capped=False` skips the size limit (the lab's own records), never the secret scan.
    """
    if secret_name(path):
        return "secret file name"
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if size_capped and info.st_size > MAX_FILE_BYTES:
        return f"{info.st_size / 1e6:.1f} MB > 10 MB"
    if contains_secret(path):
        return "contains what looks like an API key"
    return None


def commit_working_tree(root: Path, message: str, *, records_dir: Path | None = None) -> dict:
    """Stage everything git does not ignore and commit it with `message`.

    Returns {"sha", "branch", "committed", "files"}. Refuses (LabError) when a staged file looks like a
    secret or is over 10 MB, naming every offending file; files under `records_dir` (the lab's logs) may
    be larger. Unless it commits, the index is put back exactly as it was, partial staging included.
    """
    repo = _open_repo(root)
    if repo is None:
        raise LabError(f"{root} is not inside a git repository: run `git init`, or launch with --no-commit")
    top = Path(repo.working_tree_dir).resolve()
    records = Path(records_dir).resolve() if records_dir is not None else None
    saved_index = _git(repo, "write-tree")
    _git(repo, "add", "-A")  # when this fails, git leaves the index as it was
    committed = False
    try:
        staged = _changed_paths(repo, "--cached")
        offending = []
        for name in staged:
            path = top / name
            reason = unsafe_reason(path, size_capped=records is None or not path.is_relative_to(records))
            if reason:
                offending.append(f"{name} ({reason})")
        if offending:
            raise LabError(
                "refusing to commit: " + "; ".join(offending) + ". Add them to .gitignore, or launch with --no-commit"
            )
        if not staged:
            return {"sha": head_sha(repo), "branch": branch_name(repo), "committed": False, "files": 0}
        _git(repo, "commit", "--quiet", "--no-verify", "-m", message)
        committed = True
    finally:
        if not committed:
            _git(repo, "read-tree", saved_index)
    return {"sha": head_sha(repo), "branch": branch_name(repo), "committed": True, "files": len(staged)}


def redacted_diff(repo: Repo) -> str:
    """The diff against HEAD, safe to record: key-like text redacted, secret-named files left out (and named)."""
    changed = _changed_paths(repo, "HEAD")
    left_out = [name for name in changed if secret_name(name)]
    excluded = [f":(exclude,literal){name}" for name in left_out]
    diff = _git(repo, "diff", "HEAD", "--no-renames", "--", ".", *excluded) if len(left_out) < len(changed) else ""
    notes = "".join(f"\n# left out: {name} (secret file name)" for name in left_out)
    return SECRET_TEXT.sub(REDACTED, diff) + notes


def dirty_state(root: Path) -> tuple[dict | None, str]:
    """For --no-commit: ({"sha", "branch", "committed": False} or None outside git, the redacted diff)."""
    repo = _open_repo(root)
    if repo is None:
        return None, ""
    sha = head_sha(repo)
    diff = redacted_diff(repo) if sha else ""
    untracked = repo.untracked_files
    if untracked:
        diff += "".join(f"\n# untracked: {name}" for name in untracked) + "\n"
    return {"sha": sha, "branch": branch_name(repo), "committed": False, "files": 0}, diff


def commits_on(root: Path, day: date) -> list[dict]:
    """The commits made on `day` (local time) on any local branch, oldest first.

    Each is {"time": "HH:MM", "sha": full sha, "branch", "message" (first line), "files"}.
    """
    repo = _open_repo(root)
    if repo is None or not repo.head.is_valid():
        return []
    start = datetime.combine(day, time.min).astimezone()
    end = start + timedelta(days=1)
    heads = sorted(repo.heads, key=lambda head: (head.name != branch_name(repo), head.name))
    found: dict[str, dict] = {}  # newest first, in git's order, so reversing it breaks same-second ties
    for head in heads:
        for commit in repo.iter_commits(head, since=start.isoformat(), until=end.isoformat()):
            when = commit.committed_datetime.astimezone()
            if commit.hexsha in found or not start <= when < end:
                continue
            found[commit.hexsha] = {
                "time": when.strftime("%H:%M"),
                "timestamp": when.isoformat(),
                "sha": commit.hexsha,
                "branch": head.name,
                "message": commit.message.strip().splitlines()[0] if commit.message.strip() else "",
                "files": commit.stats.total["files"],
            }
    return sorted(reversed(found.values()), key=lambda entry: entry["timestamp"])
