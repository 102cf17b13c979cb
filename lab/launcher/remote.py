"""Sharing one lab between clones through their git remote, the way git-annex shares its metadata: records
merge by union (`.gitattributes`), ids are reserved by creating a ref on the remote (`refs/lab/ids/<id>`, a push
that only creates, so of two clones one wins), and `lab init` sets up the refspecs that make plain `git pull`
and `git push` carry refs/lab/* (reservations and launch commits) beside the branch.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from lab.launcher import shared
from lab.launcher.vcs import _git, _open_repo
from lab.records.files import atomic_write

if TYPE_CHECKING:
    from git import Repo


def sharing_remote(repo: Repo) -> str | None:
    """The remote a lab shares through: the current branch's upstream remote, else `origin`, else the only one."""
    names = [remote.name for remote in repo.remotes]
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        tracking = repo.active_branch.tracking_branch()
        if tracking is not None and tracking.remote_name in names:
            return tracking.remote_name
    if "origin" in names:
        return "origin"
    return names[0] if len(names) == 1 else None


BOOKKEEPING_IDENTITY = {"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@localhost",
                        "GIT_COMMITTER_NAME": "lab", "GIT_COMMITTER_EMAIL": "lab@localhost"}
RESERVE_TIMEOUT_S = 10.0


def reserve_id(root: Path, run_id: str, clone: str, timeout: float = RESERVE_TIMEOUT_S) -> str:
    """Claim `run_id` for clone `clone` by creating refs/lab/ids/<id> on the sharing remote (a push that
    only creates, so of two clones one wins). Returns 'reserved', 'taken' (another clone holds it: known here,
    or the remote refused), 'offline' (no answer within `timeout` s: reserved here only, pushed later by
    `git push`) or 'local' (no git, or no remote)."""
    repo = _open_repo(root)
    if repo is None:
        return "local"
    ref = f"refs/lab/ids/{run_id}"
    holder = _ref_message(repo, ref)
    if holder is not None:
        return "reserved" if clone in holder else "taken"
    env = {**os.environ, **BOOKKEEPING_IDENTITY}
    empty_tree = subprocess.run(["git", "mktree"], cwd=repo.working_tree_dir, input="", capture_output=True,
                                text=True, check=True).stdout.strip()
    sha = subprocess.run(["git", "commit-tree", empty_tree, "-m", f"lab id {run_id}\n\nclone {clone}"],
                         cwd=repo.working_tree_dir, env=env, capture_output=True, text=True, check=True).stdout.strip()
    remote = sharing_remote(repo)
    outcome = "local" if remote is None else _push_new_ref(repo, remote, sha, ref, timeout)
    if outcome == "taken":
        _fetch_ids(repo, remote, timeout)
        return "taken"
    _git(repo, "update-ref", ref, sha)  # a push through lab init's refspecs may have set it already
    return outcome


def _ref_message(repo: Repo, ref: str) -> str | None:
    """The message of the commit `ref` names, or None when there is no such ref."""
    found = subprocess.run(["git", "log", "-1", "--format=%B", ref, "--"], cwd=repo.working_tree_dir,
                           capture_output=True, text=True)
    return found.stdout if found.returncode == 0 else None


def _quiet_network_env() -> dict:
    """Git's environment for a network call that must never wait on a prompt."""
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": os.environ.get(
        "GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=5")}


