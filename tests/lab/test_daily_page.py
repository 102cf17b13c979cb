"""The daily research log (`lab log`): the reference shape, runs continued over days, the day's commits, and records
from machines in other time zones landing on one day."""

import json
import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lab_testing import git, lab_env, run_lab

from lab.records.files import write_json
from lab.records.store import Store


def shift_run_to_yesterday(repo, run_id):
    """Rewrite a run's events to yesterday, as if it had been created the day before."""
    path = repo / "logs" / "runs" / run_id / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    yesterday = (datetime.now().astimezone() - timedelta(days=1)).isoformat(timespec="seconds")
    for event in events:
        event["time"] = yesterday
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.mark.wandb
def test_daily_log_has_the_reference_shape(lab, repo, train_script):
    lab("new-run", "dia_009", "--hypothesis", "MusicGen delay needs the full-size decoder",
        "--title", "MusicGen delay scaled", "--group", "musicgen_delay_scaled")
    lab("launch", "dia_009", "--note", "batch 4, grad accum 1", "--", sys.executable, "my_train.py", "--lr", "2e-4")
    lab("launch", "dia_009", "--note", "batch 2, grad accum 16", "--", sys.executable, "my_train.py", "--exit", "1",
        check=False)
    lab("note", "dia_009", "--findings", "Loss falls fast", "--observations", "Val follows", "--conclusion", "Keep",
        "--next", "Scale up")
    lab("note", "dia_009", "--attempt", "1", "--result", "val loss 0.5")
    lab("note", "--overview", "Scaled the decoder back up.")
    lab("note", "--insight", "Gradient explosions start only when training from scratch")
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "Baseline reproduces")
    lab("new-run", "nsd_002", "--from", "nsd_001", "--hypothesis", "Lower LR", "--set", "optim.lr=0.0015")
    shift_run_to_yesterday(repo, "nsd_001")

    today = date.today().isoformat()
    path = lab("log", today).stdout.strip()
    assert path == str(repo / "logs" / "daily" / f"{today}.md")
    page = open(path).read()
    first_bytes = open(path, "rb").read()

    headings = [line for line in page.splitlines() if line.startswith("#")]
    assert headings == [
        f"# Research Log: {today}", "## Overview", "## Experiments", "### dia_009: MusicGen delay scaled",
        "### nsd_002: Lower LR", "## Key Insights", "## Commits",
    ]
    assert "Scaled the decoder back up." in page
    block = page.split("### dia_009")[1].split("\n---")[0]
    assert re.search(r"\*\*W&B:\*\* https://wandb.ai/my-team/dia-music-finetuning/runs/\w{8} \(pending sync\)", block)
    assert ("**W&B Group:** https://wandb.ai/my-team/dia-music-finetuning/groups/musicgen_delay_scaled/workspace"
            in block)
    assert "**Hypothesis:** MusicGen delay needs the full-size decoder" in block
    assert "**Test 1:** batch 4, grad accum 1 (finished, exit 0" in block
    assert "**Test 2:** batch 2, grad accum 16 (failed, exit 1" in block
    assert re.search(r"\*\*Test 1:\*\* batch 4, grad accum 1 \(finished, exit 0, [^)]*\): val/loss 0\.5 at step 10\n",
                     block)
    assert re.search(r"\*\*Test 2:\*\* batch 2, grad accum 16 \(failed, exit 1, [^)]*\): stopped at step 10: trained "
                     r"with lr 0\.001\. From Test 1: Increased lr to 0\.001 and increased exit to 1\n", block)
    assert "```" not in block  # every command is on the report, linked
    assert "**Result:** val loss 0.5" in block
    for text in ("**Findings:** Loss falls fast", "**Observations:** Val follows", "**Conclusion:** Keep",
                 "**Next steps:** Scale up"):
        assert text in block
    assert "Details (every test's command, metric tables, curves): [dia_009 report](../reports/dia_009.md)" in block
    assert "- `optim.lr`: 0.02 → 0.0015" in page.split("### nsd_002")[1]
    assert "- Gradient explosions start only when training from scratch" in page
    commits = [line for line in page.split("## Commits")[1].splitlines() if line.startswith("- ")]
    assert len(commits) == 1  # the launch commit; the records commits of the two tests are the lab's own
    slug = json.loads((repo / "logs/runs/dia_009/run.json").read_text())["slug"]
    for line in commits:
        assert re.fullmatch(rf"- `\d\d:\d\d` \[`[0-9a-f]{{7}}`\] \*\*main\*\*: {slug} \(\d+ files?\)", line), line

    lab("log", today)
    assert open(path, "rb").read() == first_bytes, "rendering the same records twice gives the same bytes"

    yesterday = (date.today() - timedelta(days=1)).isoformat()
    paths = lab("log", "--all").stdout.split()
    assert paths == [str(repo / "logs/daily" / f"{yesterday}.md"), path]
    assert "### nsd_001: Baseline reproduces" in open(paths[0]).read()
    assert "### nsd_001" not in page


