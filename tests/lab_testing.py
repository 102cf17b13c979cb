"""Helpers shared by every test folder (on sys.path through pyproject's `pythonpath = ["tests"]`): git in a
folder, the environment a `lab` call runs in, and `run_lab`, which calls the `lab` command in this process."""

import contextlib
import io
import os
import signal
import subprocess
import time
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """`git ARGS` in `repo`; its stdout (CalledProcessError when git fails)."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


WANDB_MODE = "disabled"  # "offline" for a test marked `wandb` (tests/conftest.py sets it around the test)


def lab_env(**extra: str) -> dict:
    """This process's environment without LAB_ or WANDB_ variables, W&B silent and `WANDB_MODE` (disabled: each
    W&B run a launched script starts would cost it about 1.5 s; offline in a test marked `wandb`), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "WANDB_"))}
    env.update(WANDB_MODE=WANDB_MODE, WANDB_SILENT="true", **extra)
    return env


@contextlib.contextmanager
def environment(env: dict):
    """This process's environment replaced by `env` (the time zone too) for the block, then restored."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        time.tzset()


class Overran(BaseException):
    """A `lab` call ran past its time (a BaseException, so that no `except Exception` or `except OSError` of the
    lab's own turns it into an error line)."""


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    """Overran inside the block once it has run `seconds` (SIGALRM: this process's main thread only)."""
    def expired(signum, frame):
        raise Overran(f"{what} ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_lab(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`lab ARGS` called in this process (`lab.cli.main`) in folder `cwd` with environment `env` (default
    `lab_env()`), both restored afterwards; returns what a `subprocess.run(..., capture_output=True, text=True)` of
    `python -m lab ARGS` returned: args, returncode, stdout and stderr. A launched command still runs as a child
    process, its output in stdout. Overran after `timeout` seconds."""
    from lab.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    with environment(lab_env() if env is None else env), deadline(timeout, f"lab {' '.join(args)}"):
        os.chdir(cwd)
        try:
            code = main(list(args), stdout=stdout, stderr=stderr)
        finally:
            os.chdir(previous)
    return subprocess.CompletedProcess(["lab", *args], code, stdout.getvalue(), stderr.getvalue())
