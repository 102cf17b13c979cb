"""Fixtures for notebook tests: a real temporary git repository made into a lab, and a `lab` runner."""

from pathlib import Path

import pytest
from lab_testing import git, run_lab


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository with a committer identity."""
    folder = tmp_path / "project"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.email", "researcher@example.org")
    git(folder, "config", "user.name", "Researcher")
    return folder


@pytest.fixture
def lab(repo: Path):
    """Run `lab ARGS...` in process in a lab made of `repo`; returns CompletedProcess (text). `check=False` allows
    failure."""

    def run(*args: str, check: bool = True, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
        result = run_lab(*args, cwd=cwd or repo, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"lab {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    run.repo = repo
    run("init", "--wandb-entity", "my-team", "--wandb-project", "dia-music-finetuning",
        "--prefix", "nsd=neural_decoder")
    return run


@pytest.fixture
def train_script(repo: Path) -> Path:
    """A wrapped training script that logs through the tracker client and exits with --exit."""
    script = repo / "my_train.py"
    script.write_text(
        "import argparse, sys\n"
        "from lab import tracker\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float, default=1e-3)\n"
        "parser.add_argument('--exit', type=int, default=0)\n"
        "args = parser.parse_args()\n"
        "for step in range(1, 11):\n"
        "    tracker.log(step, **{'train/loss': 2.0 / step, 'train/lr': args.lr})\n"
        "tracker.log(10, **{'val/loss': 0.5})\n"
        "tracker.summary(final_loss=0.2)\n"
        "print('trained with lr', args.lr)\n"
        "sys.exit(args.exit)\n"
    )
    return script
