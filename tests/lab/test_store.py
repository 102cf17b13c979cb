"""The run store: ids, attempts, atomic writes and torn lines, baselines, `lab init`, and damaged or hostile records,
each refused in one line without hiding any other run."""

import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from lab_testing import deadline, git, lab_env, run_lab

from lab.errors import LabError
from lab.records.files import append_jsonl, conflict_sides, read_jsonl, write_json
from lab.records.store import Store
from lab.records.store.names import slugify


@pytest.fixture
def store(tmp_path):
    return Store.init(tmp_path)


@pytest.mark.light
@pytest.mark.parametrize("run_id", ["DIA_009", "dia_9", "dia009", "../dia_009", "dia_009/../../x_001", "", "9ia_001",
                                    "dia_0091", "dia-009"])
def test_invalid_and_escaping_ids_are_refused(store, run_id):
    with pytest.raises(LabError, match="invalid run id"):
        store.runs.create(run_id, hypothesis="h")
    assert not any(store.runs_dir.parent.parent.glob("x_001"))


@pytest.mark.light
def test_existing_id_is_refused_and_nothing_is_lost(store):
    store.runs.create("dia_009", hypothesis="first")
    with pytest.raises(LabError, match="already exists"):
        store.runs.create("dia_009", hypothesis="second")
    assert store.runs.load("dia_009")["hypothesis"] == "first"


@pytest.mark.light
def test_slug_has_date_id_and_short_title(store):
    record = store.runs.create("dia_009", hypothesis="MusicGen delay needs the full-size decoder")
    assert record["slug"].endswith("_dia_009_musicgen_delay_needs_full_size")
    assert record["slug"][:8].isdigit()
    assert store.runs.create("dia_010", hypothesis="x", title_text="Bottleneck fix")["slug"].endswith("bottleneck_fix")
    assert slugify("The  a of") == "the_a_of"


def _create_next(root):
    return Store(root).runs.create(None, prefix="nsd", hypothesis="parallel")["id"]


@pytest.mark.light
def test_next_ids_are_unique_under_concurrency(store):
    store.runs.create("nsd_007", hypothesis="existing")
    with multiprocessing.get_context("fork").Pool(6) as pool:
        ids = pool.map(_create_next, [store.root] * 12)
    assert sorted(ids) == [f"nsd_{n:03d}" for n in range(8, 20)]


@pytest.mark.light
def test_attempts_are_numbered_and_a_vanished_process_reads_as_crashed(store):
    store.runs.create("nsd_001", hypothesis="h")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first = store.attempts.begin("nsd_001", command=["x"], pid=dead.pid)
    second = store.attempts.begin("nsd_001", command=["y"], pid=os.getpid())
    assert [store.attempt_number("nsd_001", folder.name) for folder in (first, second)] == [1, 2]
    assert first.name != second.name and first.name.endswith(store.clone_id[:8])  # no other clone makes these
    assert store.attempts.load("nsd_001", 1)["status"] == "crashed"
    assert store.attempts.load("nsd_001", 2)["status"] == "running"
    kinds = [event["kind"] for event in store.events.of("nsd_001")]
    assert kinds == ["created", "attempt_started", "attempt_started", "attempt_crashed"]


