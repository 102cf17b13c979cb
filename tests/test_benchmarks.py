"""Every benchmark still runs: each `benchmarks/bench_*.py`, started as the program it is (a process of its
own), at the tiny size (`BENCH_SIZE=tiny`), exits 0 and prints its figures beside their targets. The figures
at that size mean nothing; `make bench` gives the real ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks_to_run():
    assert len(BENCHMARKS) >= 12


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_benchmark_runs_at_the_tiny_size(script, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "WANDB_"))}
    env.update(BENCH_SIZE="tiny", WANDB_MODE="offline", WANDB_SILENT="true")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "target" in done.stdout, done.stdout
