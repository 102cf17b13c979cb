"""Asking the lab: the runs table from Python (`lab.api.runs`, `lab.api.history`), `lab runs --where --sort
--columns --format`, its filters, and `lab export` read back without the lab."""

import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lab import api
from lab.runs import table

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

HOLD = """import sys, time
from pathlib import Path
from lab import tracker
tracker.init("exp_004")
tracker.log(3, **{"val/loss": 0.7})
Path("logged").write_text("1")
while not Path("release").exists():
    time.sleep(0.05)
"""


@pytest.fixture
def asked(script_lab):
    """exp_001 (lr 0.1, group lr, tags fast,cpu), exp_002 from it (lr 0.5, noted), exp_003 never launched."""
    lab = script_lab
    lab("new-run", "exp_001", "--hypothesis", "a baseline LR", "--group", "lr", "--tag", "fast", "--tag", "cpu")
    lab("launch", "exp_001", "--no-commit", "--", sys.executable, "train.py")
    lab("new-run", "exp_002", "--from", "exp_001", "--hypothesis", "a higher LR trains faster", "--group", "lr")
    lab("launch", "exp_002", "--no-commit", "--note", "lr 0.5", "--", sys.executable, "train.py", "--lr", "0.5")
    lab("note", "exp_002", "--findings", "the loss plateaus early")
    lab("new-run", "exp_003", "--hypothesis", "dropout 0.1 regularises")
    return lab


def test_a_row_per_run_holds_its_record_its_config_and_each_metric(asked):
    runs = api.runs(root=asked.repo).set_index("id")
    assert list(runs.columns[:len(table.RECORD_COLUMNS) - 1]) == list(table.RECORD_COLUMNS)[1:]
    assert {name: str(runs[name].dtype) for name in ("attempt", "created", "duration_s", "group", "config.lr",
                                                      "config.hidden", "val/loss.best", "val/loss.best_step")} == {
        "attempt": "Int64", "created": "datetime64[s, UTC]", "duration_s": "float64", "group": "str",
        "config.lr": "float64", "config.hidden": "Int64",  # an integer stays one where exp_003 has no value
        "val/loss.best": "float64", "val/loss.best_step": "Int64"}
    first, second, unlaunched = runs.loc["exp_001"], runs.loc["exp_002"], runs.loc["exp_003"]
    assert (first["status"], first["tags"], first["attempt"], first["config.lr"], first["config.hidden"]) == \
        ("finished", "fast,cpu", 1, 0.1, 32)
    assert first["val/loss.best"] == pytest.approx(1 / 20 + 0.01) and first["val/loss.best_step"] == 20
    assert second["val/loss.final"] == pytest.approx(1 / 100 + 0.01) and second["parent"] == "exp_001"
    assert second["note"] == "lr 0.5" and second["verdict"] == "supported" and first["duration_s"] > 0
    assert unlaunched["status"] == "created" and unlaunched["attempts"] == 0 and unlaunched["attempt"] is pd.NA
    assert runs["val/loss.best"].isna().tolist() == [False, False, True]


@pytest.fixture
def running(asked):
    """`asked` with exp_004's attempt running: its script logged val/loss 0.7 at step 3 and waits to be released."""
    asked("new-run", "exp_004", "--hypothesis", "still running")
    (asked.repo / "hold.py").write_text(HOLD)
    process = subprocess.Popen([sys.executable, "hold.py"], cwd=asked.repo)
    deadline = time.monotonic() + 60
    while not (asked.repo / "logged").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    yield asked
    (asked.repo / "release").write_text("1")
    process.wait(timeout=60)


def test_a_running_attempt_counts_with_its_latest_row(running):
    row = api.runs(where="id == 'exp_004'", root=running.repo).iloc[0]
    assert (row["status"], row["val/loss.final"], row["val/loss.best_step"]) == ("running", 0.7, 3)
    assert api.history(["exp_004"], root=running.repo)[["step", "metric", "value"]].values.tolist() == \
        [[3, "val/loss", 0.7]]


def test_lab_runs_answers_a_question_with_filters_a_sort_and_the_columns_asked(asked):
    answer = asked("runs", "--group", "lr", "--where", "val/loss.best < 0.5 and config.lr >= 0.1",
                   "--sort", "val/loss.best", "--columns", "id,config.lr,val/loss.best,verdict", "--format", "csv")
    header, *rows = csv.reader(answer.stdout.splitlines())
    assert header == ["id", "config.lr", "val/loss.best", "verdict"]
    assert [(row[0], float(row[1]), round(float(row[2]), 6), row[3]) for row in rows] == [
        ("exp_002", 0.5, 0.02, "supported"), ("exp_001", 0.1, 0.06, "")]  # CSV keeps every digit
    rows = json.loads(asked("runs", "--sort=-val/loss.best", "--limit", "1", "--columns", "id,attempt",
                            "--format", "json").stdout)
    assert rows == [{"id": "exp_001", "attempt": 1}]
    shown = asked("runs", "--where", "config.hidden == 32", "--columns", "id,config.*").stdout.splitlines()
    assert shown[0].split() == ["ID", "CONFIG.HIDDEN", "CONFIG.LR"] and len(shown) == 3
    markdown = asked("runs", "--status", "created,finished", "--format", "md", "--columns", "id,status").stdout
    assert markdown.splitlines()[:3] == ["| id | status |", "|---|---|", "| exp_001 | finished |"]
    attempts = asked("runs", "--attempts", "--format", "jsonl", "--columns", "id,attempt,exit_code").stdout
    assert [json.loads(line) for line in attempts.splitlines()] == [
        {"id": "exp_001", "attempt": 1, "exit_code": 0}, {"id": "exp_002", "attempt": 1, "exit_code": 0}]


