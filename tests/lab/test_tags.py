"""Tags: given at `lab new-run --tag`, changed after with `lab tag ID +x -y`, shown by `lab show` and `lab runs`,
filtered by `lab runs --tag`, and handed to W&B with each launch."""

import json
import sys

import pytest
from lab_testing import git

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


def test_tags_change_after_the_fact_and_show_where_runs_are_listed(lab, project):
    lab("new-run", "exp_001", "--hypothesis", "h", "--tag", "draft", "--tag", "cpu", "--tag", "draft")
    assert lab("tag", "exp_001", "+best", "-draft", "sweep").stdout == "exp_001: cpu, best, sweep\n"
    missing = lab("tag", "exp_001", "-nothing")  # removing a tag the run does not have
    assert missing.stdout == "exp_001: cpu, best, sweep\n"
    assert missing.stderr == "lab: warning: exp_001 has no tag 'nothing': nothing removed\n"
    assert "tags: cpu, best, sweep" in lab("show", "exp_001").stdout.splitlines()
    listed = lab("runs").stdout.splitlines()
    assert listed[0].split()[6] == "TAGS" and listed[1].split()[7] == "cpu,best,sweep"  # CREATED is a day and a time
    assert json.loads(lab("runs", "--json").stdout)[0]["tags"] == ["cpu", "best", "sweep"]
    assert [row["id"] for row in json.loads(lab("runs", "--tag", "best", "--format", "json").stdout)] == ["exp_001"]
    events = [json.loads(line) for line in (project / "logs/runs/exp_001/events.jsonl").read_text().splitlines()]
    assert [(e["added"], e["removed"]) for e in events if e["kind"] == "tags"] == [(["best", "sweep"], ["draft"])]
    assert git(project, "log", "-1", "--format=%s").startswith("lab records: tags of ")
    assert git(project, "status", "--porcelain", "logs") == ""


@pytest.mark.parametrize("args, message", [
    (["tag", "exp_001"], "nothing to tag: give +TAG to add or -TAG to remove"),
    (["tag", "exp_001", "+two words"], "tag 'two words': a tag is 1 to 64 characters without spaces or commas"),
    (["tag", "exp_001", "a,b"], "tag 'a,b': a tag is 1 to 64"),
    (["new-run", "exp_002", "--hypothesis", "h", "--tag", "x" * 65], "a tag is 1 to 64 characters"),
    (["tag", "exp_009", "+x"], "exp_009"),
    (["tag", "exp_001", "+--weird"], "tag '--weird': a tag is 1 to 64 characters without spaces or commas, and does "
                                     "not start with + or -"),
    (["tag", "exp_001", "--help-me"], "tag '-help-me': a tag"),
])
def test_a_tag_that_cannot_be_one_is_refused_in_one_line(lab, args, message):
    lab("new-run", "exp_001", "--hypothesis", "h")
    result = lab(*args, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (lab.repo / "logs/runs/exp_002").exists()


@pytest.mark.wandb
def test_a_launch_hands_the_tags_to_wandb(lab):
    lab("new-run", "exp_001", "--hypothesis", "h", "--tag", "baseline")
    lab("tag", "exp_001", "+cpu")
    shown = lab("launch", "exp_001", "--no-commit", "--", sys.executable, "-c",
                "import wandb; run = wandb.init(); print('tags', ','.join(run.tags)); run.finish()")
    assert "tags baseline,cpu" in shown.stdout.splitlines()  # the W&B run the script opened carries them
