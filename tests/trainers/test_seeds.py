"""`lab launch ID --seeds N`: one attempt per train.seed, and verdicts on the mean and spread over seeds (issue 21),
on the toy family of toy_family.py."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lab_testing

from lab.families import registry
from lab.records.store import Store

HERE = Path(__file__).resolve().parent


def test_seeds_launch_one_attempt_per_seed_and_the_verdict_compares_their_means(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    env = lab_testing.lab_env(**{registry.FAMILY_MODULES_VARIABLE: "toy_family"})
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])

    def lab(*args, code=0):
        done = lab_testing.run_lab(*args, cwd=repo, env=env, timeout=300)
        assert done.returncode == code, done.stderr
        return done

    lab("init", "--prefix", "toy=toy")
    lab("new-run", "toy_001", "--hypothesis", "the toy recipe")
    lab("new-run", "toy_002", "--from", "toy_001", "--hypothesis", "a lower LR", "--set", "optim.lr=0.001")
    lab("launch", "toy_001", "--no-commit")
    lab("launch", "toy_002", "--seeds", "2", "--no-commit")
    store = Store(repo)
    attempts = [store.attempts.load("toy_002", n) for n in (1, 2)]
    seeds = [json.loads((store.attempt_dir("toy_002", n) / "config.json").read_text())["train"]["seed"] for n in (1, 2)]
    assert seeds == [3, 4] and [a["note"] for a in attempts] == ["seed 3", "seed 4"]  # from the preset's seed 3
    lab("report", "toy_002")
    page = (repo / "logs/reports/toy_002.md").read_text()
    assert re.search(r"\*\*Verdict\*\*: [a-z ]+: val/loss [\d.]+ \(mean of 2 seeds, sd [\d.e-]+\) vs [\d.]+ "
                     r"for toy_001:1, ", page), page.split("**Verdict**")[1][:300]

    wrapped = lab("launch", "toy_001", "--seeds", "2", "--", sys.executable, "-c", "pass", code=2)
    assert wrapped.stderr.startswith("lab: error: --seeds N") and wrapped.stderr.count("\n") == 1
    assert store.attempts.numbers("toy_001") == [1]