@pytest.mark.light
def test_atomic_json_leaves_no_temp_files_and_torn_jsonl_lines_are_skipped(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    write_json(tmp_path / "a.json", {"x": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    append_jsonl(tmp_path / "e.jsonl", {"n": 1})
    with open(tmp_path / "e.jsonl", "a") as stream:
        stream.write('{"n": 2, "trunc')
    assert list(read_jsonl(tmp_path / "e.jsonl")) == [{"n": 1}]


@pytest.mark.light
def test_baseline_snapshot_is_taken_once(store):
    store.baselines.save("cffan_baseline", {"repository": "r"}, {"optim": {"lr": 0.02}})
    store.baselines.save("cffan_baseline", {"repository": "r"}, {"optim": {"lr": 0.5}})
    assert store.baselines.get("cffan_baseline")["config"] == {"optim": {"lr": 0.02}}


@pytest.mark.light
def test_store_is_found_from_a_subfolder_and_missing_lab_is_an_error(store, tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    assert Store.find(tmp_path / "deep" / "er").root == store.root
    with pytest.raises(LabError, match="lab init"):
        Store.find(tmp_path.parent / "elsewhere-does-not-exist")


@pytest.mark.light
def test_attempts_of_several_clones_read_as_tests_in_start_order(store):
    store.runs.create("nsd_001", hypothesis="h")
    folders = store.run_dir("nsd_001") / "attempts"
    names = ["20261130T101500Z-bbbbbbbb", "2", "20261130T101500Z-aaaaaaaa-10", "1", "20261130T090000Z-bbbbbbbb",
             "20261130T101500Z-aaaaaaaa-2", "20261130T101500Z-aaaaaaaa"]
    for name in names:
        write_json(folders / name / "attempt.json", {"run": "nsd_001", "number": 1, "status": "finished"})
    (folders / "20261130T120000Z-cccccccc").mkdir()  # half-made: no record yet
    assert [folder.name for folder in store.attempt_folders("nsd_001")] == [
        "1", "2", "20261130T090000Z-bbbbbbbb", "20261130T101500Z-aaaaaaaa", "20261130T101500Z-aaaaaaaa-2",
        "20261130T101500Z-aaaaaaaa-10", "20261130T101500Z-bbbbbbbb"]
    assert [store.attempts.load("nsd_001", n)["number"] for n in store.attempts.numbers("nsd_001")] == list(range(1, 8))


@pytest.mark.light
def test_conflict_sides_rebuild_both_versions():
    text = "{\n<<<<<<< HEAD\n  \"a\": 1\n||||||| base\n  \"a\": 0\n=======\n  \"a\": 2\n>>>>>>> theirs\n}\n"
    assert conflict_sides(text) == ('{\n  "a": 1\n}\n', '{\n  "a": 2\n}\n')
    assert conflict_sides('{"a": 1}\n') is None


@pytest.mark.light
def test_atomic_writes_give_a_new_file_the_usual_mode_and_keep_an_existing_files(tmp_path):
    """A temporary file is created private (0600); the written record must not stay so (lab.json, .gitignore and
    converted weights unreadable to the rest of a shared machine)."""
    from lab.records import files

    files.write_text(tmp_path / "new.json", "{}")
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~files.UMASK
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o640)
    files.write_text(private, "[]")
    assert private.stat().st_mode & 0o777 == 0o640 and private.read_text() == "[]"


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def read(path):
    return json.loads(path.read_text())


def test_existing_run_is_refused_without_losing_its_records(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "first")
    one_line_error(lab("new-run", "dia_001", "--hypothesis", "second", check=False), "already exists")
    assert read(repo / "logs/runs/dia_001/run.json")["hypothesis"] == "first"


def is_one_line_error(result) -> bool:
    return result.returncode == 2 and result.stderr.startswith("lab: error: ") and result.stderr.count("\n") == 1


def test_names_too_long_or_with_a_newline_are_refused(lab):
    assert is_one_line_error(lab("new-run", "--next", "p" * 300, "--hypothesis", "h", check=False))
    assert is_one_line_error(lab("new-run", "a" * 200 + "_001", "--hypothesis", "h", check=False))
    assert is_one_line_error(lab("new-run", "a_009\n", "--hypothesis", "h", check=False))
    lab("new-run", "g_001", "--hypothesis", "h", "--group", "g" * 300)
    assert lab("render").returncode == 0
    assert not (lab.repo / "logs/runs/a_009\n").exists()


def test_init_keeps_an_unterminated_gitignore_intact(repo):
    (repo / ".gitignore").write_text("*.tmp")
    assert run_lab("init", cwd=repo).returncode == 0
    assert (repo / ".gitignore").read_text().splitlines() == [
        "*.tmp", "artefacts/", ".env", "wandb/", "/outputs/", "/multirun/", "/lightning_logs/", "logs/daily/",
        "logs/reports/",
        "logs/changelogs/", "logs/site/", "logs/listen/", "logs/ablations/*", "!logs/ablations/index.json*"]


def test_a_gitignore_that_is_a_folder_is_one_line(lab):
    (lab.repo / ".gitignore").unlink()
    (lab.repo / ".gitignore").mkdir()
    assert is_one_line_error(lab("init", check=False))


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def test_a_symlinked_logs_folder_finds_its_lab(lab, tmp_path):
    elsewhere = tmp_path / "other_disk" / "logs"
    elsewhere.parent.mkdir()
    (lab.repo / "logs").rename(elsewhere)
    (lab.repo / "logs").symlink_to(elsewhere)
    lab("new-run", "l_001", "--hypothesis", "h")
    code = "from lab import tracker\ntracker.config({'lr': 0.1})\ntracker.log(1, loss=0.5)\ntracker.summary(best=0.5)\n"
    result = lab("launch", "l_001", "--no-commit", "--", sys.executable, "-c", code)
    assert "warning" not in result.stdout + result.stderr
    folder = attempt_folder(lab, "l_001")
    assert folder.resolve().is_relative_to(elsewhere)
    assert json.loads((folder / "config.json").read_text())["lr"] == 0.1
    assert json.loads((folder / "summary.json").read_text()) == {"best": 0.5}


def test_baseline_names_cannot_escape_the_lab(lab, tmp_path):
    outside = tmp_path / "outside"
    for name in (str(outside), "../x", ".hidden", "a/b"):
        result = lab("changelog", name, check=False)
        assert result.returncode == 2 and "invalid baseline name" in result.stderr, result.stderr
        result = lab("changelog", name, "--status", "k=v", check=False)
        assert result.returncode == 2 and "invalid baseline name" in result.stderr
    assert list(tmp_path.glob("outside*")) == []


def test_an_append_after_a_torn_line_is_kept(tmp_path):
    path = tmp_path / "events.jsonl"
    append_jsonl(path, {"kind": "created"})
    with open(path, "a") as stream:
        stream.write('{"kind": "no')  # a crash mid-write
    append_jsonl(path, {"kind": "note", "text": "kept"})
    assert [record["kind"] for record in read_jsonl(path)] == ["created", "note"]


def folder_of(repo: Path, run_id: str, number: int) -> Path:
    """Test `number`'s folder: logs/runs/<id>/attempts/<start>-<clone>/ once ended, in .git/lab while running."""
    return Store(repo).attempt_dir(run_id, number)


def test_a_half_made_attempt_folder_breaks_no_command(lab):
    lab("new-run", "x_001", "--hypothesis", "h")
    lab("launch", "x_001", "--no-commit", "--", sys.executable, "-c", "print(1)")
    first = folder_of(lab.repo, "x_001", 1)
    half_made = first.with_name("20991231T000000Z-0a0b0c0d")
    half_made.mkdir()  # a kill -9 after mkdir, before the record
    for command in (["runs"], ["show", "x_001"], ["log"], ["render"]):
        assert lab(*command).returncode == 0
    lab("launch", "x_001", "--no-commit", "--", sys.executable, "-c", "print(2)")
    second = folder_of(lab.repo, "x_001", 2)
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, half_made.name, second.name])
    assert json.loads((second / "attempt.json").read_text())["status"] == "finished"


def test_damaged_records_give_a_one_line_error(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "h")
    (repo / "logs/runs/dia_001/run.json").write_text("{half")
    one_line_error(lab("show", "dia_001", check=False), "run.json is not valid JSON")


DAMAGED_RECORDS = {
    "run.json not UTF-8": ("run.json", b"\xff\xfe{"),
    "run.json a list": ("run.json", b"[1, 2]"),
    "run.json without its fields": ("run.json", b'{"id": "x_001"}'),
    "attempt.json a string": ("attempt.json", b'"x"'),  # Test 1's record
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_RECORDS))
def test_a_damaged_record_is_one_line_and_hides_no_other_run(two_runs, damage):
    lab = two_runs
    name, content = DAMAGED_RECORDS[damage]
    folder = folder_of(lab.repo, "x_001", 1) if damage.startswith("attempt") else lab.repo / "logs/runs/x_001"
    (folder / name).write_bytes(content)
    listing = lab("runs")
    assert re.search(r"^x_001\s+unreadable", listing.stdout, re.M) and re.search(r"^x_002\s+finished", listing.stdout,
                                                                               re.M)
    assert "x_001 is unreadable" in listing.stderr and "Traceback" not in listing.stderr
    assert is_one_line_error(lab("show", "x_001", check=False))
    for command in (["log", "--all"], ["render"], ["report", "x_002"], ["doctor", "x_002"]):
        result = lab(*command)
        assert "Traceback" not in result.stderr, command
    assert (lab.repo / "logs/reports/x_002.md").exists()


