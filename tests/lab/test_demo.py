"""The README's example script and `make demo`'s story."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.records.store import Store

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


def test_the_readme_example_script_runs_under_the_lab(lab, repo):
    example = Path(__file__).resolve().parents[2] / "examples" / "my_train.py"
    lab("new-run", "toy_001", "--hypothesis", "grad accumulation lowers the loss faster")
    result = lab("launch", "toy_001", "--no-commit", "--", sys.executable, str(example), "--accum", "16")
    assert result.stdout.startswith("done: final loss")
    config = json.loads((Store(repo).attempt_dir("toy_001", 1) / "config.json").read_text())
    assert config == {"accum": 16, "lr": 0.0002, "steps": 100}
    lab("report", "toy_001")
    assert "val/loss" in (repo / "logs/reports/toy_001.md").read_text()


def test_the_demo_echoes_commands_that_paste(capsys, monkeypatch):
    from lab import demo

    monkeypatch.setattr(demo.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0))
    demo.lab("note", "dia_009", "--findings", "Accumulating 16 batches helps", cwd=Path("."))
    assert "$ lab note dia_009 --findings 'Accumulating 16 batches helps'" in capsys.readouterr().out
