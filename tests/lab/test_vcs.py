"""Git capture on real temporary repositories: what a launch commits, what is refused, the index left behind, and the
user's own commit policy (hooks, signing, submodules)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lab_testing import git

from lab.launcher import vcs
from lab.errors import LabError
from lab.records.store import Store


def commit_all(repo: Path, message: str = "start") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.mark.light
def test_a_submodule_and_a_symlinked_folder_are_committed_without_being_read(repo):
    (repo / "README.md").write_text("project\n")
    commit_all(repo)
    nested = repo / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "code.py").write_text("x = 1\n")
    git(nested, "add", "-A")
    git(nested, "-c", "user.email=a@b.c", "-c", "user.name=A", "commit", "-qm", "lib")
    (repo / "data").mkdir()
    (repo / "data" / "notes.txt").write_text("notes\n")
    (repo / "linked_data").symlink_to("data", target_is_directory=True)

    info = vcs.commit_working_tree(repo, "with a submodule")

    assert info["committed"] and info["sha"] == git(repo, "rev-parse", "HEAD").strip()
    modes = {line.split("\t")[1]: line.split()[0] for line in git(repo, "ls-files", "-s").splitlines()}
    assert modes["vendor/lib"] == "160000" and modes["linked_data"] == "120000"


GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"  # 36 characters after the prefix


FILLER_LINE = b"# nothing to see on this line\n"


def write_filler(path: Path, size: int, insert_at: int | None = None, text: bytes = b"") -> None:
    """A file of `size` bytes of harmless lines, with `text` written at byte `insert_at`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray((FILLER_LINE * (size // len(FILLER_LINE) + 1))[:size])
    if insert_at is not None:
        data[insert_at:insert_at + len(text)] = text
    path.write_bytes(bytes(data))


@pytest.mark.light
@pytest.mark.parametrize("offset", [3 * 1024 * 1024, vcs.SCAN_CHUNK_BYTES - 10], ids=["beyond_1mb", "across_chunks"])
def test_a_key_anywhere_in_a_file_is_refused(repo, offset):
    (repo / "README.md").write_text("project\n")
    commit_all(repo)
    write_filler(repo / "data" / "table.csv", 4 * 1024 * 1024, offset, GITHUB_TOKEN.encode())
    head = git(repo, "rev-parse", "HEAD")

    with pytest.raises(LabError, match=r"refusing to commit: data/table.csv \(contains what looks like a secret: "
                                       r"GitHub Token\)"):
        vcs.commit_working_tree(repo, "leak")

    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "diff", "--cached", "--name-only") == ""


def index_state(repo: Path) -> tuple[str, str, str]:
    """What is staged, what is not, and the index's tree: equal before and after means untouched."""
    return git(repo, "diff", "--cached"), git(repo, "diff"), git(repo, "write-tree")


def partially_staged(repo: Path) -> None:
    """a.txt with its first change staged (as `git add -p` leaves it) and a second one not, plus a leaked key."""
    lines = [f"line {n}\n" for n in range(1, 21)]
    (repo / "a.txt").write_text("".join(["first line changed\n", *lines[1:]]))
    git(repo, "add", "a.txt")
    (repo / "a.txt").write_text("".join(["first line changed\n", *lines[1:-1], "last line changed\n"]))
    (repo / "settings.py").write_text(f"TOKEN = '{GITHUB_TOKEN}'\n")


@pytest.mark.light
@pytest.mark.parametrize("with_history", [True, False], ids=["with_commits", "no_commits_yet"])
def test_refusal_restores_a_partially_staged_index_exactly(repo, with_history):
    if with_history:
        (repo / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 21)))
        commit_all(repo)
    partially_staged(repo)
    before = index_state(repo)
    assert before[0] and before[1], "the test starts with both staged and unstaged changes"

    with pytest.raises(LabError, match="refusing to commit: settings.py"):
        vcs.commit_working_tree(repo, "leak")

    assert index_state(repo) == before


@pytest.mark.light
def test_refusal_in_a_repository_without_commits_leaves_an_empty_index_empty(repo):
    (repo / "id_rsa").write_text("not really a key\n")
    with pytest.raises(LabError, match=r"id_rsa \(secret file name\)"):
        vcs.commit_working_tree(repo, "first")
    assert git(repo, "ls-files") == ""


@pytest.mark.light
def test_a_failed_commit_is_one_line_and_restores_the_index(repo, monkeypatch):
    (repo / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 21)))
    commit_all(repo)
    partially_staged(repo)
    (repo / "settings.py").unlink()
    before = index_state(repo)
    for name in ("EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")

    with pytest.raises(LabError) as refused:
        vcs.commit_working_tree(repo, "no identity")

    assert str(refused.value).startswith("git commit-tree failed: fatal:") and "\n" not in str(refused.value)
    assert index_state(repo) == before