def _push_new_ref(repo: Repo, remote: str, sha: str, ref: str, timeout: float) -> str:
    """'reserved' when the push created `ref` on `remote`, 'taken' when the remote has it, else 'offline'."""
    command = ["git", "push", "--porcelain", f"--force-with-lease={ref}:", remote, f"{sha}:{ref}"]
    try:
        pushed = subprocess.run(command, cwd=repo.working_tree_dir, env=_quiet_network_env(), capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "offline"
    if pushed.returncode == 0:
        return "reserved"
    rejected = any(line.startswith("!") and ref in line for line in pushed.stdout.splitlines())
    return "taken" if rejected else "offline"


def _fetch_ids(repo: Repo, remote: str, timeout: float) -> None:
    """Copy every id reservation from `remote` (best effort), so this clone knows who holds which id without
    asking again."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(["git", "fetch", "--quiet", remote, "+refs/lab/ids/*:refs/lab/ids/*"],
                       cwd=repo.working_tree_dir, env=_quiet_network_env(), capture_output=True, timeout=timeout)


LAB_REFSPEC = "+refs/lab/*:refs/lab/*"
PAGES_REFSPEC = "+refs/heads/lab-pages*:refs/heads/lab-pages*"  # `lab site --branch`'s pages (a glob: none yet is fine)


def configure_clone(root: Path, logs: str) -> list[str]:
    """Set up this clone to share the lab through plain `git pull` and `git push`; returns what it changed.

    Committed (so every clone has it): `.gitattributes` merging the lab's append-only files by union. Per
    clone (.git/config): each remote fetches refs/lab/* and pushes them beside the current branch, and the
    lab-pages branch that `lab site --branch` commits (forced: the pages are derived from the records).
    """
    changed = []
    attributes = Path(root) / ".gitattributes"
    lines = attributes.read_text(encoding="utf-8").splitlines() if attributes.exists() else []
    wanted = [f"{logs}/**/*.jsonl merge=union"]
    missing = [line for line in wanted if line not in lines]
    if missing:
        text = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
        separator = "\n" if text and not text.endswith("\n") else ""
        atomic_write(attributes, lambda stream: stream.write((text + separator + "".join(
            f"{line}\n" for line in missing)).encode("utf-8")))
        changed.append(".gitattributes")
    repo = _open_repo(root)
    if repo is None:
        return changed
    for remote in repo.remotes:
        for key, value in ((f"remote.{remote.name}.fetch", LAB_REFSPEC), (f"remote.{remote.name}.push", "HEAD"),
                           (f"remote.{remote.name}.push", "refs/lab/*:refs/lab/*"),
                           (f"remote.{remote.name}.push", PAGES_REFSPEC)):
            present = subprocess.run(["git", "config", "--get-all", key], cwd=repo.working_tree_dir,
                                     capture_output=True, text=True).stdout.split()
            if value not in present:
                _git(repo, "config", "--add", key, value)
                changed.append(f"{key} {value}")
    for remote, fetches in shared.fetch_specs(Path(repo.working_tree_dir)).items():
        if shared.mirror_lab_commits(Path(repo.working_tree_dir), remote, fetches):
            changed.append(f"remote.{remote}.fetch {shared.MIRROR.format(remote=remote)}")
    return changed


def untrack(root: Path, folders: list[Path], keep: list[str] = ()) -> list[str]:
    """Stop tracking files under `folders` (derived pages an older lab committed), leaving them on disk and
    keeping the paths in `keep`; returns the paths untracked."""
    repo = _open_repo(root)
    if repo is None:
        return []
    top = Path(repo.working_tree_dir).resolve()
    names = [str(Path(folder).resolve().relative_to(top)) for folder in folders]
    tracked = [name for name in _git(repo, "ls-files", "-z", "--", *names).split("\0") if name and name not in keep]
    if tracked:
        _git(repo, "rm", "--cached", "--quiet", "--", *tracked)
    return tracked


def id_holders(root: Path) -> dict[str, str]:
    """{run id: the text of its reservation (naming the clone)} for every refs/lab/ids/* this clone knows."""
    repo = _open_repo(root)
    if repo is None:
        return {}
    listing = _git(repo, "for-each-ref", "--format=%(refname:lstrip=3)%00%(contents)%00", "refs/lab/ids")
    fields = listing.split("\0")
    return {name.strip(): text for name, text in zip(fields[::2], fields[1::2]) if name.strip()}
