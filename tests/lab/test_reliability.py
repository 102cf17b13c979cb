"""Hostile input and faults, on real git repositories, real processes and signals: each case either refuses with
one line or leaves what was recorded intact. The cases follow the reliability issue's list."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git
from lab import vcs
from lab.records import append_jsonl, read_jsonl
from lab.store import LabError

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
    code = ("import sys, time; from pathlib import Path; from lab import vcs\n"
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
    (lab.repo / "logs" / "runs" / "x_001" / "attempts" / "2").mkdir()  # a kill -9 after mkdir, before the record
    for command in (["runs"], ["show", "x_001"], ["log"], ["render"]):
        assert lab(*command).returncode == 0
    lab("launch", "x_001", "--no-commit", "--", sys.executable, "-c", "print(2)")
    assert sorted(p.name for p in (lab.repo / "logs/runs/x_001/attempts").iterdir()) == ["1", "2", "3"]
    assert json.loads((lab.repo / "logs/runs/x_001/attempts/3/attempt.json").read_text())["status"] == "finished"


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
    assert "using [redacted]" in (records / "attempts" / "1" / "stdout.log").read_text()
    lab("launch", "s_001", "--", sys.executable, "-c", "print(3)")  # no recorded key blocks a later launch
    assert WANDB_KEY not in git(lab.repo, "log", "-p")


def test_a_child_that_prints_a_key_in_pieces_is_still_redacted(lab, repo):
    lab("new-run", "s_002", "--hypothesis", "h")
    code = ("import sys, time\nfor part in ('token gho_16C7e42F292c', '6912E7710c838347Ae178B4a', ' done\\n'):\n"
            "    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.05)\n")
    lab("launch", "s_002", "--no-commit", "--", sys.executable, "-c", code)
    log = (repo / "logs" / "runs" / "s_002" / "attempts" / "1" / "stdout.log").read_text()
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
    code = f"from pathlib import Path; from lab import vcs; vcs.commit_working_tree(Path({str(project)!r}), 'x')"
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
    rows = list(read_jsonl(repo / "logs/runs/m_001/attempts/1/metrics.jsonl"))
    assert [(row["step"], row["train/loss"], row.get("huge")) for row in rows] == [(1, 1.0, "inf"), (2, 0.25, None)]
    assert lab("report", "m_001").returncode == 0 and lab("doctor", "m_001").returncode == 0