@pytest.mark.light
def test_a_locked_index_is_a_one_line_error(repo):
    (repo / "a.txt").write_text("a\n")
    commit_all(repo)
    (repo / "a.txt").write_text("b\n")
    (repo / ".git" / "index.lock").write_text("")
    with pytest.raises(LabError, match=r"^another git command is running \(.*index\.lock exists\)"):
        vcs.commit_working_tree(repo, "locked")
    (repo / ".git" / "index.lock").unlink()
    assert git(repo, "diff", "--cached") == "" and git(repo, "log", "--oneline").count("\n") == 1


@pytest.mark.light
def test_large_lab_streams_are_committed_but_large_files_elsewhere_are_refused(repo):
    (repo / "README.md").write_text("project\n")
    commit_all(repo)
    records = repo / "logs"
    metrics = records / "runs" / "nsd_001" / "attempts" / "1" / "metrics.jsonl"
    write_filler(metrics, 10 * vcs.MB + 500_000)
    write_filler(repo / "data" / "big.bin", 10 * vcs.MB + 500_000)

    with pytest.raises(LabError) as refused:
        vcs.commit_working_tree(repo, "big", records_dir=records)
    assert "data/big.bin (10.5 MB > 10 MB)" in str(refused.value) and "metrics.jsonl" not in str(refused.value)

    (repo / "data" / "big.bin").unlink()
    info = vcs.commit_working_tree(repo, "records", records_dir=records)
    assert info["committed"] and "logs/runs/nsd_001/attempts/1/metrics.jsonl" in git(repo, "ls-files")


@pytest.mark.light
def test_lab_records_holding_a_key_are_redacted_not_refused(repo):
    (repo / "README.md").write_text("project\n")
    commit_all(repo)
    stdout = repo / "logs" / "runs" / "nsd_001" / "attempts" / "1" / "stdout.log"
    stdout.parent.mkdir(parents=True)
    stdout.write_text(f"logging in with {GITHUB_TOKEN}\nstep 1 loss 0.5\n")
    info = vcs.commit_working_tree(repo, "records", records_dir=repo / "logs")
    committed = git(repo, "show", "HEAD:logs/runs/nsd_001/attempts/1/stdout.log")
    assert info["committed"] and committed == "logging in with [redacted]\nstep 1 loss 0.5\n"
    assert stdout.read_text() == committed


@pytest.mark.light
def test_dirty_state_redacts_keys_and_leaves_out_secret_files(repo):
    (repo / "train.py").write_text("lr = 1e-3\n")
    (repo / ".env").write_text("WANDB_MODE=offline\n")
    commit_all(repo)
    (repo / "train.py").write_text(f"lr = 3e-4\nheaders = {{'auth': '{GITHUB_TOKEN}'}}\n")
    (repo / ".env").write_text("WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567\n")
    (repo / "new_notes.md").write_text("untracked\n")

    info, diff = vcs.dirty_state(repo)

    assert info == {"sha": git(repo, "rev-parse", "HEAD").strip(), "branch": "main", "committed": False, "files": 0}
    assert "+lr = 3e-4" in diff and "+headers = {'auth': '[redacted]'}" in diff
    assert GITHUB_TOKEN not in diff and "0123456789abcdef" not in diff and "WANDB" not in diff
    assert "# left out: .env (secret file name)" in diff and "# untracked: new_notes.md" in diff


@pytest.mark.light
def test_dirty_state_outside_git_is_none(tmp_path):
    assert vcs.dirty_state(tmp_path) == (None, "")


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("name, content, reason", [
    (".env", "WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567\n", "secret file name"),
    ("keys/server.pem", "-----BEGIN RSA PRIVATE KEY-----\n", "secret file name"),
    ("settings.py", "api_key = 'abcdefghijklmnopqrstuvwxyz123456'\n", "looks like a secret"),
    ("weights.bin", None, "> 10 MB"),
])
def test_launch_refuses_to_commit_secrets_and_large_files(lab, repo, train_script, name, content, reason):
    lab("new-run", "dia_012", "--hypothesis", "h")
    path = repo / name
    path.parent.mkdir(exist_ok=True)
    if content is None:
        path.write_bytes(b"\0" * (11 * 1024 * 1024))
    else:
        path.write_text(content)
    if name == ".env":
        (repo / ".gitignore").write_text("")  # a lab whose .gitignore lost its .env entry
    result = lab("launch", "dia_012", "--", sys.executable, "my_train.py", check=False)
    one_line_error(result, "refusing to commit", name, reason)
    assert git(repo, "diff", "--cached", "--name-only") == ""
    assert path.exists()
    assert not (repo / "logs/runs/dia_012/attempts").exists()


def test_a_file_name_with_a_newline_cannot_forge_diff_lines(project):
    (project / "evil\n# left out: nothing").write_text("x\n")
    _, diff = vcs.dirty_state(project)
    assert '# untracked: "evil\\n# left out: nothing"' in diff
    assert not any(line.startswith("# left out") for line in diff.splitlines())


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


