"""`lab site --branch`: the built site committed to the branch `lab-pages` with git plumbing (hash-object, mktree,
commit-tree, update-ref), never touching the work tree or the index, so that the push a user makes anyway
(`lab site --branch` adds the branch to each remote's push refspecs) carries it and a colleague with only git and a
browser opens it (`git worktree add ../pages lab-pages`, or a git host serving the branch as pages).

The same site gives the same tree; a build that changed nothing makes no commit. Each commit's parent is the
branch's previous commit, so the history of the pages is kept.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.errors import LabError
from lab.launcher.remote import BOOKKEEPING_IDENTITY, PAGES_BRANCH

BRANCH = PAGES_BRANCH


def git(root: Path, *args: str, text: str | None = None) -> str:
    """The output of `git ARGS` in `root` (stripped); LabError with git's message when it fails."""
    done = subprocess.run(["git", *args], cwd=root, input=text, capture_output=True, text=True,
                          env={**os.environ, **BOOKKEEPING_IDENTITY})
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise LabError(f"git {args[0]} failed: {said[-1] if said else f'exit status {done.returncode}'}")
    return done.stdout.strip()


def tree_of(root: Path, folder: Path, names: list[str]) -> str:
    """The git tree (sha) of the files `names` (site paths) under `folder`, each written as a blob (one
    `hash-object` for all of them); entries sorted as git sorts them."""
    shas = git(root, "hash-object", "-w", "--stdin-paths", text="".join(f"{folder / name}\n" for name in names))
    nested: dict = {}
    for name, sha in zip(names, shas.split()):
        *parents, leaf = name.split("/")
        holder = nested
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[leaf] = sha
    return mktree(root, nested)


def mktree(root: Path, nested: dict) -> str:
    """The git tree of `nested` ({name: blob sha or a nested dict of a folder}), folders first written."""
    entries = [f"040000 tree {mktree(root, item)}\t{name}" if isinstance(item, dict) else f"100644 blob {item}\t{name}"
               for name, item in sorted(nested.items())]
    return git(root, "mktree", text="".join(f"{entry}\n" for entry in entries))


def publish(store, folder: Path) -> tuple[str, bool]:
    """Commit the site built in `folder` (the files its manifest lists, `build.site_files`, no other) to
    lab-pages; (the branch's commit, whether a new one was made). LabError when the lab is not in a git
    repository."""
    from lab.site.build import site_files

    root, folder = store.root, Path(folder).resolve()
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=root, capture_output=True).returncode != 0:
        raise LabError("lab site --branch needs the lab in a git repository")
    tree = tree_of(root, folder, site_files(folder))
    parent = subprocess.run(["git", "rev-parse", "--verify", "-q", BRANCH], cwd=root, capture_output=True,
                            text=True).stdout.strip()
    if parent and git(root, "rev-parse", f"{parent}^{{tree}}") == tree:
        return parent, False
    commit = git(root, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", "lab pages")
    git(root, "update-ref", BRANCH, commit, parent or "0" * 40)
    return commit, True
