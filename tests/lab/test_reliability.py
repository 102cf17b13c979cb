"""Hostile input and faults, on real git repositories, real processes and signals: each case either refuses with
one line or leaves what was recorded intact. The cases follow the reliability issue's list."""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from lab_testing import git, lab_env

from lab.launcher import vcs
from lab.errors import LabError
from lab.records.files import append_jsonl, read_jsonl
from lab.records.store import Store

WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"
SECRET_FILES = {
    "cfg.py": f'import os\nos.environ["WANDB_API_KEY"] = "{WANDB_KEY}"\n',
    "login.py": f'import wandb\nwandb.login(key="{WANDB_KEY}")\n',
    "defaults.py": f'import os\nos.environ.setdefault("WANDB_API_KEY", "{WANDB_KEY}")\n',
    "explore.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": [
        f'os.environ["WANDB_API_KEY"] = "{WANDB_KEY}"\n']}]}),
    "aws.sh": "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ".aws/credentials": "[default]\nregion = eu-west-1\n",
    "gh.txt": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN\n",
    "oauth.txt": "gho_16C7e42F292c6912E7710c838347Ae178B4a\n",
    "slack.txt": "SLACK_BOT=xoxb-2410212019-2410212027-kKVqZwFFsSFH1tZJdjyPvYZv\n",
    "maps.js": "const key = 'AIzaSyD-1234567890abcdefghijklmnopqrstu';\n",
    "hosts.cfg": "machine api.wandb.ai\n  login user\n  password s3cr3tpassw0rd\n",
    "prod.env": "MODE=prod\n",
    "id_ecdsa": "not shown\n",
    "deploy.ppk": "not shown\n",
}


def commit_all(repo: Path, message: str = "start") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture
def project(repo):
    (repo / "train.py").write_text("print('training')\n")
    commit_all(repo)
    return repo


# 1. Secrets the scanner used to miss -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SECRET_FILES))
def test_a_secret_is_never_committed(project, name):
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET_FILES[name])
    head = git(project, "rev-parse", "HEAD")
    with pytest.raises(LabError, match=rf"^refusing to commit: {name} \((secret file name|contains what looks like)"):
        vcs.commit_working_tree(project, "leak")
    assert git(project, "rev-parse", "HEAD") == head and git(project, "diff", "--cached") == ""


def test_ordinary_code_and_hashes_are_not_secrets(project):
    (project / "model.py").write_text(
        'model_key = "encoder_decoder_attention_weights_v2"\nsha = "0c61a2f3e4b5a6978d9e0f1a2b3c4d5e6f708192"\n'
        'checkpoint = "artefacts/nsd_001/1/checkpoints/last.pt"\nlr, hidden = 0.0015, 256\n')
    assert vcs.commit_working_tree(project, "model")["committed"]


def test_a_lab_adds_its_own_patterns_and_names(project):
    settings = {"secrets": {"patterns": [r"corp-[0-9]{6}"], "names": ["*.vault"]}}
    policy = vcs.CapturePolicy.from_settings(settings)
    (project / "notes.txt").write_text("ticket corp-123456\n")
    with pytest.raises(LabError, match=r"notes.txt \(contains what looks like a secret: lab.json pattern 1\)"):
        vcs.commit_working_tree(project, "x", policy=policy)
    (project / "notes.txt").unlink()
    (project / "team.vault").write_text("x\n")
    with pytest.raises(LabError, match=r"team.vault \(secret file name\)"):
        vcs.commit_working_tree(project, "x", policy=policy)
    with pytest.raises(LabError, match="is not a regular expression"):
        vcs.CapturePolicy.from_settings({"secrets": {"patterns": ["("]}})


# 2. --no-commit diffs --------------------------------------------------------------------------------------------


def test_dirty_diff_redacts_every_kind_of_secret(project):
    (project / "train.py").write_text("".join(SECRET_FILES[name] for name in ("cfg.py", "login.py", "slack.txt")))
    _, diff = vcs.dirty_state(project)
    assert WANDB_KEY not in diff and "xoxb-2410212019" not in diff and diff.count("[redacted]") == 3