@pytest.mark.parametrize("options, listed", [
    (["--status", "created,failed"], ["exp_003"]),
    (["--tag", "fast"], ["exp_001"]),
    (["--tag", "fast", "--tag", "gpu"], []),
    (["--search", "PLATEAUS"], ["exp_002"]),  # a note's words, any case
    (["--search", "dropout"], ["exp_003"]),
    (["--search", "LR 0.5"], ["exp_002"]),  # an attempt's note (lab launch --note)
    (["--until", "2000-01-01"], []),
    (["--since", "2000-01-01", "--where", "attempts == 0"], ["exp_003"]),
])
def test_lab_runs_filters_by_status_tag_text_and_day(asked, options, listed):
    rows = json.loads(asked("runs", *options, "--format", "json").stdout)
    assert [row["id"] for row in rows] == listed


@pytest.mark.parametrize("options, message", [
    (["--where", "val/los.best < 1"], "--where: no column 'val/los.best'; did you mean val/loss.best"),
    (["--where", "val/loss.best <"], "--where 'val/loss.best <' cannot be read: "),
    (["--sort", "confg.lr"], "--sort: no column 'confg.lr'; did you mean config.lr"),
    (["--columns", "id,nope.*"], "--columns: no column matches 'nope.*'"),
    (["--status", "finshed"], "--status finshed: a run's status is one of created, running, finished"),
    (["--limit", "-1"], "--limit -1: give at least 1 row"),  # not every row but the last
    (["--limit", "0"], "--limit 0: give at least 1 row"),
    (["--where", "attempts"], "--where 'attempts' is not a condition on rows"),  # not rows picked by label
    (["--where", "attempts + 1"], "--where 'attempts + 1' is not a condition on rows"),
    (["--where", "val/loss.best"], "--where 'val/loss.best' is not a condition on rows"),
    (["--where", "True"], "--where 'True' is not a condition on rows"),
    (["--where", "`val/los.best` < 1"], "--where: no column 'val/los.best'; did you mean val/loss.best"),
])
def test_a_question_the_table_cannot_answer_is_one_line(asked, options, message):
    result = asked("runs", *options, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"lab: error: {message}"), result.stderr


@pytest.mark.parametrize("where, listed", [
    ("`val/loss.best` < 0.05", ["exp_002"]),  # a backticked name is read like a bare one
    ("`config.lr` == 0.1 and `attempts` == 1", ["exp_001"]),
    ("title.str.contains('higher lr', case=False)", ["exp_002"]),  # a call's keyword is no column
    ("hypothesis.str.contains('LR', regex=False, na=False)", ["exp_001", "exp_002"]),
])
def test_a_where_takes_backticked_names_and_keyword_arguments(asked, where, listed):
    rows = json.loads(asked("runs", "--where", where, "--format", "json").stdout)
    assert [row["id"] for row in rows] == listed


@pytest.mark.parametrize("options", [[], ["--limit", "100"], ["--tag", "fast"], ["--format", "jsonl"]])
def test_json_rows_keep_tags_a_list_with_any_option(asked, options):
    answer = asked("runs", "--json", *options).stdout
    rows = json.loads(answer) if "jsonl" not in options else [json.loads(line) for line in answer.splitlines()]
    assert rows[0]["id"] == "exp_001" and rows[0]["tags"] == ["fast", "cpu"]
    assert all(isinstance(row["tags"], list) for row in rows)


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_json_keeps_every_digit_of_a_number(asked, output):
    kept = api.runs(root=asked.repo).set_index("id").loc["exp_001", "val/loss.best"]
    answer = asked("runs", "--where", "id == 'exp_001'", "--columns", "id,val/loss.best", "--format", output).stdout
    rows = json.loads(answer) if output == "json" else [json.loads(answer)]
    assert rows[0]["val/loss.best"] == kept and len(repr(kept)) > 12


def test_the_python_api_takes_one_name_or_a_list(asked):
    def ids(**options):
        return api.runs(root=asked.repo, **options)["id"].tolist()

    assert ids(status="created") == ids(status=["created"]) == ["exp_003"]
    assert ids(status="created,finished") == ids(status=("created", "finished")) == ["exp_001", "exp_002", "exp_003"]
    assert ids(tags="fast") == ids(tags=["fast"]) == ["exp_001"]
    assert ids(sort=["-val/loss.best"]) == ids(sort="-val/loss.best") == ["exp_001", "exp_002", "exp_003"]
    assert list(api.runs(root=asked.repo, columns=["id", "val/loss.best"]).columns) == ["id", "val/loss.best"]
    one = api.history("exp_001", metrics="val/loss", root=asked.repo)
    assert one.equals(api.history(["exp_001"], metrics=["val/loss"], root=asked.repo)) and len(one) == 4


