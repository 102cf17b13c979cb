import json
import os
import subprocess
import sys

import pytest
from lab_testing import lab_env

from lab import tracker
from lab.records.store import Store

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


@pytest.fixture
def fresh_tracker(monkeypatch):
    for key in [k for k in os.environ if k.startswith(("LAB_", "WANDB_")) or k in ("RANK", "LOCAL_RANK")]:
        monkeypatch.delenv(key)
    tracker.finish()
    yield
    tracker.finish()


def test_outside_a_launch_every_call_is_a_no_op(fresh_tracker, tmp_path):
    tracker.log(1, loss=1.0)
    tracker.summary(best=1)
    tracker.event("health", rule="x")
    assert not tracker.active() and tracker.attempt_dir() is None
    assert list(tmp_path.iterdir()) == []


def test_writes_to_the_attempt_named_by_the_environment(fresh_tracker, tmp_path, monkeypatch):
    store = Store.init(tmp_path)
    store.runs.create("nsd_001", hypothesis="h")
    attempt = store.attempts.begin("nsd_001", command=["x"], pid=os.getpid())
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(attempt))
    tracker.log(1, **{"train/loss": 2.5, "train/grad_norm": float("nan")})
    tracker.log(2, **{"train/loss": 2.0})
    tracker.summary(best_value=2.0)
    tracker.summary(steps=2)
    tracker.checkpoint("best", tmp_path / "best.pt", 2, metric="train/loss", value=2.0)
    tracker.checkpoint("last", tmp_path / "last.pt", 2)
    tracker.event("health", rule="non_finite", step=1)
    tracker.finish()
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["train/loss"]) for r in rows] == [(1, 2.5), (2, 2.0)]
    assert rows[0]["train/grad_norm"] == "nan"
    assert json.loads((attempt / "summary.json").read_text()) == {"best_value": 2.0, "steps": 2}
    record = json.loads((attempt / "attempt.json").read_text())
    assert record["checkpoints"]["best"]["step"] == 2 and record["checkpoints"]["last"]["path"].endswith("last.pt")
    assert store.events.of("nsd_001")[-1] | {"time": None} == {
        "time": None, "kind": "health", "attempt": 1, "rule": "non_finite", "step": 1, "clone": store.clone_id,
        "attempt_key": attempt.name}


def test_only_the_main_process_writes(fresh_tracker, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(tmp_path))
    monkeypatch.setenv("RANK", "1")
    tracker.log(1, loss=1.0)
    assert not tracker.active() and not (tmp_path / "metrics.jsonl").exists()


def test_init_opens_an_attempt_outside_a_launch(fresh_tracker, tmp_path):
    store = Store.init(tmp_path)
    store.runs.create("nsd_002", hypothesis="h")
    folder = tracker.init("nsd_002", root=tmp_path)
    tracker.log(1, loss=0.5)
    tracker.finish()
    ended = store.attempt_dir("nsd_002", 1)  # ran out of git's reach, then moved into logs/ when it ended
    assert folder.name == ended.name and ended.parent == store.run_dir("nsd_002") / "attempts"
    assert store.attempts.load("nsd_002", 1)["status"] == "finished"
    assert (ended / "metrics.jsonl").read_text().count("\n") == 1


def test_metrics_are_mirrored_to_an_offline_wandb_run(tmp_path):
    store = Store.init(tmp_path)
    store.runs.create("dia_001", hypothesis="h")
    attempt = store.attempts.begin("dia_001", command=["x"], pid=os.getpid())
    env = lab_env(LAB_ATTEMPT_DIR=str(attempt), LAB_WANDB="1", WANDB_RUN_ID="abcd1234", WANDB_PROJECT="proj",
                  WANDB_DIR=str(tmp_path / "wb"))
    script = ("from lab import tracker\ntracker.log(1, loss=0.5)\ntracker.summary(best=0.5)\n"
              "tracker.event('health', rule='grad_explosion', message='spike', step=1)\ntracker.finish()\n")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    folders = list((tmp_path / "wb" / "wandb").glob("offline-run-*-abcd1234"))
    assert len(folders) == 1 and list(folders[0].glob("*.wandb"))
    assert (attempt / "metrics.jsonl").exists()
    assert store.events.of("dia_001")[-1]["rule"] == "grad_explosion", "the W&B alert path records the event"


@pytest.mark.parametrize("ending, status, exit_code", [
    ("raise RuntimeError('diverged')", "failed", 1),
    ("pass", "finished", 0),
])
def test_an_init_attempt_records_how_the_script_ended(tmp_path, ending, status, exit_code):
    store = Store.init(tmp_path)
    store.runs.create("nsd_003", hypothesis="h")
    script = f"from lab import tracker\ntracker.init('nsd_003', root={str(tmp_path)!r})\ntracker.log(1, loss=0.5)\n"
    result = subprocess.run([sys.executable, "-c", script + ending], env=lab_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == exit_code
    record = store.attempts.load("nsd_003", 1)
    assert (record["status"], record["exit_code"]) == (status, exit_code)
    assert ("RuntimeError: diverged" in result.stderr) == (status == "failed"), "the traceback is still printed"
    assert [event["kind"] for event in store.events.of("nsd_003")][-1] == f"attempt_{status}"
