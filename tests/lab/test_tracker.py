"""The tracker client (`from lab import tracker`) inside a script's process: a no-op outside a launch, writes to its
attempt, mirrors to W&B, and never raises into the script on bad input."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lab_testing import lab_env

from lab import tracker
from lab.records.files import read_jsonl
from lab.records.store import Store


@pytest.fixture
def fresh_tracker(monkeypatch):
    for key in [k for k in os.environ if k.startswith(("LAB_", "WANDB_")) or k in ("RANK", "LOCAL_RANK")]:
        monkeypatch.delenv(key)
    tracker.finish()
    yield
    tracker.finish()


@pytest.mark.light
def test_outside_a_launch_every_call_is_a_no_op(fresh_tracker, tmp_path):
    tracker.log(1, loss=1.0)
    tracker.summary(best=1)
    tracker.event("health", rule="x")
    assert not tracker.active() and tracker.attempt_dir() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.light
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


@pytest.mark.light
def test_only_the_main_process_writes(fresh_tracker, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(tmp_path))
    monkeypatch.setenv("RANK", "1")
    tracker.log(1, loss=1.0)
    assert not tracker.active() and not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.light
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


@pytest.mark.wandb
@pytest.mark.light
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


@pytest.mark.light
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


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def metric_rows(lab, run_id: str) -> list[dict]:
    path = attempt_folder(lab, run_id) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_bad_step_skips_its_row_with_one_warning_and_a_numeric_string_is_a_number(lab):
    lab("new-run", "l_002", "--hypothesis", "h")
    code = ("from lab import tracker\ntracker.log(None, loss=1.0)\ntracker.log('7', loss=0.7)\n"
            "tracker.log(2.5, loss=0.6)\ntracker.log('abc', loss=0.5)\ntracker.log(8.0, loss=0.4)\n"
            "tracker.log(9, **{'loss': 0.3, 'note': 'text'})\nprint('done')\n")
    result = lab("launch", "l_002", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.endswith("done\n") and "Traceback" not in result.stdout
    assert [(row["step"], row["loss"]) for row in metric_rows(lab, "l_002")] == [(7, 0.7), (8, 0.4), (9, 0.3)]
    assert result.stdout.count("skips a row with step None") == 1 and result.stdout.count("skips a row") == 1
    assert result.stdout.count("lab: warning") == 2  # the bad steps once, the text value once


def test_a_tracker_call_that_fails_never_raises_into_the_script(lab):
    lab("new-run", "l_003", "--hypothesis", "h")
    code = ("from lab import tracker\ntracker.config(42)\ntracker.config(42)\ntracker.log(1, loss=0.5)\n"
            "print('done')\n")
    result = lab("launch", "l_003", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.endswith("done\n") and result.stdout.count("tracker.config is skipped (TypeError") == 1
    assert metric_rows(lab, "l_003")[0]["loss"] == 0.5


def folder_of(repo: Path, run_id: str, number: int) -> Path:
    """Test `number`'s folder: logs/runs/<id>/attempts/<start>-<clone>/ once ended, in .git/lab while running."""
    return Store(repo).attempt_dir(run_id, number)


def test_odd_metric_values_cost_a_warning_not_the_script(lab, repo):
    lab("new-run", "m_001", "--hypothesis", "h")
    script = repo / "odd.py"
    script.write_text(
        "import numpy as np\nfrom lab import tracker\n"
        "tracker.log(1, **{'train/loss': 1.0, 'pair': np.array([1.0, 2.0]), 'huge': 10**400})\n"
        "tracker.log(10**30, **{'train/loss': 0.5})\n"
        "tracker.log(2, **{'train/loss': 0.25, 'pair': np.array([1.0, 2.0])})\n"
        "print('script went on')\n")
    result = lab("launch", "m_001", "--", sys.executable, "odd.py")
    assert "script went on" in result.stdout
    assert result.stdout.count("skips values that are not single numbers: pair") == 1
    assert "skips a row with step 1000000000000000000000000000000" in result.stdout
    rows = list(read_jsonl(folder_of(repo, "m_001", 1) / "metrics.jsonl"))
    assert [(row["step"], row["train/loss"], row.get("huge")) for row in rows] == [(1, 1.0, "inf"), (2, 0.25, None)]
    assert lab("report", "m_001").returncode == 0 and lab("doctor", "m_001").returncode == 0


def test_a_step_logged_twice_is_one_row_with_the_last_values(lab):
    lab("new-run", "s_001", "--hypothesis", "h")
    code = ("from lab import tracker\n"
            "for step, (train, val) in enumerate([(1.0, 0.5), (0.8, 0.4), (0.6, 0.3), (0.4, 0.2)], start=2):\n"
            "    tracker.log(step, **{'train/loss': train})\n"
            "    tracker.log(step, **{'val/loss': val})\n"
            "tracker.log(5, **{'val/loss': 0.25})\n")  # a corrected value
    lab("launch", "s_001", "--no-commit", "--", sys.executable, "-c", code)
    doctor = lab("doctor", "s_001").stdout
    assert "(step 5) to" not in doctor and "gap" not in doctor
    report = Path(lab("report", "s_001").stdout.strip().splitlines()[-1]).read_text()
    rows = [line for line in report.splitlines() if line.startswith("| 5 |")]
    assert len(rows) == 1 and "| 0.4 | 0.25 |" in rows[0] and "gap widening" not in report


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def test_an_init_attempt_stopped_by_sigterm_reads_killed(lab):
    lab("new-run", "k_004", "--hypothesis", "h")
    code = "import time\nfrom lab import tracker\ntracker.init('k_004')\nprint('ready', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-u", "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, text=True,
                               env=lab_env())
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM
    assert attempt_of(lab, "k_004")["status"] == "killed"


def test_a_mirror_that_cannot_record_that_wandb_never_started_still_drains_and_says_so(monkeypatch, capsys):
    import threading

    from lab.tracking.tracker import WandbMirror

    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    monkeypatch.setitem(sys.modules, "wandb", None)  # W&B cannot start

    def mirroring(on: bool) -> None:
        if not on:
            raise OSError(28, "No space left on device")

    mirror = WandbMirror(on_mirroring=mirroring)
    mirror.call("log", {"loss": 1.0}, step=1)
    mirror.finish()
    assert died == [] and not mirror._worker.is_alive()
    said = capsys.readouterr().err
    assert "W&B is off for the rest of this run" in said and "No space left on device" in said
