"""`lab report` and `lab doctor` of one attempt with a 1,000,000-row metrics.jsonl: wall time and peak memory
of each command, against the targets of 10 s and 300 MB."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.records.store import Store
from sizes import pick

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(full=1_000_000, tiny=1_000)
TARGET_SECONDS, TARGET_MB = 10, 300


def write_metrics(path: Path) -> None:
    rng = random.Random(0)
    with open(path, "w") as stream:
        for step in range(ROWS):
            loss = 2 * math.exp(-step / (ROWS / 3)) + rng.random() * 0.01
            row = {"step": step, "time": 1.7e9 + step * 0.01, "train/loss": loss, "train/lr": 1e-3,
                   "train/grad_norm": rng.random()}
            if step % 10 == 0:
                row["train/samples_per_s"] = 100 + rng.random()
            if step % 1000 == 0:
                row["val/loss"] = loss + 0.05
            stream.write(json.dumps(row) + "\n")


def measure(root: Path, *args: str) -> tuple[float, float]:
    """(seconds, peak resident MB) of one `lab` command."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "lab", *args], cwd=root, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"lab {' '.join(args)} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = Store.init(root)
        store.runs.create("big_001", hypothesis="a long run")
        attempt = store.attempts.begin("big_001", command=["python", "train.py"], pid=os.getpid())
        write_metrics(attempt / "metrics.jsonl")
        store.attempts.end(attempt, exit_code=0, status="finished")
        size = (store.attempt_dir("big_001", 1) / "metrics.jsonl").stat().st_size / 1e6
        print(f"metrics.jsonl: {ROWS:,} rows, {size:.0f} MB")
        for command in ("report", "doctor"):
            seconds, peak = measure(root, command, "big_001")
            print(f"lab {command}: {seconds:.1f} s (target <= {TARGET_SECONDS} s), peak {peak:.0f} MB "
                  f"(target <= {TARGET_MB} MB)")


if __name__ == "__main__":
    main()
