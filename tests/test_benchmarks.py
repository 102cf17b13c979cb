"""Every benchmark still runs: each `benchmarks/bench_*.py`, started as the program it is (a process of its
own), at the tiny size (`BENCH_SIZE=tiny`), exits 0 and prints its figures beside their targets. The figures
at that size mean nothing; `make bench` gives the real ones. The benchmarks start together, a few at a time
(several wait on processes of their own), so the whole smoke takes about as long as the slowest few."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
AT_ONCE = 4  # benchmarks running together (each loads torch: about 0.5 GB)
TIMEOUT_S = 300


def run_tiny(script: Path, folder: Path) -> subprocess.CompletedProcess:
    """`script` run at the tiny size in `folder`, W&B offline and none of this process's lab or W&B variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "WANDB_"))}
    env.update(BENCH_SIZE="tiny", WANDB_MODE="offline", WANDB_SILENT="true")
    folder.mkdir()
    return subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Future]:
    """{benchmark name: its run}, all started at once on a pool of AT_ONCE workers."""
    root = tmp_path_factory.mktemp("benchmarks")
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        yield {script.stem: pool.submit(run_tiny, script, root / script.stem) for script in BENCHMARKS}


def test_every_benchmark_is_found():
    names = {script.stem for script in BENCHMARKS}
    assert {"bench_output", "bench_engine", "bench_render", "bench_tracker"} <= names and len(names) >= 12


@pytest.mark.parametrize("name", [script.stem for script in BENCHMARKS])
def test_benchmark_runs_at_the_tiny_size_and_prints_its_targets(name, runs):
    done = runs[name].result()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = [line for line in done.stdout.splitlines() if line.strip()]
    assert figures and any("target" in line for line in figures), done.stdout
