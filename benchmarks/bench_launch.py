"""The fixed cost of a launch: `lab launch ID -- python -c ...` (a command that does nothing) in a fresh lab and
in one of 1,000 runs, beside the command alone. Target: at most 0.5 s in each, whatever the number of runs.

The command prints the time when its own code starts and ends, so the launch's cost is split into the part spent
before the script starts (imports, checks, the commit of the working tree, the attempt opened) and the part after
it ends (records closed and committed, health checks), each less what the command alone spends starting its
interpreter and exiting. Python runs as an installed lab does, with its bytecode cached (PYTHONDONTWRITEBYTECODE
unset), after one launch that warms it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.records.store import Store
from sizes import pick

RUNS, REPEATS, TARGET_SECONDS = pick(full=1000, tiny=3), pick(full=7, tiny=1), 0.5
SCRIPT = "import time; print('start', time.time()); print('end', time.time())"


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float, float]:
    """(seconds until the script's code started, seconds the whole command took, seconds after its code ended)."""
    started = time.time()
    output = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    ended = time.time()
    marks = dict(line.split() for line in output.splitlines() if line.startswith(("start ", "end ")))
    return float(marks["start"]) - started, ended - started, ended - float(marks["end"])


def quickest(command: list[str], cwd: Path, env: dict) -> tuple[tuple[float, float, float], float]:
    """`timed`'s figures of the quickest of REPEATS runs: the cost without the other processes of a shared
    machine (the median is printed beside it)."""
    runs = [timed(command, cwd, env) for _ in range(REPEATS)]
    return min(runs, key=lambda figures: figures[1]), statistics.median(figures[1] for figures in runs)


def make_lab(root: Path, runs: int, env: dict) -> None:
    """A git repository made a lab by `lab init`, with `runs` runs of one finished attempt each, committed."""
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    for key, value in (("user.email", "bench@example.org"), ("user.name", "Bench")):
        subprocess.run(["git", "config", key, value], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "lab", "init", "--no-wandb"], cwd=root, env=env, check=True,
                   capture_output=True)
    store = Store(root)
    for number in range(1, runs + 1):
        run_id = f"exp_{number - 1:03d}"
        store.runs.create(run_id, hypothesis="an old run")
        attempt = store.attempts.begin(run_id, command=["python", "train.py"], pid=os.getpid())
        (attempt / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 1.0}) + "\n")
        store.attempts.end(attempt, exit_code=0, status="finished")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "old runs"], cwd=root, check=True)


def main() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-c", SCRIPT]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        make_lab(root, 0, env)
        alone, _ = quickest(command, root, env)
        print(f"the command alone: {alone[1]:.3f} s")
        for runs in (1, RUNS):
            if runs > 1:
                root = Path(folder) / f"lab_of_{runs}"
                make_lab(root, runs, env)
            subprocess.run([sys.executable, "-m", "lab", "new-run", "bench_001", "--hypothesis", "launch cost"],
                           cwd=root, env=env, check=True, capture_output=True)
            launch = [sys.executable, "-m", "lab", "launch", "bench_001", "--", *command]
            timed(launch, root, env)  # warm: bytecode written, the secret rules cached
            (before, total, after), median = quickest(launch, root, env)
            fixed = total - alone[1]
            print(f"lab launch in a lab of {runs:,} run{'s' if runs > 1 else ''}: {total:.3f} s "
                  f"(median {median:.3f} s), "
                  f"{fixed:.3f} s more than the command (target <= {TARGET_SECONDS} s: "
                  f"{'met' if fixed <= TARGET_SECONDS else 'MISSED'}); before the script starts "
                  f"{before - alone[0]:.3f} s, after it ends {after - alone[2]:.3f} s")

if __name__ == "__main__":
    main()