def test_a_folder_where_a_record_belongs_is_one_line(two_runs):
    lab = two_runs
    events = lab.repo / "logs/runs/x_001/events.jsonl"
    events.unlink()
    events.mkdir()
    assert is_one_line_error(lab("show", "x_001", check=False))
    assert is_one_line_error(lab("note", "x_001", "--findings", "f", check=False))
    metrics = folder_of(lab.repo, "x_002", 1) / "metrics.jsonl"
    metrics.unlink()
    metrics.mkdir()
    assert is_one_line_error(lab("report", "x_002", check=False))


def test_a_damaged_lab_json_is_one_line(two_runs):
    lab = two_runs
    for content in (b"\xff\xfe{", b"[1, 2]"):
        (lab.repo / "lab.json").write_bytes(content)
        result = lab("runs", check=False)
        assert is_one_line_error(result) and "lab.json" in result.stderr


@pytest.mark.parametrize("settings, command", [
    ({"launch": {"kill_grace_seconds": "x"}}, "launch"),
    ({"launch": {"output_head_mb": -1}}, "launch"),
    ({"wandb": []}, "launch"),
    ({"capture": []}, "launch"),
    ({"logs": 5}, "runs"),
    ({"artefacts": 3}, "launch"),
    ({"prefixes": "x"}, "new-run"),
    ({"remote": {"timeout_s": "x"}}, "new-run"),
    ({"device_memory_gb": "x"}, "new-run"),
])
def test_a_wrongly_typed_lab_json_value_is_one_line_and_starts_nothing(two_runs, settings, command):
    lab = two_runs
    before = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**before, **settings}))
    commits = git(lab.repo, "rev-list", "--all", "--count")
    arguments = {"launch": ["launch", "x_001", "--", sys.executable, "-c", "print(1)"], "runs": ["runs"],
                 "new-run": ["new-run", "x_009", "--hypothesis", "h"]}[command]
    result = lab(*arguments, check=False)
    assert is_one_line_error(result) and "lab.json" in result.stderr, result.stderr
    assert git(lab.repo, "rev-list", "--all", "--count") == commits
    assert not (lab.repo / "logs/runs/x_009").exists()


