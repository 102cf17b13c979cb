"""Run ids shared between clones: reserving an id through the git remote before a run takes it, and finding
this clone's runs whose id another clone reserved first (taken offline), each of which needs `lab rename`."""

from __future__ import annotations

from lab.errors import LabError, warn
from lab.launcher import remote
from lab.records.store import Store


def id_reserver(store: Store):
    """`reserve(id)` for `store.runs.create`: claims the id through the git remote (lab.json
    `remote.timeout_s`, default 10 s); with no answer it goes ahead, saying so in one line."""
    timeout = float(store.settings.get("remote", {}).get("timeout_s", remote.RESERVE_TIMEOUT_S))

    def reserve(run_id: str) -> bool:
        outcome = remote.reserve_id(store.root, run_id, store.clone_id, timeout)
        if outcome == "offline":
            warn(f"the git remote did not answer, so {run_id} is reserved on this clone only; if "
                 "another clone takes it too, git pull shows it and lab rename fixes it")
        return outcome != "taken"

    return reserve


def taken_elsewhere(store: Store) -> list[str]:
    """This clone's runs whose id another clone reserved on the remote first (an id taken offline, seen once
    `git fetch` or `git pull` brought the reservations): each needs `lab rename` before the merge."""
    holders = remote.id_holders(store.root)
    clashes = []
    for run_id in store.readable_run_ids():
        creator = store.runs.load(run_id).get("clone")
        if creator == store.clone_id and run_id in holders and creator not in holders[run_id]:
            clashes.append(run_id)
    return clashes


def warn_taken_elsewhere(store: Store) -> list[str]:
    """`taken_elsewhere`, each named in one warning with the free id to rename it to; returns them."""
    clashes = taken_elsewhere(store)
    reserved = set(remote.id_holders(store.root)) if clashes else set()
    for run_id in clashes:
        with store.lock():
            free = store.ids.next(run_id.rsplit("_", 1)[0], reserved)
        warn(f"another clone reserved {run_id} first (refs/lab/ids/{run_id}); before you merge, give this clone's "
             f"run a new id: lab rename {run_id} {free}")
    return clashes


def claim(store: Store, run_id: str) -> None:
    """Reserve `run_id` for this clone through the remote; LabError when another clone holds it."""
    if not id_reserver(store)(run_id):
        raise LabError(f"run id {run_id} is already taken by another clone: choose another id")
