"""What reading derives from the records (`lab.records.derived`, .git/lab/derived.sqlite) is a cache: pages and
answers are the same with it or without it, a changed record is derived again, and a damaged database is
replaced without a word."""

import json
import shutil
import sys
import time

import pandas as pd
import pytest

from lab import api

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


@pytest.fixture
def noted(script_lab):
    """Two launched runs, the second from the first, and its pages rendered once (the derived values kept)."""
    lab = script_lab
    lab("new-run", "exp_001", "--hypothesis", "a baseline LR", "--group", "lr")
    lab("launch", "exp_001", "--no-commit", "--", sys.executable, "train.py")
    lab("new-run", "exp_002", "--from", "exp_001", "--hypothesis", "a higher LR", "--group", "lr")
    lab("launch", "exp_002", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.5")
    lab("render")
    return lab


def pages(repo) -> dict[str, bytes]:
    return {str(path.relative_to(repo)): path.read_bytes() for path in sorted((repo / "logs").rglob("*"))
            if path.is_file() and path.suffix in (".md", ".svg", ".html")}


def derived_file(repo):
    return repo / ".git" / "lab" / "derived.sqlite"


def test_pages_and_the_table_are_the_same_with_or_without_the_derived_values(noted):
    repo = noted.repo
    assert derived_file(repo).stat().st_size > 0
    before, table = pages(repo), api.runs(root=repo)
    derived_file(repo).unlink()
    noted("render")
    assert pages(repo) == before and len(before) > 4
    pd.testing.assert_frame_equal(api.runs(root=repo), table)


def test_a_record_that_changed_is_derived_again(noted):
    repo = noted.repo
    assert api.runs(root=repo).set_index("id").loc["exp_001", "val/loss.best"] == pytest.approx(0.06)
    metrics = next((repo / "logs/runs/exp_001/attempts").iterdir()) / "metrics.jsonl"
    with open(metrics, "a") as stream:
        stream.write(json.dumps({"step": 25, "time": 1.0, "val/loss": 0.01}) + "\n")
    row = api.runs(root=repo).set_index("id").loc["exp_001"]
    assert (row["val/loss.best"], row["val/loss.best_step"]) == (0.01, 25)
    noted("report", "exp_001")
    assert "0.01" in (repo / "logs/reports/exp_001.md").read_text()


@pytest.mark.parametrize("damage", [b"not a database at all", b""])
def test_a_damaged_database_is_made_again_without_a_word(noted, damage):
    repo = noted.repo
    table = api.runs(root=repo)
    derived_file(repo).write_bytes(damage)
    listed = noted("runs", "--columns", "id,val/loss.best", "--format", "json")
    assert listed.stderr == "" and [row["id"] for row in json.loads(listed.stdout)] == ["exp_001", "exp_002"]
    pd.testing.assert_frame_equal(api.runs(root=repo), table)
    assert derived_file(repo).read_bytes()[:16] == b"SQLite format 3\x00"


def test_a_run_damaged_after_its_row_was_kept_reads_unreadable(noted, capsys):
    repo = noted.repo
    api.runs(root=repo)
    attempt = next((repo / "logs/runs/exp_002/attempts").iterdir()) / "attempt.json"
    attempt.write_text("{torn")
    capsys.readouterr()
    rows = api.runs(root=repo).set_index("id")
    assert rows.loc["exp_002", "status"] == "unreadable" and rows.loc["exp_001", "status"] == "finished"
    assert capsys.readouterr().err.startswith("lab: warning: run exp_002 is unreadable: ")


def test_an_attempt_pulled_in_before_others_renumbers_them_with_or_without_the_derived_values(noted):
    repo = noted.repo
    time.sleep(1.1)  # Test 2 starts a second after Test 1, so that a key can sort between theirs
    noted("launch", "exp_001", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.5")  # Test 2, the best
    noted("render")
    assert api.runs(root=repo).set_index("id").loc["exp_001", "attempt"] == 2
    attempts = repo / "logs/runs/exp_001/attempts"
    first, second = sorted(attempts.iterdir())
    pulled = attempts / f"{second.name.split('-')[0]}-00000000"  # another clone's, started between: Test 2 now
    assert first.name < pulled.name < second.name
    shutil.copytree(second, pulled)
    record = json.loads((pulled / "attempt.json").read_text())
    (pulled / "attempt.json").write_text(json.dumps({**record, "key": pulled.name, "clone": "00000000"}))
    rows = [json.loads(line) for line in (pulled / "metrics.jsonl").read_text().splitlines()]
    (pulled / "metrics.jsonl").write_text("".join(
        json.dumps({**row, **{name: value + 1.0 for name, value in row.items() if "/" in name}}) + "\n"
        for row in rows))
    kept = api.runs(root=repo)
    noted("report", "exp_001")
    report = (repo / "logs/reports/exp_001.md").read_text()
    derived_file(repo).unlink()
    fresh = api.runs(root=repo)
    noted("report", "exp_001")
    assert fresh.set_index("id").loc["exp_001", "attempt"] == 3
    pd.testing.assert_frame_equal(kept, fresh)
    assert report == (repo / "logs/reports/exp_001.md").read_text()


def test_an_attempt_removed_before_the_headline_renumbers_it_with_or_without_the_derived_values(noted):
    repo = noted.repo
    noted("launch", "exp_001", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.5")
    assert api.runs(root=repo).set_index("id").loc["exp_001", "attempt"] == 2
    shutil.rmtree(sorted((repo / "logs/runs/exp_001/attempts").iterdir())[0])
    listed = noted("runs", "--columns", "id,attempt,val/loss.best", "--where", "id == 'exp_001'", "--format", "json")
    assert json.loads(listed.stdout) == [{"id": "exp_001", "attempt": 1, "val/loss.best": 0.02}]
