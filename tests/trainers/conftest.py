"""Fixtures for family tests: a lab in a fresh git repository, driven through the `lab` command (in process)."""

import pytest
from lab_testing import git, lab_env, run_lab


@pytest.fixture
def lab_environment() -> dict:
    """The environment a `lab` call runs in: no LAB_ or WANDB_ variables of ours, W&B offline."""
    return lab_env()


@pytest.fixture
def family_lab(tmp_path):
    """`family_lab(prefix, family)` makes a lab mapping `prefix` to `family` and returns `lab(*args) -> stdout`
    (asserting exit status 0); `lab.repo` is its folder."""

    def make(prefix: str, family: str):
        repo = tmp_path / "lab"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")

        def lab(*args: str) -> str:
            result = run_lab(*args, cwd=repo, timeout=300)
            assert result.returncode == 0, result.stderr
            return result.stdout

        lab("init", "--prefix", f"{prefix}={family}")
        lab.repo = repo
        return lab

    return make
