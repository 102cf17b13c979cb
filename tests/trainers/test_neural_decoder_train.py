"""The neural_decoder family end to end through `lab launch`: learning, resume, two processes, live health."""

import json
import re
from pathlib import Path

import pytest
import lab_testing

from lab.records.store import Store

git = lab_testing.git


@pytest.fixture
def nd_lab(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "researcher@example.org")
    git(repo, "config", "user.name", "Researcher")

    def run(*args, check=True):
        result = lab_testing.run_lab(*args, cwd=repo, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"lab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    run("init", "--prefix", "nsd=neural_decoder")
    run.repo = repo
    return run


def rows_of(repo, run_id, attempt):
    path = Store(repo).attempt_dir(run_id, attempt) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def record_of(repo, run_id, attempt, name="attempt.json"):
    return json.loads((Store(repo).attempt_dir(run_id, attempt) / name).read_text())


@pytest.mark.slow
def test_tiny_preset_brings_validation_per_well_down(nd_lab):
    nd_lab("new-run", "nsd_001", "--preset", "tiny", "--hypothesis", "The tiny recipe learns the synthetic data")
    nd_lab("launch", "nsd_001")
    per = [row["val/per"] for row in rows_of(nd_lab.repo, "nsd_001", 1) if "val/per" in row]
    assert len(per) == 6
    assert per[0] > 0.55, "the first evaluation comes before the model has learnt much"
    assert min(per) < 0.5 and min(per) < per[0] - 0.2
    summary = record_of(nd_lab.repo, "nsd_001", 1, "summary.json")
    assert summary["best_value"] == min(per) and summary["data"]["train_items"] > 0
    checkpoints = record_of(nd_lab.repo, "nsd_001", 1)["checkpoints"]
    assert checkpoints["best"]["value"] == min(per)
    assert (Path(record_of(nd_lab.repo, "nsd_001", 1)["artefacts"]) / "checkpoints" / "last.pt").exists()


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(nd_lab):
    nd_lab("new-run", "nsd_002", "--preset", "tiny", "--hypothesis", "h", "--set", "train.max_steps=12",
           "--set", "train.eval_every=6")
    nd_lab("launch", "nsd_002")
    nd_lab("launch", "nsd_002", "--resume", "--set", "train.max_steps=20")
    second = record_of(nd_lab.repo, "nsd_002", 2)
    assert second["resume_from"] == record_of(nd_lab.repo, "nsd_002", 1)["checkpoints"]["last"]["path"]
    steps = [row["step"] for row in rows_of(nd_lab.repo, "nsd_002", 2) if "train/loss" in row]
    assert steps == list(range(13, 21))
    evaluation = [row for row in rows_of(nd_lab.repo, "nsd_002", 2) if "val/loss" in row][-1]
    assert evaluation["val/utterances"] > 0 and evaluation["val/loss_se"] > 0
    nd_lab("report", "nsd_002", "--attempt", "2")
    page = (nd_lab.repo / "logs/reports/nsd_002.md").read_text()
    assert "- Resumed: this stream continues Test 1" in page
    table = page.split("## Training Metrics")[1].split("###")[0]
    assert [int(line.split("|")[1]) for line in table.splitlines()[3:] if line.startswith("| ")][:3] == [6, 12, 18]
    assert re.search(r"- Evaluation: evaluated on \d+ utterances, standard error [\d.]+", page)  # of val/per


def test_two_processes_share_one_attempt(nd_lab):
    nd_lab("new-run", "nsd_003", "--preset", "tiny", "--hypothesis", "h", "--set", "train.max_steps=6",
           "--set", "train.eval_every=3")
    nd_lab("launch", "nsd_003", "--processes", "2")
    steps = [row["step"] for row in rows_of(nd_lab.repo, "nsd_003", 1) if "train/loss" in row]
    assert steps == list(range(1, 7)), "only the main process writes records"
    assert record_of(nd_lab.repo, "nsd_003", 1, "summary.json")["processes"] == 2


def test_live_health_stops_a_diverging_run(nd_lab):
    nd_lab("new-run", "nsd_004", "--preset", "tiny", "--hypothesis", "LR 0.5 is fine", "--set", "optim.lr=0.5",
           "--set", "train.max_steps=200", "--set", 'train.stop_on=["grad_explosion"]')
    result = nd_lab("launch", "nsd_004")
    summary = record_of(nd_lab.repo, "nsd_004", 1, "summary.json")
    assert summary["stopped_early"] and summary["steps"] < 200
    events = [json.loads(line) for line in (nd_lab.repo / "logs/runs/nsd_004/events.jsonl").read_text().splitlines()]
    fired = [e for e in events if e["kind"] == "health" and e.get("rule") == "grad_explosion"]
    assert len(fired) == 1 and fired[0]["attempt"] == 1 and fired[0]["evidence"]
    assert "health [grad_explosion]" in result.stdout + result.stderr


def test_missing_data_path_is_a_one_line_error(nd_lab):
    nd_lab("new-run", "nsd_005", "--preset", "tiny", "--hypothesis", "h")
    commits = git(nd_lab.repo, "rev-list", "--all")
    result = nd_lab("launch", "nsd_005", "--set", "data.source=/no/such/competitionData.pkl", check=False)
    assert result.returncode == 2
    assert result.stderr == ("lab: error: data.source=/no/such/competitionData.pkl: no such file or folder; point it "
                             "at your data with lab launch nsd_005 --set KEY=PATH (nothing was launched)\n")
    assert not (nd_lab.repo / "logs/runs/nsd_005/attempts").exists() or \
        not list((nd_lab.repo / "logs/runs/nsd_005/attempts").iterdir())  # checked before the attempt exists
    assert git(nd_lab.repo, "rev-list", "--all") == commits  # and before the launch commit


def test_two_stage_recipe_starts_from_the_parents_best_weights(nd_lab):
    nd_lab("new-run", "nsd_006", "--preset", "tiny", "--hypothesis", "stage 1", "--set", "train.max_steps=6",
           "--set", "train.eval_every=3")
    nd_lab("launch", "nsd_006")
    best = record_of(nd_lab.repo, "nsd_006", 1)["checkpoints"]["best"]["path"]
    created = nd_lab("new-run", "nsd_007", "--from", "nsd_006", "--init-from", "best", "--hypothesis", "stage 2")
    config = json.loads((nd_lab.repo / "logs/runs/nsd_007/config.json").read_text())
    assert config["train"]["init_from"] == best and "created nsd_007" in created.stdout
    launched = nd_lab("launch", "nsd_007")
    assert f"init_from {best} (lab): loaded" in launched.stdout
    events = [json.loads(line) for line in (nd_lab.repo / "logs/runs/nsd_007/events.jsonl").read_text().splitlines()]
    report = next(event for event in events if event["kind"] == "init_from")
    assert report["loaded"] == report["total"] and not report["missing"] and not report["mismatched"]
    refused = nd_lab("new-run", "nsd_008", "--preset", "tiny", "--init-from", "best", "--hypothesis", "h", check=False)
    assert refused.returncode == 2 and "give --from RUN" in refused.stderr