def test_a_file_name_with_a_newline_cannot_forge_diff_lines(project):
    (project / "evil\n# left out: nothing").write_text("x\n")
    _, diff = vcs.dirty_state(project)
    assert '# untracked: "evil\\n# left out: nothing"' in diff
    assert not any(line.startswith("# left out") for line in diff.splitlines())


# 3. Two launches at once, and the user's index ----------------------------------------------------------------


def test_two_captures_at_once_leave_the_index_matching_head(project, tmp_path):
    for index in range(30):
        (project / f"data_{index}.txt").write_text(f"{index}\n")
    go = tmp_path / "go"
    code = ("import sys, time; from pathlib import Path; from lab.launcher import vcs\n"
            "while not Path(sys.argv[1]).exists(): time.sleep(0.005)\n"
            "vcs.commit_working_tree(Path(sys.argv[2]), sys.argv[3])\n")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(go), str(project), f"launch {n}"]) for n in range(2)]
    go.write_text("")  # both start capturing at once
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    assert git(project, "diff", "--cached", "HEAD") == "" and git(project, "status", "--porcelain") == ""
    assert len(git(project, "ls-tree", "-r", "--name-only", "HEAD").split()) == 31
    (project / "later.txt").write_text("x\n")
    git(project, "add", "later.txt")
    git(project, "commit", "-qm", "the user's own commit")
    assert len(git(project, "ls-tree", "-r", "--name-only", "HEAD").split()) == 32  # nothing deleted


def test_a_refused_capture_keeps_index_flags(project):
    (project / "pinned.txt").write_text("a\n")
    (project / "sparse.txt").write_text("b\n")
    commit_all(project, "two files")
    git(project, "update-index", "--assume-unchanged", "pinned.txt")
    git(project, "update-index", "--skip-worktree", "sparse.txt")
    (project / "planned.py").write_text("x = 1\n")
    git(project, "add", "--intent-to-add", "planned.py")
    index = (project / ".git" / "index").read_bytes()
    (project / "id_rsa").write_text("key\n")
    with pytest.raises(LabError, match="id_rsa"):
        vcs.commit_working_tree(project, "refused")
    assert (project / ".git" / "index").read_bytes() == index
    flags = git(project, "ls-files", "-v")
    assert "h pinned.txt" in flags and "S sparse.txt" in flags


# 4-6. Paths, half-made attempts, torn lines -------------------------------------------------------------------


def test_baseline_names_cannot_escape_the_lab(lab, tmp_path):
    outside = tmp_path / "outside"
    for name in (str(outside), "../x", ".hidden", "a/b"):
        result = lab("changelog", name, check=False)
        assert result.returncode == 2 and "invalid baseline name" in result.stderr, result.stderr
        result = lab("changelog", name, "--status", "k=v", check=False)
        assert result.returncode == 2 and "invalid baseline name" in result.stderr
    assert list(tmp_path.glob("outside*")) == []


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


def folder_of(repo: Path, run_id: str, number: int) -> Path:
    """Test `number`'s folder: logs/runs/<id>/attempts/<start>-<clone>/ once ended, in .git/lab while running."""
    return Store(repo).attempt_dir(run_id, number)


def test_an_append_after_a_torn_line_is_kept(tmp_path):
    path = tmp_path / "events.jsonl"
    append_jsonl(path, {"kind": "created"})
    with open(path, "a") as stream:
        stream.write('{"kind": "no')  # a crash mid-write
    append_jsonl(path, {"kind": "note", "text": "kept"})
    assert [record["kind"] for record in read_jsonl(path)] == ["created", "note"]


# 7. Secrets in what the lab records ---------------------------------------------------------------------------


