"""Git capture on real temporary repositories: what is committed, what is refused, and the index left behind."""

from pathlib import Path

import pytest
from lab_testing import git

from lab.launcher import vcs
from lab.errors import LabError

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"  # 36 characters after the prefix
FILLER_LINE = b"# nothing to see on this line\n"


def commit_all(repo: Path, message: str = "start") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def write_filler(path: Path, size: int, insert_at: int | None = None, text: bytes = b"") -> None:
    """A file of `size` bytes of harmless lines, with `text` written at byte `insert_at`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray((FILLER_LINE * (size // len(FILLER_LINE) + 1))[:size])
    if insert_at is not None:
        data[insert_at:insert_at + len(text)] = text
    path.write_bytes(bytes(data))


def index_state(repo: Path) -> tuple[str, str, str]:
    """What is staged, what is not, and the index's tree: equal before and after means untouched."""
    return git(repo, "diff", "--cached"), git(repo, "diff"), git(repo, "write-tree")


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


def partially_staged(repo: Path) -> None:
    """a.txt with its first change staged (as `git add -p` leaves it) and a second one not, plus a leaked key."""
    lines = [f"line {n}\n" for n in range(1, 21)]
    (repo / "a.txt").write_text("".join(["first line changed\n", *lines[1:]]))
    git(repo, "add", "a.txt")
    (repo / "a.txt").write_text("".join(["first line changed\n", *lines[1:-1], "last line changed\n"]))
    (repo / "settings.py").write_text(f"TOKEN = '{GITHUB_TOKEN}'\n")


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


def test_refusal_in_a_repository_without_commits_leaves_an_empty_index_empty(repo):
    (repo / "id_rsa").write_text("not really a key\n")
    with pytest.raises(LabError, match=r"id_rsa \(secret file name\)"):
        vcs.commit_working_tree(repo, "first")
    assert git(repo, "ls-files") == ""


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


def test_a_locked_index_is_a_one_line_error(repo):
    (repo / "a.txt").write_text("a\n")
    commit_all(repo)
    (repo / "a.txt").write_text("b\n")
    (repo / ".git" / "index.lock").write_text("")
    with pytest.raises(LabError, match=r"^another git command is running \(.*index\.lock exists\)"):
        vcs.commit_working_tree(repo, "locked")
    (repo / ".git" / "index.lock").unlink()
    assert git(repo, "diff", "--cached") == "" and git(repo, "log", "--oneline").count("\n") == 1


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


def test_dirty_state_outside_git_is_none(tmp_path):
    assert vcs.dirty_state(tmp_path) == (None, "")