def test_a_bad_policy_in_lab_json_is_one_line(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    settings["commit"] = {"max_file_mb": "big"}
    (lab.repo / "lab.json").write_text(json.dumps(settings))
    lab("new-run", "s_003", "--hypothesis", "h")
    result = lab("launch", "s_003", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "max_file_mb" in result.stderr


def hook(repo: Path, name: str, body: str) -> None:
    path = repo / ".git" / "hooks" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_hooks_that_refuse_the_users_commits_refuse_the_labs(lab, repo):
    lab("new-run", "g_001", "--hypothesis", "h")
    hook(repo, "pre-commit", "echo 'lint failed: trailing whitespace' >&2\nexit 1\n")
    result = lab("launch", "g_001", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "the pre-commit hook refused (exit 1): lint failed: trailing whitespace" in result.stderr
    assert "Test 1" not in lab("show", "g_001").stdout and "test 1" not in lab("show", "g_001").stdout
    (repo / ".git" / "hooks" / "pre-commit").unlink()
    hook(repo, "commit-msg", "grep -q '^JIRA-' \"$1\" || { echo 'message must start with JIRA-'; exit 1; }\n")
    result = lab("launch", "g_001", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and "the commit-msg hook refused (exit 1): message must start with JIRA-" \
        in result.stderr
    hook(repo, "commit-msg", "sed -i 's/^/JIRA-1 /' \"$1\"\n")  # a hook that edits the message
    lab("launch", "g_001", "--", sys.executable, "-c", "print(1)")
    assert git(repo, "log", "-1", "--format=%s").startswith("JIRA-1 ")


FAKE_SIGNER = ("#!/bin/sh\ncat > /dev/null\necho '[GNUPG:] SIG_CREATED D 1 8 00 1 ABCD' >&2\n"
               "printf -- '-----BEGIN PGP SIGNATURE-----\\nfake\\n-----END PGP SIGNATURE-----\\n'\n")


def test_a_repository_that_signs_gets_signed_lab_commits(lab, repo, tmp_path):
    signer = tmp_path / "signer.sh"
    signer.write_text(FAKE_SIGNER)
    signer.chmod(0o755)
    git(repo, "config", "commit.gpgsign", "true")
    git(repo, "config", "gpg.program", str(signer))
    lab("new-run", "g_002", "--hypothesis", "h")
    lab("launch", "g_002", "--", sys.executable, "-c", "print(1)")
    assert "gpgsig -----BEGIN PGP SIGNATURE-----" in git(repo, "cat-file", "commit", "HEAD")
    git(repo, "config", "gpg.program", "false")  # a signer that fails
    (repo / "change.txt").write_text("x")
    result = lab("launch", "g_002", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "git commit-tree failed" in result.stderr


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def test_an_edited_submodule_is_recorded_with_the_attempt(lab, repo, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    git(library, "init", "-q", "-b", "main")
    git(library, "config", "user.email", "a@example.org")
    git(library, "config", "user.name", "A")
    (library / "layers.py").write_text("WIDTH = 64\n")
    git(library, "add", "-A")
    git(library, "commit", "-qm", "library")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(repo, "commit", "-qm", "add lib")
    (repo / "lib" / "layers.py").write_text("WIDTH = 128\n")  # edited, not committed in the submodule
    lab("new-run", "m_001", "--hypothesis", "h")
    result = lab("launch", "m_001", "--", sys.executable, "-c", "print(1)")
    assert "submodule lib has uncommitted changes (1 file)" in result.stderr
    [module] = attempt_of(lab, "m_001")["git"]["submodules"]
    assert module["path"] == "lib" and module["dirty"] == ["layers.py"]
    assert module["sha"] == git(library, "rev-parse", "HEAD").strip() and "+WIDTH = 128" in module["diff"]


@pytest.mark.light
def test_a_sparse_checkout_without_logs_says_how_to_add_logs(lab, repo):
    (repo / "src").mkdir()
    (repo / "src" / "train.py").write_text("print('training')\n")
    commit_all(repo)
    git(repo, "sparse-checkout", "set", "src")
    lab("new-run", "exp_001", "--hypothesis", "sparse")

    result = lab("launch", "exp_001", "--", sys.executable, "-c", "pass", check=False)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "lab: error: git add failed: logs/ is outside the sparse checkout, so git cannot commit it (a launch commits "
        "the lab's records and code): add it with `git sparse-checkout add logs`")
    assert "hint:" not in result.stderr
    git(repo, "sparse-checkout", "add", "logs")
    assert lab("launch", "exp_001", "--", sys.executable, "-c", "pass").returncode == 0


@pytest.mark.light
@pytest.mark.parametrize("stderr, reason", [
    ("hint: one\nerror: the cause\nfatal: what followed\nhint: last", "error: the cause"),
    ("warning: a note\nhint: Disable this message", "warning: a note"),
    ("hint: only hints\nhint: here", None),
])
def test_a_git_failure_is_its_first_error_line_never_a_hint(stderr, reason):
    assert vcs.failure_reason(stderr) == reason
