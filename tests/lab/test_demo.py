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


def test_the_demo_says_before_each_launch_how_far_it_is_and_the_time_left(capsys, monkeypatch):
    from lab import demo

    monkeypatch.setattr(demo.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0))
    pace = demo.Pace(launches=3)
    for command in ("new-run", "launch", "note", "launch"):
        demo.lab(command, "nsd_001", cwd=Path("."), pace=pace)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("demo: ")]
    assert lines[0] == "demo: launch 1 of 3, 0s so far, ETA unknown"
    assert lines[1:] == ["demo: launch 2 of 3, 0s so far, ETA 0s"]  # 1 launch done in well under a second