def test_secrets_are_redacted_where_they_are_recorded(lab):
    key = f"WANDB_API_KEY={WANDB_KEY}"
    lab("new-run", "s_001", "--hypothesis", f"logging in with {key} works")
    script = lab.repo / "ok.py"
    script.write_text(  # the script holds no key itself; it prints them whole
        "print('using', 'xoxb-' + '2410212019-2410212027-kKVqZwFFsSFH1tZJdjyPvYZv')\n"
        f"print('WANDB_API_KEY=' + '{WANDB_KEY[:20]}' + '{WANDB_KEY[20:]}')\n")
    lab("launch", "s_001", "--note", f"with token {key}", "--", sys.executable, "ok.py", f"--token={WANDB_KEY}")
    lab("note", "s_001", "--findings", f"the key was {key}")
    records = lab.repo / "logs" / "runs" / "s_001"
    for path in records.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert WANDB_KEY not in text and "kKVqZwFFsSFH1" not in text, path
    assert "using [redacted]" in (folder_of(lab.repo, "s_001", 1) / "stdout.log").read_text()
    lab("launch", "s_001", "--", sys.executable, "-c", "print(3)")  # no recorded key blocks a later launch
    assert WANDB_KEY not in git(lab.repo, "log", "-p")


def test_a_child_that_prints_a_key_in_pieces_is_still_redacted(lab, repo):
    lab("new-run", "s_002", "--hypothesis", "h")
    code = ("import sys, time\nfor part in ('token gho_16C7e42F292c', '6912E7710c838347Ae178B4a', ' done\\n'):\n"
            "    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.05)\n")
    lab("launch", "s_002", "--no-commit", "--", sys.executable, "-c", code)
    log = (folder_of(repo, "s_002", 1) / "stdout.log").read_text()
    assert log == "token [redacted] done\n"