def test_history_gives_metric_rows_long_or_wide(asked):
    long = api.history(["exp_001"], metrics=["val/loss"], root=asked.repo)
    assert list(long.columns) == ["run", "attempt", "step", "metric", "value"]
    assert long["step"].tolist() == [5, 10, 15, 20] and set(long["metric"]) == {"val/loss"}
    wide = api.history(["exp_001", "exp_002"], wide=True, root=asked.repo)
    assert list(wide.columns) == ["run", "attempt", "step", "train/loss", "val/loss"] and len(wide) == 40
    assert wide.loc[(wide["run"] == "exp_002") & (wide["step"] == 20), "val/loss"].item() == pytest.approx(0.02)


@pytest.mark.parametrize("output", ["parquet", "csv"])
def test_an_export_reads_back_without_the_lab(asked, tmp_path, output):
    written = asked("export", "--out", str(tmp_path / "out"), "--format", output).stdout.split()
    assert [path.rsplit("/", 1)[1] for path in written] == [f"{name}.{output}" for name in
                                                            ("runs", "attempts", "metrics")]
    if output == "csv":
        rows = list(csv.DictReader(open(tmp_path / "out" / "runs.csv")))
        assert [row["id"] for row in rows] == ["exp_001", "exp_002", "exp_003"] and rows[1]["config.lr"] == "0.5"
        return
    import pyarrow.parquet as pq

    back = pd.read_parquet(tmp_path / "out" / "runs.parquet")  # the dtypes of lab.api.runs come back
    assert {name: str(back[name].dtype) for name in ("attempt", "exit_code", "created", "config.hidden")} == {
        "attempt": "Int64", "exit_code": "Int64", "config.hidden": "Int64",
        "created": "datetime64[ms, UTC]"}  # Parquet has no unit of seconds: the times come back in ms
    runs = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    assert [row["id"] for row in runs] == ["exp_001", "exp_002", "exp_003"] and runs[0]["val/loss.best_step"] == 20
    metrics = pq.read_table(tmp_path / "out" / "metrics.parquet")
    assert metrics.column_names == ["run", "attempt", "step", "metric", "value"] and metrics.num_rows == 2 * 24
    import duckdb
    best = duckdb.sql(f"select run, min(value) from '{tmp_path / 'out' / 'metrics.parquet'}' "
                      "where metric = 'val/loss' group by run order by run").fetchall()
    assert [(run, round(value, 4)) for run, value in best] == [("exp_001", 0.06), ("exp_002", 0.02)]


def test_the_documented_export_stays_out_of_git(asked):
    from lab.cli import EXAMPLES

    for example in EXAMPLES["export"].split("|"):
        asked(*shlex.split(example.split("(")[0])[1:])  # an example without its comment
    assert subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=asked.repo, text=True,
                          capture_output=True, check=True).stdout.count("exports/") == 0
    assert "lab export --out artefacts/exports/" in (Path(__file__).parents[2] / "README.md").read_text()


def test_lab_show_of_a_running_attempt_gives_its_step_and_latest_metrics(running):
    assert "    at step 3: val/loss=0.7" in running("show", "exp_004").stdout.splitlines()
    shown = json.loads(running("show", "exp_004", "--json").stdout)
    assert shown["attempts"][0]["latest"] == {"step": 3, "metrics": {"val/loss": 0.7}}


def test_a_newline_a_user_typed_keeps_each_row_on_one_line_and_an_empty_answer_prints_nothing(asked):
    asked("new-run", "exp_004", "--hypothesis", "two lines:\nthe second")
    for output in ("md", "table"):
        shown = asked("runs", "--columns", "id,hypothesis", "--format", output).stdout.splitlines()
        assert len(shown) == (1 if output == "table" else 2) + 4 and any("two lines: the second" in line
                                                                          for line in shown)
    assert asked("runs", "--where", "id == 'none'", "--format", "jsonl").stdout == ""


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14, UTC-11
def test_since_and_until_read_days_in_the_labs_zone_as_the_daily_pages_do(script_lab, zone):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings = json.loads((script_lab.repo / "lab.json").read_text())
    (script_lab.repo / "lab.json").write_text(json.dumps({**settings, "timezone": zone}))
    script_lab("new-run", "exp_001", "--hypothesis", "h")
    day = datetime.now(ZoneInfo(zone)).date().isoformat()
    if datetime.now(ZoneInfo(zone)).strftime("%H:%M") == "23:59":
        pytest.skip("the day may turn between the record and the question")
    listed = script_lab("runs", "--since", day, "--until", day, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in listed] == ["exp_001"]
    assert Path(script_lab("log").stdout.split()[-1]).stem == day  # the daily page of the same day
