"""One lab on two machines at scale: clones `a` and `b` of one bare remote each create RUNS runs with `--next`
(ids reserved through the remote) and ATTEMPTS attempts per run (each run's records committed when its
attempts end), then `b` merges `a` with plain `git pull`, renders every page, and pushes back to `a`.

Prints the time of the merge and of `lab render` afterwards, the repository growth per run, and the runs,
attempts and metric rows counted on both sides (nothing lost, nothing duplicated).

    python benchmarks/bench_clones.py [RUNS] [ATTEMPTS]     (default 300 x 2)

Targets (set here; 0.83 s, 25.3 s and 1.2 KiB were measured when it was built): the merge under MERGE_TARGET_S,
rendering within the 30 s that bench_render allows 1,000 runs, the repository growing at most GROWTH_TARGET_KIB per
run; nothing lost or duplicated, and git left clean (asserted).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.launcher import vcs
from lab.records.files import append_jsonl, read_jsonl
from lab.records.store import Store
from lab.runs.ids import id_reserver
from sizes import pick

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(full=300, tiny=3)
ATTEMPTS = int(sys.argv[2]) if len(sys.argv) > 2 else pick(full=2, tiny=1)
ROWS = 20  # metric rows per attempt
MERGE_TARGET_S, RENDER_TARGET_S, GROWTH_TARGET_KIB = 5.0, 30.0, 4.0


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def lab(folder: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "lab", *args], cwd=folder, check=True, capture_output=True)


def clone(remote: Path, folder: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(remote), str(folder)], check=True, capture_output=True)
    git(folder, "config", "user.email", f"{folder.name}@example.org")
    git(folder, "config", "user.name", folder.name)
    git(folder, "config", "pull.rebase", "false")
    return folder


def repository_bytes(folder: Path) -> int:
    """Bytes of git objects (loose and packed) of a clone."""
    counts = dict(line.split(": ") for line in git(folder, "count-objects", "-v").splitlines())
    return (int(counts["size"]) + int(counts["size-pack"])) * 1024


def work(folder: Path) -> None:
    """RUNS runs of ATTEMPTS attempts each, as a launch records them."""
    store = Store(folder)
    reserve = id_reserver(store)
    for _ in range(RUNS):
        run = store.runs.create(None, prefix="dia", reserve=reserve, hypothesis=f"from {folder.name}")
        for _ in range(ATTEMPTS):
            attempt = store.attempts.begin(run["id"], command=["python", "train.py"], pid=0)
            for step in range(1, ROWS + 1):
                append_jsonl(attempt / "metrics.jsonl", {"step": step, "train/loss": 1.0 / step})
            store.attempts.end(attempt, exit_code=0, status="finished")
        vcs.commit_records(folder, [store.run_dir(run["id"])], f"{vcs.RECORDS_COMMIT}{run['slug']}")


def counts(folder: Path) -> tuple[int, int, int]:
    """(runs, attempts, metric rows) a clone holds."""
    store = Store(folder)
    attempts = [path for run in store.run_ids() for path in store.attempt_folders(run)]
    return len(store.run_ids()), len(attempts), sum(len(list(read_jsonl(path / "metrics.jsonl"))) for path in attempts)


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        top = Path(temporary)
        remote = top / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        a = clone(remote, top / "a")
        git(a, "checkout", "-q", "-b", "main")
        lab(a, "init", "--no-wandb")
        git(a, "add", "-A")
        git(a, "commit", "-qm", "lab")
        git(a, "push", "-q", "-u", "origin", "main")
        b = clone(remote, top / "b")
        lab(b, "init")
        before = repository_bytes(b)

        started = time.perf_counter()
        work(a)
        work(b)
        created = time.perf_counter() - started
        git(a, "push", "-q")
        started = time.perf_counter()
        git(b, "pull", "-q", "--no-edit")
        merged = time.perf_counter() - started
        started = time.perf_counter()
        lab(b, "render")
        rendered = time.perf_counter() - started
        git(b, "push", "-q")
        git(a, "pull", "-q")
        git(b, "gc", "-q")
        growth = (repository_bytes(b) - before) / (2 * RUNS)

        sides = {name: counts(folder) for name, folder in (("a", a), ("b", b))}
        expected = (2 * RUNS, 2 * RUNS * ATTEMPTS, 2 * RUNS * ATTEMPTS * ROWS)
        print(f"two clones x {RUNS} runs x {ATTEMPTS} attempts ({ROWS} metric rows each), "
              f"created and committed in {created:.1f} s")
        print(f"git pull (merge) on b: {merged:.2f} s (target < {MERGE_TARGET_S:g} s); lab render afterwards: "
              f"{rendered:.1f} s (target < {RENDER_TARGET_S:g} s)")
        print(f"repository growth: {growth / 1024:.1f} KiB per run after git gc (target <= {GROWTH_TARGET_KIB:g} KiB)")
        for name, (runs, attempts, rows) in sides.items():
            print(f"{name}: {runs} runs, {attempts} attempts, {rows} metric rows")
        ids = sorted(Store(b).run_ids())
        assert len(set(ids)) == len(ids) == 2 * RUNS, "two runs took one id"
        assert all(side == expected for side in sides.values()), f"lost or duplicated: {sides} != {expected}"
        assert git(b, "status", "--porcelain") == "", "rendering left changes for git"
        print("nothing lost or duplicated; rendering left git clean")


if __name__ == "__main__":
    main()