@pytest.mark.parametrize("line", [
    b'{"kind": "note", "field": "findings", "text": "no time"}',
    b'{"kind": "note", "field": "findings", "text": "bad time", "time": "yesterday"}',
    b'{"kind": "note", "text": "no field", "time": "2026-11-23T10:00:00+00:00"}',
    b"[1, 2]",
    b"\xff\xfe",
])
def test_a_malformed_event_line_is_skipped(two_runs, line):
    lab = two_runs
    with open(lab.repo / "logs/runs/x_001/events.jsonl", "ab") as stream:
        stream.write(line + b"\n")
    lab("note", "x_001", "--findings", "kept after the bad line")
    assert "kept after the bad line" in lab("show", "x_001").stdout
    for command in (["log", "--all"], ["render"]):
        assert "Traceback" not in lab(*command).stderr


@pytest.mark.parametrize("line", [b'{"step": "abc", "train/loss": 1}', b"[1, 2]", b"\xff\xfe",
                                  b'{"step": 9, "train/lo'])
def test_a_malformed_metrics_line_is_skipped(two_runs, line):
    lab = two_runs
    path = folder_of(lab.repo, "x_001", 1) / "metrics.jsonl"
    with open(path, "ab") as stream:
        stream.write(line + b"\n")
    with open(path, "a") as stream:
        stream.write('{"step": 5, "train/loss": 0.1}\n')
    for command in (["report", "x_001"], ["doctor", "x_001"], ["compare", "x_001", "x_002"]):
        assert "Traceback" not in lab(*command).stderr, command
    report = (lab.repo / "logs/reports/x_001.md").read_text()
    assert "0.1" in report


def test_a_truncated_checkpoint_falls_back_to_the_previous_intact_one(lab, capsys):
    from lab.records.store import Store

    lab("new-run", "c_001", "--hypothesis", "h")
    store = Store(lab.repo)
    paths = []
    for number in (1, 2):
        lab("launch", "c_001", "--no-commit", "--", sys.executable, "-c", "print(1)")
        path = lab.repo / "artefacts" / f"last_{number}.pt"
        with zipfile.ZipFile(path, "w") as archive:  # the container torch.save writes
            archive.writestr("archive/data.pkl", b"weights" * 1000)
        store.attempts.update(store.attempt_dir("c_001", number),
                             checkpoints={"last": {"path": str(path), "step": number}})
        paths.append(path)
    assert store.attempts.latest_checkpoint("c_001", "last") == str(paths[1])
    paths[1].write_bytes(paths[1].read_bytes()[:2000])  # a copy cut short
    assert store.attempts.latest_checkpoint("c_001", "last") == str(paths[0])
    assert "is damaged" in capsys.readouterr().err


