"""Helpers shared by every test folder (on sys.path through pyproject's `pythonpath = ["tests"]`): git in a
folder and the environment a `lab` subprocess runs in."""

import os
import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """`git ARGS` in `repo`; its stdout (CalledProcessError when git fails)."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def lab_env(**extra: str) -> dict:
    """This process's environment without LAB_ or WANDB_ variables, W&B offline and silent, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "WANDB_"))}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", **extra)
    return env
