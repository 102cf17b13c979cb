"""Git capture: commit the working tree for a launch, refuse secrets and large files, list a day's commits."""

from __future__ import annotations

import fnmatch
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

from lab.store import LabError

MAX_FILE_BYTES = 10 * 1024 * 1024
SCANNED_BYTES = 1024 * 1024  # only the first megabyte of a file is searched for keys
SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*", ".netrc",
                "credentials.json", "*.keystore")
SECRET_CONTENT = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    rb"|AKIA[0-9A-Z]{16}"
    rb"|ghp_[A-Za-z0-9]{36}"
    rb"|hf_[A-Za-z0-9]{30,}"
    rb"|sk-[A-Za-z0-9_-]{20,}"
    rb"|(?i:(?:api[_-]?key|secret|token|password)['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{20,})"
)


def _repo(root: Path):
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise LabError(f"{root} is not inside a git repository: run `git init`, or launch with --no-commit") from None


def branch_name(repo) -> str:
    return "detached" if repo.head.is_detached else repo.active_branch.name


def head_sha(repo) -> str | None:
    return repo.head.commit.hexsha if repo.head.is_valid() else None


def unsafe_reason(path: Path) -> str | None:
    """Why `path` must not be committed (secret-looking name or content, or too large), or None."""
    name = path.name
    if any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_NAMES):
        return "secret file name"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_FILE_BYTES:
        return f"{size / 1e6:.1f} MB > 10 MB"
    with open(path, "rb") as stream:
        if SECRET_CONTENT.search(stream.read(SCANNED_BYTES)):
            return "contains what looks like an API key"
    return None


def commit_working_tree(root: Path, message: str) -> dict:
    """Stage everything git does not ignore and commit it with `message`.

    Returns {"sha", "branch", "committed", "files"}. Refuses (LabError, index restored) when a staged file
    looks like a secret or is over 10 MB, naming every offending file.
    """
    repo = _repo(root)
    top = Path(repo.working_tree_dir)
    repo.git.add(A=True)
    staged = [line for line in repo.git.diff("--cached", "--name-only", "--no-renames").splitlines() if line]
    offending = []
    for name in staged:
        reason = unsafe_reason(top / name)
        if reason:
            offending.append(f"{name} ({reason})")
    if offending:
        if head_sha(repo):
            repo.git.reset("--quiet")
        else:
            repo.git.rm("--cached", "-r", "--quiet", ".")
        raise LabError(
            "refusing to commit: " + "; ".join(offending) + ". Add them to .gitignore, or launch with --no-commit"
        )
    if not staged:
        return {"sha": head_sha(repo), "branch": branch_name(repo), "committed": False, "files": 0}
    import git

    try:
        repo.git.commit("--quiet", "--no-verify", "-m", message)
    except git.GitCommandError as error:
        detail = (error.stderr or str(error)).strip().splitlines()[-1]
        raise LabError(f"git commit failed: {detail}") from None
    return {"sha": head_sha(repo), "branch": branch_name(repo), "committed": True, "files": len(staged)}


def dirty_state(root: Path) -> tuple[dict | None, str]:
    """For --no-commit: ({"sha", "branch", "committed": False} or None outside git, the diff against HEAD)."""
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None, ""
    sha = head_sha(repo)
    diff = repo.git.diff("HEAD") if sha else ""
    untracked = repo.untracked_files
    if untracked:
        diff += "".join(f"\n# untracked: {name}" for name in untracked) + "\n"
    return {"sha": sha, "branch": branch_name(repo), "committed": False, "files": 0}, diff


def commits_on(root: Path, day: date) -> list[dict]:
    """The commits made on `day` (local time) on any local branch, oldest first.

    Each is {"time": "HH:MM", "sha": full sha, "branch", "message" (first line), "files"}.
    """
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return []
    if not repo.head.is_valid():
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
