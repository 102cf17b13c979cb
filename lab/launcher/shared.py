"""Whether every launch commit an attempt records is on a remote, checked at the start of each command.

A launch keeps its commit under refs/lab/commits/<sha>. `git pull --rebase` rewrites the unpushed launch commits
on the branch, and a push with an explicit refspec (`git push origin main`) leaves refs/lab/* behind, so the
recorded sha can be on no remote. Each remote's fetch refspecs mirror its refs/lab/commits/* under
refs/remotes/<remote>/lab/commits/* (first among them, so that a `git push` that carries refs/lab/* updates the
mirror at once, as it updates a remote-tracking branch); a recorded commit is shared when a remote-tracking ref
reaches it, and left behind when neither such a ref nor a local branch does (a commit on a branch is only not
pushed yet, and the branch's push will carry it). The check costs one `git config` and one `git for-each-ref` while
nothing changed (cached in the lab's state folder, keyed by those refs); it warns once per set of unshared
attempts, and again at most once a day while they stay unshared, naming them and the one command that shares
them. It never fails a command: a git error, or a cache it cannot write (a full disk), only skips it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import re
import subprocess
import time
from pathlib import Path

from lab.errors import RecordError, warn
from lab.records.files import read_json, write_json
from lab.records.store import Store
from lab.records.store.place import work_tree

LAB_REFSPEC = "+refs/lab/*:refs/lab/*"
MIRROR = "+refs/lab/commits/*:refs/remotes/{remote}/lab/commits/*"
SHOWN = 3  # attempts named in the warning
REMIND_SECONDS = 24 * 3600  # a warning repeats at most this often while the same attempts stay unshared


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    """git's output in `root`; CalledProcessError, OSError or TimeoutExpired when it fails."""
    return subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, text=True, check=True,
                          timeout=30).stdout


def fetch_specs(root: Path) -> dict[str, list[str]]:
    """{remote: its fetch refspecs, in order} from one `git config` call ({} without remotes)."""
    found = subprocess.run(["git", "config", "--get-regexp", r"^remote\..*\.(url|fetch)$"], cwd=root,
                           capture_output=True, text=True, timeout=30).stdout
    specs: dict[str, list[str]] = {}
    for line in found.splitlines():
        key, _, value = line.partition(" ")
        remote, _, field = key[len("remote."):].rpartition(".")
        specs.setdefault(remote, [])
        if field == "fetch":
            specs[remote].append(value)
    return specs


def claims_lab_commits(spec: str) -> bool:
    """Whether fetch refspec `spec` maps refs/lab/commits/* (as the lab's own `+refs/lab/*:refs/lab/*` does)."""
    return fnmatch.fnmatchcase("refs/lab/commits/x", spec.lstrip("+").partition(":")[0])


def mirror_lab_commits(root: Path, remote: str, specs: list[str]) -> bool:
    """Make MIRROR `remote`'s first fetch refspec for refs/lab/commits/* (a lab made before it, or a remote added
    since `lab init`): added after the others, and only a refspec that claims those refs before it (the lab's
    own) moves behind it; the remote keeps every other refspec, in place, at each step. Returns whether it
    changed the config."""
    mirror = MIRROR.format(remote=remote)
    ahead = [spec for spec in (specs[:specs.index(mirror)] if mirror in specs else specs) if claims_lab_commits(spec)]
    if mirror in specs and not ahead:
        return False
    key = f"remote.{remote}.fetch"
    if mirror not in specs:
        git(root, "config", "--add", key, mirror)
    for spec in dict.fromkeys(ahead):
        git(root, "config", "--unset-all", key, f"^{re.escape(spec)}$")
        git(root, "config", "--add", key, spec)
    return True


def unshared_attempts(store: Store, shas: set[str]) -> list[str]:
    """'RUN Test N' for each attempt of this lab whose recorded commit is one of `shas`, in run order."""
    named = []
    for run_id in store.run_ids():
        try:
            attempts = store.attempts.of(run_id)
        except (RecordError, OSError):  # the command itself names an unreadable run
            continue
        named += [f"{run_id} Test {attempt['number']}" for attempt in attempts
                  if (attempt.get("git") or {}).get("sha") in shas]
    return named


def unreached(root: Path, commits: set[str]) -> set[str]:
    """The commits of `commits` that neither a remote-tracking ref nor a local branch reaches: left behind by a
    rebase or a deleted branch, so that no ordinary push of a branch carries them (a commit still on a branch is
    merely not pushed yet, as `git status` says)."""
    if not commits:
        return set()
    listed = git(root, "rev-list", "--stdin", "--not", "--remotes", "--branches",
                 stdin="\n".join(sorted(commits)) + "\n")
    return commits & set(listed.split())


def check(store: Store) -> None:
    """Warn (once per set, then at most once a day) of this lab's attempts whose launch commit no remote has, with
    the command that shares them. Nothing outside git, without a remote, or when git or the cache's write fails."""
    root = work_tree(store.root)
    if root is None:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        specs = fetch_specs(root)
        if not specs:
            return
        for remote, fetches in specs.items():
            mirror_lab_commits(root, remote, fetches)
        refs = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/remotes", "refs/lab/commits")
        kept = {line.split()[0] for line in refs.splitlines() if " refs/lab/commits/" in line}
        if not kept:
            return
        cache_path = store.lab_dir / "cache" / "shared.json"
        cache = read_json(cache_path, {})
        key = hashlib.sha1(refs.encode()).hexdigest()
        if cache.get("key") == key:
            named = cache.get("unshared", [])
        else:
            named = unshared_attempts(store, unreached(root, kept))
        fresh = {"key": key, "unshared": named, "warned": named,
                 "warned_at": cache.get("warned_at", 0) if named == cache.get("warned") else 0}
        due = named and (named != cache.get("warned") or time.time() - fresh["warned_at"] >= REMIND_SECONDS)
        if due:
            fresh["warned_at"] = time.time()
        if cache != fresh:
            write_json(cache_path, fresh)  # a full disk or a read-only .git: no cache, and no warning either
        if due:
            remote = "origin" if "origin" in specs else sorted(specs)[0]
            more = f" and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
            many = len(named) > 1
            warn(f"the launch commit{'s' if many else ''} of {len(named)} attempt{'s' if many else ''} "
                 f"{'are' if many else 'is'} on no remote ({', '.join(named[:SHOWN])}{more}): share "
                 f"{'them' if many else 'it'} with git push {remote} 'refs/lab/*:refs/lab/*'")