def test_a_bad_policy_in_lab_json_is_one_line(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    settings["commit"] = {"max_file_mb": "big"}
    (lab.repo / "lab.json").write_text(json.dumps(settings))
    lab("new-run", "s_003", "--hypothesis", "h")
    result = lab("launch", "s_003", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "max_file_mb" in result.stderr


# 8. Unbounded data in git -------------------------------------------------------------------------------------


def test_a_commit_over_the_total_cap_is_refused_naming_the_biggest_files(project):
    folder = project / "data"
    folder.mkdir()
    for index in range(7):
        (folder / f"shard_{index}.bin").write_bytes(os.urandom(9_000_000 + index))
    with pytest.raises(LabError, match=r"the commit would add 63.0 MB > 50 MB; biggest: data/shard_6.bin \(9.0 MB\)"):
        vcs.commit_working_tree(project, "data")
    policy = vcs.CapturePolicy.from_settings({"commit": {"max_commit_mb": 100}})
    assert vcs.commit_working_tree(project, "data", policy=policy)["committed"]


def test_a_big_file_in_the_attempt_folder_is_refused(project):
    attempt = project / "logs" / "runs" / "x_001" / "attempts" / "1"
    attempt.mkdir(parents=True)
    (attempt / "weights.bin").write_bytes(os.urandom(11_000_000))
    with pytest.raises(LabError, match=r"weights.bin \(11.0 MB > 10 MB\)"):
        vcs.commit_working_tree(project, "x", records_dir=project / "logs")


def test_killing_the_launcher_during_capture_leaves_the_index_alone(project):
    (project / "big.txt").write_text("line\n" * 2_000_000)
    index = (project / ".git" / "index").read_bytes()
    code = f"from pathlib import Path; from lab.launcher import vcs; vcs.commit_working_tree(Path({str(project)!r}), 'x')"  # noqa: E501
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        process.wait(timeout=0.3)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    now = (project / ".git" / "index").read_bytes()
    assert now == index or git(project, "diff", "--cached", "HEAD") == ""


# 12. Metric values ---------------------------------------------------------------------------------------------


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


# 9. One-line errors, and one damaged run hides no other --------------------------------------------------------

DAMAGED_RECORDS = {
    "run.json not UTF-8": ("run.json", b"\xff\xfe{"),
    "run.json a list": ("run.json", b"[1, 2]"),
    "run.json without its fields": ("run.json", b'{"id": "x_001"}'),
    "attempt.json a string": ("attempt.json", b'"x"'),  # Test 1's record
}


@pytest.fixture
def two_runs(lab):
    """x_001 and x_002, each with one finished attempt that logged metrics."""
    script = lab.repo / "ok.py"
    script.write_text("from lab import tracker\n"
                      "for step in range(5):\n    tracker.log(step, **{'train/loss': 1 / (step + 1)})\n")
    for run_id in ("x_001", "x_002"):
        lab("new-run", run_id, "--hypothesis", f"h {run_id}")
        lab("launch", run_id, "--no-commit", "--", sys.executable, "ok.py")
    return lab


def one_line_error(result) -> bool:
    return result.returncode == 2 and result.stderr.startswith("lab: error: ") and result.stderr.count("\n") == 1


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
    assert one_line_error(lab("show", "x_001", check=False))
    for command in (["log", "--all"], ["render"], ["report", "x_002"], ["doctor", "x_002"]):
        result = lab(*command)
        assert "Traceback" not in result.stderr, command
    assert (lab.repo / "logs/reports/x_002.md").exists()


def test_a_folder_where_a_record_belongs_is_one_line(two_runs):
    lab = two_runs
    events = lab.repo / "logs/runs/x_001/events.jsonl"
    events.unlink()
    events.mkdir()
    assert one_line_error(lab("show", "x_001", check=False))
    assert one_line_error(lab("note", "x_001", "--findings", "f", check=False))
    metrics = folder_of(lab.repo, "x_002", 1) / "metrics.jsonl"
    metrics.unlink()
    metrics.mkdir()
    assert one_line_error(lab("report", "x_002", check=False))


def test_a_damaged_lab_json_is_one_line(two_runs):
    lab = two_runs
    for content in (b"\xff\xfe{", b"[1, 2]"):
        (lab.repo / "lab.json").write_bytes(content)
        result = lab("runs", check=False)
        assert one_line_error(result) and "lab.json" in result.stderr


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
    assert one_line_error(result) and "lab.json" in result.stderr, result.stderr
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


def test_names_too_long_or_with_a_newline_are_refused(lab):
    assert one_line_error(lab("new-run", "--next", "p" * 300, "--hypothesis", "h", check=False))
    assert one_line_error(lab("new-run", "a" * 200 + "_001", "--hypothesis", "h", check=False))
    assert one_line_error(lab("new-run", "a_009\n", "--hypothesis", "h", check=False))
    lab("new-run", "g_001", "--hypothesis", "h", "--group", "g" * 300)
    assert lab("render").returncode == 0
    assert not (lab.repo / "logs/runs/a_009\n").exists()


def test_a_closed_pipe_is_not_a_traceback(two_runs):
    result = subprocess.run(f"{sys.executable} -m lab runs | head -c 1", shell=True, cwd=two_runs.repo,
                            capture_output=True, text=True)
    assert result.stdout == "I" and result.stderr == ""


def test_a_gitignore_that_is_a_folder_is_one_line(lab):
    (lab.repo / ".gitignore").unlink()
    (lab.repo / ".gitignore").mkdir()
    assert one_line_error(lab("init", check=False))


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


def test_loading_a_truncated_checkpoint_is_one_line(tmp_path):
    import torch

    from lab.errors import ConfigError
    from trainers.engine import checkpoints

    path = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(ConfigError, match="cannot be read, damaged or truncated"):
        checkpoints.load(path)


def test_a_full_disk_during_an_attempt_still_records_how_it_ended(lab):
    lab("new-run", "d_001", "--hypothesis", "h")
    code = "import sys\nfor _ in range(4000):\n    print('x' * 250)\nprint('end')\n"
    limit = 300_000  # bytes any file may grow to: stdout.log hits it, like a disk filling up

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "lab", "launch", "d_001", "--no-commit", "--", sys.executable,
                             "-c", code], cwd=lab.repo, capture_output=True, text=True, env=lab_env(),
                            preexec_fn=limited, timeout=120)
    assert result.returncode == 0 and result.stdout.endswith("end\n")
    assert "stdout.log stopped early" in result.stderr and "Traceback" not in result.stderr
    attempt = json.loads((folder_of(lab.repo, "d_001", 1) / "attempt.json").read_text())
    assert attempt["status"] == "finished" and attempt["exit_code"] == 0


# 10. Bad values -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("override", ["optim.lr=inf", "train.grad_clip=nan", "model.stride_len=0",
                                      "model.n_input_features=0", "model.stride_len=64"])