@pytest.mark.light
def test_a_slug_keeps_numbers_whole():
    assert slugify("16 units underfit at lr 3e-2") == "16_units_underfit_lr_3e-2"
    assert slugify("lr 0.5 with clip 1.0 for 1e+4 steps") == "lr_0.5_clip_1.0_1e4"


def test_two_labs_in_one_repository_keep_their_running_attempts_apart(repo):
    """vision/ and speech/ each a lab of one repository: while vision's exp_001 runs, speech's exp_001 sees only
    its own attempts, and its daily page renders."""
    for name in ("vision", "speech"):
        (repo / name).mkdir()
        assert run_lab("init", cwd=repo / name).returncode == 0
        assert run_lab("new-run", "exp_001", "--hypothesis", f"{name} works", cwd=repo / name).returncode == 0
    hold = repo / "vision" / "hold.py"
    hold.write_text("import pathlib, time\npathlib.Path('started').write_text('1')\n"
                    "while not pathlib.Path('release').exists():\n    time.sleep(0.05)\n")
    launch = subprocess.Popen([sys.executable, "-m", "lab", "launch", "exp_001", "--no-commit", "--", sys.executable,
                               "hold.py"], cwd=repo / "vision", env=lab_env(), stdout=subprocess.DEVNULL)
    try:
        with deadline(60, "vision's attempt to start"):
            while not (repo / "vision" / "started").exists():
                time.sleep(0.05)
        done = run_lab("launch", "exp_001", "--no-commit", "--", sys.executable, "-c", "print('ok')",
                       cwd=repo / "speech")
        assert done.returncode == 0
        shown = json.loads(run_lab("show", "exp_001", "--json", cwd=repo / "speech").stdout)
        assert [(a["number"], a["status"]) for a in shown["attempts"]] == [(1, "finished")]
        assert run_lab("log", cwd=repo / "speech").returncode == 0
        running = json.loads(run_lab("show", "exp_001", "--json", cwd=repo / "vision").stdout)
        assert [(a["number"], a["status"]) for a in running["attempts"]] == [(1, "running")]
    finally:
        (repo / "vision" / "release").write_text("1")
        launch.wait(timeout=60)
    assert json.loads(run_lab("show", "exp_001", "--json", cwd=repo / "vision").stdout)["status"] == "finished"


@pytest.mark.light
def test_a_launch_commit_and_the_daily_commit_list_hold_the_labs_own_folder(repo):
    """vision/ and speech/ each a lab of one repository: speech's launch commits speech/ alone (vision's edits
    stay as they were, staged or not), and each lab's daily page lists the commits of its own folder."""
    for name in ("vision", "speech"):
        (repo / name).mkdir()
        assert run_lab("init", cwd=repo / name).returncode == 0
        (repo / name / "train.py").write_text(f"print('{name}')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two labs")
    (repo / "vision" / "train.py").write_text("print('vision, staged')\n")
    git(repo, "add", "vision/train.py")
    (repo / "vision" / "model.py").write_text("WIDTH = 8\n")
    (repo / "speech" / "model.py").write_text("WIDTH = 16\n")
    (repo / "README.md").write_text("both labs\n")
    assert run_lab("new-run", "exp_001", "--hypothesis", "speech works", cwd=repo / "speech").returncode == 0
    launched = run_lab("launch", "exp_001", "--", sys.executable, "train.py", cwd=repo / "speech")
    assert launched.returncode == 0
    assert ("lab: warning: the launch commit holds speech/ alone: 1 modified tracked file outside it "
            "(vision/train.py) is not in it; if the run imports them, commit them first so the recorded sha is what "
            "ran") in launched.stderr
    sha = Store(repo / "speech").attempts.of("exp_001")[0]["git"]["sha"]
    committed = git(repo, "show", "--name-only", "--format=", sha).split()
    assert committed and all(path.startswith("speech/") for path in committed)
    assert "speech/model.py" in committed
    assert git(repo, "status", "--porcelain").splitlines() == ["M  vision/train.py", "?? README.md",
                                                               "?? vision/model.py"]
    assert run_lab("new-run", "exp_001", "--hypothesis", "vision works", cwd=repo / "vision").returncode == 0
    speech_page = Path(run_lab("log", cwd=repo / "speech").stdout.strip()).read_text()
    vision_page = Path(run_lab("log", cwd=repo / "vision").stdout.strip()).read_text()
    assert sha[:7] in speech_page and sha[:7] not in vision_page