def test_continued_runs_are_marked(tmp_path):
    store = Store.init(tmp_path)
    store.runs.create("nsd_001", hypothesis="Spans two days")
    events_path = store.run_dir("nsd_001") / "events.jsonl"
    created = json.loads(events_path.read_text())
    created["time"] = "2026-01-01T23:50:00+00:00"
    events_path.write_text(json.dumps(created) + "\n" + json.dumps(
        {"time": "2026-01-02T00:10:00+00:00", "kind": "note", "field": "findings", "text": "After midnight"}) + "\n")
    from lab.pages import context as pages

    first = pages.daily_log(store, date(2026, 1, 1)).read_text()
    second = pages.daily_log(store, date(2026, 1, 2)).read_text()
    assert "### nsd_001: Spans two days\n" in first and "(continued)" not in first
    assert "### nsd_001: Spans two days (continued)" in second and "**Findings:** After midnight" in second
    assert "After midnight" not in first
    write_json(store.logs_dir / "unused.json", {})


def test_a_shallow_clone_lists_its_commits(repo, tmp_path):
    for number in (1, 2, 3):
        (repo / f"f{number}.txt").write_text(str(number))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"change {number}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    assert run_lab("init", cwd=clone).returncode == 0
    result = run_lab("log", cwd=clone)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    page = Path(result.stdout.strip()).read_text()
    assert "**main**: change 3 (3 files)" in page  # the boundary commit as git sees it: a root


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def test_records_written_in_different_zones_land_on_one_day(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "timezone": "UTC"}))
    lab("new-run", "z_001", "--hypothesis", "h", env=lab_env(TZ="America/Los_Angeles"))
    lab("launch", "z_001", "--", sys.executable, "-c", "print(1)", env=lab_env(TZ="Pacific/Kiritimati"))  # UTC+14
    lab("note", "z_001", "--findings", "seconds later, in Tokyo", env=lab_env(TZ="Asia/Tokyo"))
    pages = lab("log", "--all", env=lab_env(TZ="Pacific/Pago_Pago")).stdout.split()  # UTC-11
    now = datetime.now(timezone.utc)
    if now.hour == 23 and now.minute == 59:
        pytest.skip("the records may straddle midnight UTC")
    assert [Path(page).stem for page in pages] == [now.date().isoformat()]
    page = Path(pages[0]).read_text()
    assert "seconds later, in Tokyo" in page and "**Test 1** (" in page
    assert json.loads((lab.repo / "logs/runs/z_001/run.json").read_text())["slug"].startswith(now.strftime("%Y%m%d"))
    assert f"[`{attempt_of(lab, 'z_001')['git']['sha'][:7]}`]" in page  # the launch commit on the same page


def test_a_bad_timezone_is_one_line(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "timezone": "Mars/Olympus"}))
    result = lab("log", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "Mars/Olympus" in result.stderr


def test_the_setup_line_names_only_what_there_is(lab, repo):
    lab("new-run", "sc_001", "--hypothesis", "a script of my own")
    lab("new-run", "sc_002", "--from", "sc_001", "--hypothesis", "the same script again")
    lab("new-run", "nsd_001", "--preset", "tiny", "--hypothesis", "the family's tiny preset")
    page = Path(lab("log").stdout.strip()).read_text()
    setups = [line for line in page.splitlines() if line.startswith("**Setup:**")]
    assert sorted(setups) == ["**Setup:**", "**Setup:** against sc_001",  # runs made in one second sort by id
                              "**Setup:** neural_decoder (preset `tiny`), against cffan_baseline"]
