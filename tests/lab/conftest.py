"""Fixtures for notebook tests: a real temporary git repository made into a lab, a `lab` runner (in process), and
labs with scripts and runs that several test files start from."""

import sys
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


@pytest.fixture
def project(repo: Path) -> Path:
    """`repo` with one commit: a train.py."""
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    return repo


@pytest.fixture
def two_runs(lab):
    """x_001 and x_002, each with one finished attempt that logged metrics."""
    script = lab.repo / "ok.py"
    script.write_text("from lab import tracker\n"
                      "for step in range(5):\n    tracker.log(step, **{'train/loss': 1 / (step + 1)})\n")
    for run_id in ("x_001", "x_002"):
        lab("new-run", run_id, "--hypothesis", f"h {run_id}")
        lab("launch", run_id, "--no-commit", "--", sys.executable, "ok.py")
    return lab


SCRIPT = """import argparse
from lab import tracker
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
parser.add_argument('--hidden', type=int, default=32)
args = parser.parse_args()
tracker.config(vars(args))
for step in range(1, 21):
    loss = 1.0 / (step * args.lr * 10)
    tracker.log(step, **{'train/loss': loss})
    if step % 5 == 0:
        tracker.log(step, **{'val/loss': loss + 0.01})
"""


@pytest.fixture
def script_lab(lab):
    """A lab whose train.py reports its argparse config (--lr, --hidden) and logs train and val losses."""
    (lab.repo / "train.py").write_text(SCRIPT)
    return lab


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright (tests/site_browser.py); the test is skipped, saying why, where no
    browser or no Playwright is installed."""
    import site_browser

    reason = site_browser.missing()
    if reason:
        pytest.skip(reason)
    with site_browser.browser_session() as launched:
        yield launched