def test_a_bad_value_is_refused_before_anything_is_written(lab, override):
    result = lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h",
                 "--set", override, check=False)
    assert one_line_error(result) and override.split("=")[0] in result.stderr
    assert not (lab.repo / "logs/runs/nsd_001").exists()


def test_an_absurd_model_size_is_refused_in_bounded_time():
    from lab.runs import sizing
    from lab.errors import ConfigError
    from lab.families import registry

    values = registry.get("neural_decoder").resolve(preset="tiny", overrides=["model.n_layers=100000"])
    started = time.monotonic()
    with pytest.raises(ConfigError, match="took over 5 s to build"):
        sizing.parameter_counts("neural_decoder", [values], seconds=5)
    assert time.monotonic() - started < 30
    tiny = registry.get("neural_decoder").resolve(preset="tiny")
    assert sizing.parameter_counts("neural_decoder", [tiny]) == [sizing.parameter_count("neural_decoder", tiny)]


# 11. Signals -----------------------------------------------------------------------------------------------------


def launch_in_background(lab, run_id: str, code: str) -> subprocess.Popen:
    """`lab launch RUN_ID -- python -c CODE` as a process of its own; returns once the child printed 'ready'."""
    process = subprocess.Popen([sys.executable, "-m", "lab", "launch", run_id, "--no-commit", "--", sys.executable,
                                "-u", "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=lab_env())
    assert process.stdout.readline() == "ready\n"
    return process


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((folder_of(lab.repo, run_id, number) / "attempt.json").read_text())


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "launch": {"kill_grace_seconds": 1}}))
    lab("new-run", "k_001", "--hypothesis", "h")
    code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
            "time.sleep(60)\n")
    process = launch_in_background(lab, "k_001", code)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 137
    assert "ignored SIGTERM for 1 s and was killed" in process.stderr.read()
    attempt = attempt_of(lab, "k_001")
    assert attempt["status"] == "killed" and attempt["stopped_by"] == {"signal": "SIGTERM",
                                                                       "escalated": "SIGKILL after 1 s"}


def test_sigint_to_the_launcher_alone_reaches_the_child(lab):
    lab("new-run", "k_002", "--hypothesis", "h")
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *_: (print('saved'), sys.exit(0)))\n"
            "print('ready', flush=True)\ntime.sleep(60)\n")
    process = launch_in_background(lab, "k_002", code)
    process.send_signal(signal.SIGINT)  # to the launcher's pid only, not to a terminal's process group
    assert process.wait(timeout=30) == 0
    assert process.stdout.read() == "saved\n"
    attempt = attempt_of(lab, "k_002")
    assert attempt["status"] == "finished" and attempt["exit_code"] == 0


def test_a_child_dies_with_its_killed_launcher(lab):
    lab("new-run", "k_003", "--hypothesis", "h")
    code = ("import time\nfrom lab import tracker\nprint('ready', flush=True)\n"
            "for step in range(600):\n    tracker.log(step, loss=1.0)\n    time.sleep(0.1)\n")
    process = launch_in_background(lab, "k_003", code)
    child = attempt_of(lab, "k_003")["child_pid"]
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and child_alive(child):
        time.sleep(0.1)
    assert not child_alive(child)
    assert "crashed" in lab("show", "k_003").stdout


def child_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_an_init_attempt_stopped_by_sigterm_reads_killed(lab):
    lab("new-run", "k_004", "--hypothesis", "h")
    code = "import time\nfrom lab import tracker\ntracker.init('k_004')\nprint('ready', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-u", "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, text=True,
                               env=lab_env())
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM
    assert attempt_of(lab, "k_004")["status"] == "killed"


def test_stale_checkpoint_temporaries_are_removed_at_the_next_launch(lab):
    lab("new-run", "k_005", "--hypothesis", "h")
    lab("launch", "k_005", "--no-commit", "--", sys.executable, "-c", "print(1)")
    folder = Path(attempt_of(lab, "k_005")["artefacts"]) / "checkpoints"
    folder.mkdir(parents=True)
    stale = folder / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half")
    result = lab("launch", "k_005", "--no-commit", "--", sys.executable, "-c", "print(2)")
    assert not stale.exists() and "left half-written by attempt 1" in result.stderr
