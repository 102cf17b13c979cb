"""One lab across machines: two clones `a` and `b` of one bare remote, real git, real `python -m lab` processes.

Each test is one of the failing cases of issue 19, seen from what a researcher sees: ids, Test numbers, records
on both sides, git state and one-line errors.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.records.files import read_jsonl
from lab.records.store import Store
from lab_testing import git, lab_env, run_lab

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

TRAIN = """\
import os, sys, time
from lab import tracker
for step in range(1, 31):
    tracker.log(step, **{"train/loss": 1.0 / step})
    print("step", step, flush=True)
    while step == 15 and len(sys.argv) > 1 and not os.path.exists(sys.argv[1]):
        time.sleep(0.05)  # half-way, wait until the test says go on
"""


class Clone:
    """One clone of the shared remote: `lab(...)` (in process) and `git(...)` run in it; `start(...)` starts `lab`
    as a process of its own, to run beside what the other clone does."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def lab(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = run_lab(*args, cwd=self.path, env=lab_env(PYTHONPATH=str(Path(__file__).resolve().parents[2])),
                         timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: lab {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "lab", *args], cwd=self.path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=lab_env(PYTHONPATH=str(Path(__file__).resolve().parents[2])))

    @property
    def store(self) -> Store:
        return Store(self.path)


def make_clone(remote: Path, path: Path, name: str) -> Clone:
    subprocess.run(["git", "clone", "-q", str(remote), str(path)], check=True, capture_output=True)
    clone = Clone(path, name)
    clone.git("config", "user.email", f"{name}@example.org")
    clone.git("config", "user.name", name)
    return clone


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Clone, Clone]:
    """A lab pushed to a bare remote by `a`, and `b` cloned from it after (lab init run in each)."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    a = make_clone(remote, tmp_path / "a", "a")
    a.git("checkout", "-q", "-b", "main")
    a.lab("init", "--wandb-project", "shared-lab")
    (a.path / "train.py").write_text(TRAIN)
    a.git("add", "-A")
    a.git("commit", "-qm", "lab")
    a.git("push", "-q", "-u", "origin", "main")
    b = make_clone(remote, tmp_path / "b", "b")
    b.lab("init")
    return a, b


def commit(clone: Clone, message: str = "records") -> None:
    """Commit what a record-only command left uncommitted (new-run commits nothing by itself; notes do)."""
    clone.git("add", "-A")
    if clone.git("status", "--porcelain"):
        clone.git("commit", "-qm", message)


def shared_run(a: Clone, b: Clone, run_id: str, hypothesis: str) -> None:
    """`run_id` made on clone a, committed and pushed, and pulled into clone b."""
    a.lab("new-run", run_id, "--hypothesis", hypothesis)
    commit(a)
    a.git("push", "-q")
    b.git("pull", "-q", "--no-rebase")


def attempts_of(clone: Clone, run_id: str) -> list[dict]:
    return json.loads(clone.lab("show", run_id, "--json").stdout)["attempts"]


def metric_rows(clone: Clone, run_id: str, number: int) -> list[dict]:
    return list(read_jsonl(clone.store.attempt_dir(run_id, number) / "metrics.jsonl"))


def wait_until_running(clone: Clone, run_id: str) -> None:
    """Return once a launch started with `clone.start` has begun its attempt (its launch commit made)."""
    deadline = time.monotonic() + 60
    while not list((clone.path / ".git/lab/running" / run_id / "attempts").glob("*/attempt.json")):
        assert time.monotonic() < deadline, f"the launch of {run_id} never started"
        time.sleep(0.05)


def test_next_ids_are_reserved_through_the_remote(clones):
    a, b = clones
    assert "created dia_001" in a.lab("new-run", "dia", "--next", "--hypothesis", "a's").stdout
    assert "created dia_002" in b.lab("new-run", "dia", "--next", "--hypothesis", "b's").stdout
    refused = b.lab("new-run", "dia_001", "--hypothesis", "explicit", check=False)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("lab: error: run id dia_001 is already taken by another clone")
    assert not (b.path / "logs/runs/dia_001").exists()


@pytest.mark.wandb
def test_a_collision_made_offline_is_named_once_and_lab_rename_keeps_both_runs(clones):
    a, b = clones
    a.lab("new-run", "dia_001", "--hypothesis", "a's decoder")
    a.lab("launch", "dia_001", "--", sys.executable, "train.py")
    a.git("push", "-q")
    remote = b.git("remote", "get-url", "origin").strip()
    b.git("remote", "set-url", "origin", str(b.path.parent / "unreachable.git"))
    made = b.lab("new-run", "dia_001", "--hypothesis", "b's encoder")
    assert "reserved on this clone only" in made.stderr
    b.lab("launch", "dia_001", "--", sys.executable, "train.py")
    b.lab("launch", "dia_001", "--", sys.executable, "train.py")
    b.git("remote", "set-url", "origin", remote)
    subprocess.run(["git", "pull", "-q", "--no-rebase", "--no-edit"], cwd=b.path, capture_output=True)

    listed = b.lab("runs")
    warning = [line for line in listed.stderr.splitlines() if "dia_001" in line]
    assert len(warning) == 1 and "created on two clones" in warning[0]
    assert "lab rename dia_001 dia_002" in warning[0]

    renamed = b.lab("rename", "dia_001", "dia_002")
    assert "renamed this clone's dia_001 to dia_002 (2 attempt(s))" in renamed.stdout
    b.git("commit", "-qm", "merge a's lab")
    assert json.loads(b.lab("show", "dia_001", "--json").stdout)["run"]["hypothesis"] == "a's decoder"
    assert json.loads(b.lab("show", "dia_002", "--json").stdout)["run"]["hypothesis"] == "b's encoder"
    assert [len(attempts_of(b, run)) for run in ("dia_001", "dia_002")] == [1, 2]
    for run, count in (("dia_001", 1), ("dia_002", 2)):
        for number in range(1, count + 1):
            steps = [row["step"] for row in metric_rows(b, run, number)]
            assert steps == list(range(1, 31))  # one experiment per attempt, never two interleaved
    names = [attempt["wandb"]["name"] for attempt in attempts_of(b, "dia_002")]
    assert names == [f"{b.store.runs.load('dia_002')['slug']}_test{n}" for n in (1, 2)]
    b.git("push", "-q")
    a.git("pull", "-q", "--no-rebase")
    assert "created dia_003" in a.lab("new-run", "dia", "--next", "--hypothesis", "next").stdout


def test_an_offline_id_taken_first_elsewhere_is_named_after_a_fetch_and_renamed_before_the_merge(clones):
    a, b = clones
    a.lab("new-run", "dia_001", "--hypothesis", "a's decoder")
    a.lab("launch", "dia_001", "--", sys.executable, "train.py")
    a.git("push", "-q")
    remote = b.git("remote", "get-url", "origin").strip()
    b.git("remote", "set-url", "origin", str(b.path.parent / "unreachable.git"))
    b.lab("new-run", "dia_001", "--hypothesis", "b's encoder")
    b.lab("launch", "dia_001", "--", sys.executable, "train.py")
    b.git("remote", "set-url", "origin", remote)
    b.git("fetch", "-q")
    warning = b.lab("runs").stderr
    assert warning.count("\n") == 1 and "another clone reserved dia_001 first" in warning
    assert "lab rename dia_001 dia_002" in warning
    b.lab("rename", "dia_001", "dia_002")
    commit(b, "dia_001 was a's")
    merged = subprocess.run(["git", "pull", "--no-rebase", "--no-edit"], cwd=b.path, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert b.lab("runs").stderr == ""
    hypotheses = {run: b.store.runs.load(run)["hypothesis"] for run in ("dia_001", "dia_002")}
    assert hypotheses == {"dia_001": "a's decoder", "dia_002": "b's encoder"}
    assert [len(attempts_of(b, run)) for run in ("dia_001", "dia_002")] == [1, 1]
    b.git("push", "-q")


def test_rename_moves_every_reference(clones):
    a, _ = clones
    (a.path / "base.json").write_text('{"lr": 0.1}')
    a.lab("baseline", "add", "base", "--config", "base.json")
    a.lab("new-run", "dia_001", "--baseline", "base", "--hypothesis", "first")
    a.lab("launch", "dia_001", "--", sys.executable, "train.py")
    a.lab("changelog", "base", "--current", "dia_001")
    a.lab("new-run", "dia_002", "--from", "dia_001", "--hypothesis", "second")
    a.lab("launch", "dia_002", "--", sys.executable, "train.py")
    a.lab("compare", "dia_001", "dia_002", "--name", "pair")
    a.lab("rename", "dia_001", "dia_009")
    assert a.lab("show", "dia_001", check=False).returncode != 0
    assert a.store.runs.load("dia_002")["parent"] == "dia_009"
    assert a.store.runs.load("dia_009")["slug"].endswith("_dia_009_first")
    assert a.store.baselines.get("base")["current"] == "dia_009"
    a.lab("render")
    page = (a.path / "logs/ablations/pair.md").read_text()
    assert "dia_009" in page and "dia_001" not in page
    assert not (a.path / "logs/reports/dia_001.md").exists() and (a.path / "logs/reports/dia_009.md").exists()


def test_attempts_from_two_clones_are_tests_1_2_3_each_with_its_records(clones):
    a, b = clones
    shared_run(a, b, "nsd_001", "shared run")
    a.lab("launch", "nsd_001", "--note", "on a", "--", sys.executable, "train.py")
    time.sleep(1.1)  # attempts order by their start second (then clone): b's starts a second later than a's
    b.lab("launch", "nsd_001", "--note", "on b", "--", sys.executable, "train.py")
    a.git("push", "-q")
    merged = subprocess.run(["git", "pull", "--no-rebase", "--no-edit"], cwd=b.path, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    b.lab("launch", "nsd_001", "--note", "on b again", "--", sys.executable, "train.py")
    attempts = attempts_of(b, "nsd_001")
    assert [attempt["number"] for attempt in attempts] == [1, 2, 3]
    assert [attempt["note"] for attempt in attempts] == ["on a", "on b", "on b again"]
    for number in (1, 2, 3):
        assert [row["step"] for row in metric_rows(b, "nsd_001", number)] == list(range(1, 31))
    b.lab("note", "nsd_001", "--attempt", "1", "--result", "a's result")
    assert b.git("status", "--porcelain") == ""  # the note committed itself, ready to push
    assert b.git("log", "-1", "--format=%s").strip() == "lab records: notes of " + \
        json.loads(b.lab("show", "nsd_001", "--json").stdout)["run"]["slug"]
    b.git("push", "-q")
    a.git("pull", "-q", "--no-rebase")
    shown = a.lab("show", "nsd_001").stdout
    assert "test 3: finished" in shown and "result (test 1): a's result" in shown


def test_existing_numbered_attempts_keep_reading_before_new_ones(clones):
    a, _ = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "old lab")
    old = a.path / "logs/runs/nsd_001/attempts/1"
    old.mkdir(parents=True)
    (old / "attempt.json").write_text(json.dumps({"run": "nsd_001", "number": 1, "status": "finished",
                                                  "started": "2026-11-01T10:00:00+00:00", "command": ["x"]}))
    a.lab("launch", "nsd_001", "--note", "new layout", "--", sys.executable, "train.py")
    attempts = attempts_of(a, "nsd_001")
    assert [(attempt["number"], attempt["key"]) for attempt in attempts][0] == (1, "1")
    assert attempts[1]["number"] == 2 and attempts[1]["note"] == "new layout"


def test_shared_files_merge_by_union_and_pages_stay_out_of_git(clones):
    a, b = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "one")
    a.lab("new-run", "nsd_002", "--hypothesis", "two")
    a.lab("launch", "nsd_001", "--", sys.executable, "train.py")
    a.lab("launch", "nsd_002", "--", sys.executable, "train.py")
    a.git("push", "-q")
    b.git("pull", "-q", "--no-rebase")
    running = a.start("launch", "nsd_001", "--", sys.executable, "train.py", str(a.path.parent / "go"))
    wait_until_running(a, "nsd_001")  # its launch commit made: what follows happens while it runs
    b.lab("note", "nsd_001", "--findings", "noted on b while a runs")
    for clone in (a, b):
        clone.lab("note", "--insight", f"insight from {clone.name}")
        clone.lab("compare", "nsd_001", "nsd_002", "--name", f"pair_{clone.name}")
        clone.lab("log")
        clone.lab("render")
    b.git("add", "-A")
    b.git("commit", "-qm", "b's notes")
    b.git("push", "-q")
    (a.path.parent / "go").touch()
    assert running.wait(timeout=120) == 0
    a.git("add", "-A")
    a.git("commit", "-qm", "a's notes")
    merged = subprocess.run(["git", "pull", "--no-rebase", "--no-edit"], cwd=a.path, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    journal = [event["text"] for event in read_jsonl(a.path / "logs/journal.jsonl")]
    assert sorted(journal) == ["insight from a", "insight from b"]
    assert "findings: noted on b while a runs" in a.lab("show", "nsd_001").stdout
    assert len(attempts_of(a, "nsd_001")) == 2
    tracked = a.git("ls-files", "logs")
    assert "logs/daily" not in tracked and "logs/reports" not in tracked and ".md" not in tracked
    pages = sorted(a.path.glob("logs/**/*.md"))
    a.lab("render")
    first = {page: page.read_bytes() for page in pages}
    a.lab("render")
    assert {page: page.read_bytes() for page in pages} == first
    assert (a.path / "logs/ablations/pair_b.md").exists()  # b's comparison is rebuilt from the merged index
    assert a.git("status", "--porcelain") == ""


def test_conflict_markers_in_a_jsonl_are_one_line_errors(clones):
    a, _ = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "one")
    events = a.path / "logs/runs/nsd_001/events.jsonl"
    events.write_text("<<<<<<< HEAD\n" + events.read_text() + "=======\n{}\n>>>>>>> theirs\n")
    shown = a.lab("show", "nsd_001", check=False)
    assert shown.returncode != 0 and shown.stderr.count("\n") == 1
    assert "unresolved git conflict" in shown.stderr
    listed = a.lab("runs")
    assert "unresolved git conflict" in listed.stderr and "unreadable" in listed.stdout


def test_git_operations_during_a_run_lose_nothing(clones):
    a, b = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "long run")
    a.lab("new-run", "nsd_002", "--hypothesis", "short run")
    commit(a)
    a.git("push", "-q")
    running = a.start("launch", "nsd_001", "--", sys.executable, "train.py", str(a.path.parent / "go"))
    folder = None
    for _ in range(200):
        found = list((a.path / ".git/lab/running/nsd_001/attempts").glob("*/metrics.jsonl"))
        if found:
            folder = found[0].parent
            break
        time.sleep(0.05)
    assert folder is not None, "the attempt never started"
    b.git("pull", "-q", "--no-rebase")
    b.lab("note", "--insight", "meanwhile on b")
    commit(b)
    b.git("push", "-q")
    (a.path / "notes.txt").write_text("a local edit\n")
    a.git("add", "-A")
    a.git("commit", "-qm", "everything")
    (a.path / "notes.txt").write_text("another edit\n")
    a.git("stash", "-q")
    a.git("stash", "pop", "-q")
    subprocess.run(["git", "pull", "-q", "--rebase", "--autostash"], cwd=a.path, check=True, capture_output=True)
    a.lab("launch", "nsd_002", "--", sys.executable, "train.py")  # a second launch while the first runs
    for sha in a.git("log", "--format=%H").split():
        assert "nsd_001/attempts" not in a.git("show", "--name-only", "--format=", sha)
    assert running.poll() is None and len(list(read_jsonl(folder / "metrics.jsonl"))) == 15
    (a.path.parent / "go").touch()
    assert running.wait(timeout=120) == 0
    attempt = attempts_of(a, "nsd_001")[0]
    assert attempt["status"] == "finished"
    assert len(metric_rows(a, "nsd_001", 1)) == 30
    stdout = (a.store.attempt_dir("nsd_001", 1) / "stdout.log").read_text().splitlines()
    assert stdout == [f"step {n}" for n in range(1, 31)]
    assert a.git("status", "--porcelain", "logs") == ""  # its records were committed when it ended
    a.git("push", "-q")
    b.git("pull", "-q", "--no-rebase")
    assert len(metric_rows(b, "nsd_001", 1)) == 30


def test_launch_commits_stay_reachable_after_a_rebase(clones, tmp_path):
    a, b = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "a")
    b.lab("new-run", "nsd_002", "--hypothesis", "b")
    for clone in (a, b):
        (clone.path / f"{clone.name}.py").write_text("x = 1\n")
        clone.lab("launch", "nsd_001" if clone is a else "nsd_002", "--", sys.executable, "train.py")
    a.git("push", "-q")
    subprocess.run(["git", "pull", "-q", "--rebase"], cwd=b.path, check=True, capture_output=True)
    b.git("push", "-q")
    rebased = attempts_of(b, "nsd_002")[0]["git"]["sha"]
    assert rebased not in b.git("log", "--format=%H", "main")  # the rebase rewrote it
    c = make_clone(Path(b.git("remote", "get-url", "origin").strip()), tmp_path / "c", "c")
    c.lab("init")
    c.git("fetch", "-q")
    recorded = {clone_of.name: attempts_of(c, run)[0]["git"]["sha"] for clone_of, run in ((a, "nsd_001"),
                                                                                           (b, "nsd_002"))}
    for name, sha in recorded.items():
        c.git("checkout", "-q", sha)
        assert (c.path / f"{name}.py").exists()


def test_detached_head_and_unfinished_merge_are_refused(clones):
    a, b = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "x")
    commit(a)
    a.git("checkout", "-q", "--detach")
    refused = a.lab("launch", "nsd_001", "--", sys.executable, "train.py", check=False)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "HEAD is detached" in refused.stderr
    a.git("checkout", "-q", "main")
    assert a.store.attempts.numbers("nsd_001") == []
    (a.path / "shared.txt").write_text("a\n")
    a.git("add", "-A")
    a.git("commit", "-qm", "a")
    (b.path / "shared.txt").write_text("b\n")
    b.git("add", "-A")
    b.git("commit", "-qm", "b")
    b.git("push", "-q")
    subprocess.run(["git", "pull", "--no-rebase", "-q"], cwd=a.path, capture_output=True)
    assert "<<<<<<<" in (a.path / "shared.txt").read_text()
    refused = a.lab("launch", "nsd_001", "--", sys.executable, "train.py", check=False)
    assert refused.returncode != 0 and "a merge is in progress" in refused.stderr
    assert a.git("ls-files", "--unmerged", "shared.txt")  # still unresolved, nothing committed


@pytest.mark.wandb
def test_sync_touches_only_this_clones_attempts(clones):
    a, b = clones
    a.lab("new-run", "nsd_001", "--hypothesis", "x")
    a.lab("launch", "nsd_001", "--", sys.executable, "train.py")
    a.git("push", "-q")
    b.git("pull", "-q", "--no-rebase")
    synced = b.lab("sync")
    assert synced.stdout.strip() == "nothing pending"
    assert b.git("status", "--porcelain") == ""
    own = a.lab("sync", check=False)  # a holds the offline W&B run: it tries it (and, offline, keeps it pending)
    assert own.returncode != 0 and "cannot reach the W&B server" in own.stderr
    assert attempts_of(a, "nsd_001")[0]["wandb"].get("started") is not False


def test_read_commands_never_change_another_clones_running_attempt(clones):
    a, b = clones
    shared_run(a, b, "nsd_001", "x")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    other = b.path / "logs/runs/nsd_001/attempts/20261130T000000Z-0a0b0c0d"
    other.mkdir(parents=True)
    record = {"run": "nsd_001", "number": 1, "status": "running", "started": "2026-11-30T00:00:00+00:00",
              "command": ["x"], "clone": "0a0b0c0d-0000-4000-8000-000000000000", "host": os.uname().nodename,
              "pid": dead.pid}
    (other / "attempt.json").write_text(json.dumps(record))
    before = (other / "attempt.json").read_bytes()
    assert "running" in b.lab("runs").stdout
    assert (other / "attempt.json").read_bytes() == before  # same host, another clone: left alone

    launcher = a.start("launch", "nsd_001", "--", sys.executable, "train.py", str(a.path.parent / "never"))
    for _ in range(200):
        if list((a.path / ".git/lab/running/nsd_001/attempts").glob("*/attempt.json")):
            break
        time.sleep(0.05)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    assert "crashed" in a.lab("runs").stdout  # this clone's own attempt whose launcher vanished


def test_an_rm_merged_against_a_new_attempt_from_the_other_clone_is_said_in_one_line_and_rm_archives_it(clones):
    a, b = clones
    shared_run(a, b, "nsd_001", "removed on b while a runs it")
    b.lab("rm", "nsd_001", "--yes")
    commit(b, "rm nsd_001")
    b.git("push", "-q")
    a.lab("launch", "nsd_001", "--", sys.executable, "train.py")
    merged = subprocess.run(["git", "pull", "--no-rebase", "--no-edit"], cwd=a.path, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    [archived] = (a.path / "logs" / "archive").iterdir()

    listed = a.lab("runs")

    assert listed.stderr.strip().splitlines() == [
        f"lab: warning: logs/runs/nsd_001 holds 1 attempt(s) but no run.json: nsd_001 was removed "
        f"(logs/archive/{archived.name}) while they ran on another clone; `lab rm nsd_001 --yes` moves them to its "
        "archive"]
    assert a.lab("rm", "nsd_001", "--yes").stdout.strip() == (
        f"moved the attempts of nsd_001 that ended after it was removed into logs/archive/{archived.name}/attempts")
    [kept] = (archived / "attempts").iterdir()
    assert json.loads((kept / "attempt.json").read_text())["status"] == "finished"
    assert not (a.path / "logs" / "runs" / "nsd_001").exists()
    assert a.lab("runs").stderr == ""


SHARE_LINE = ("lab: warning: the launch commit of 1 attempt is on no remote (exp_001 Test {n}): share it with git "
              "push origin 'refs/lab/*:refs/lab/*'")


def rebase_over_b(a: Clone, b: Clone, name: str) -> str:
    """a launches exp_001 while b pushes a commit, then a rebases onto it; returns the sha a's attempt recorded."""
    (a.path / "model.py").write_text(f"WIDTH = {len(name)}\n")  # an edit the launch commits
    a.lab("launch", "exp_001", "--", sys.executable, "train.py")
    b.git("pull", "-q", "--no-rebase")
    (b.path / f"{name}.txt").write_text("b's change\n")
    commit(b, f"b: {name}")
    b.git("push", "-q")
    sha = attempts_of(a, "exp_001")[-1]["git"]["sha"]
    assert "on no remote" not in a.lab("runs").stderr  # not pushed yet, but on the branch a push carries
    a.git("pull", "-q", "--rebase")  # rewrites a's unpushed launch commit
    assert sha not in a.git("log", "--format=%H").split()  # no branch holds the recorded commit any more
    return sha


def test_a_launch_commit_that_a_rebase_and_an_explicit_push_leave_behind_is_named_until_it_is_shared(clones):
    a, b = clones
    shared_run(a, b, "exp_001", "h")
    sha = rebase_over_b(a, b, "first")
    a.git("push", "-q", "origin", "main")  # an explicit refspec: refs/lab/* stay behind
    first = a.lab("runs")
    assert SHARE_LINE.format(n=1) in first.stderr.splitlines()
    assert "on no remote" not in a.lab("runs").stderr  # said once
    b.git("pull", "-q", "--no-rebase")
    assert subprocess.run(["git", "cat-file", "-e", sha], cwd=b.path).returncode != 0  # b cannot see it yet
    a.git("push", "-q", "origin", "refs/lab/*:refs/lab/*")  # the command the warning names
    assert "on no remote" not in a.lab("runs").stderr
    b.git("pull", "-q", "--no-rebase")
    b.git("cat-file", "-e", sha)  # the colleague has the recorded commit


def test_a_plain_push_after_a_rebase_shares_the_launch_commit_without_a_word(clones):
    a, b = clones
    shared_run(a, b, "exp_001", "h")
    sha = rebase_over_b(a, b, "second")
    a.git("push", "-q")  # lab init's push refspecs carry refs/lab/* beside the branch
    assert "on no remote" not in a.lab("runs").stderr
    b.git("pull", "-q", "--no-rebase")
    b.git("cat-file", "-e", sha)


def test_the_sharing_check_adds_its_mirror_and_keeps_every_remotes_own_refspecs(clones):
    a, _ = clones
    remote_url = a.git("remote", "get-url", "origin").strip()
    a.git("remote", "add", "upstream", remote_url)
    before = {name: a.git("config", "--get-all", f"remote.{name}.fetch").split() for name in ("origin", "upstream")}
    a.lab("runs")
    after = {name: a.git("config", "--get-all", f"remote.{name}.fetch").split() for name in ("origin", "upstream")}
    assert after["upstream"] == [*before["upstream"], "+refs/lab/commits/*:refs/remotes/upstream/lab/commits/*"]
    assert "+refs/heads/*:refs/remotes/origin/*" in after["origin"]
    mirror = after["origin"].index("+refs/lab/commits/*:refs/remotes/origin/lab/commits/*")
    assert mirror < after["origin"].index("+refs/lab/*:refs/lab/*")  # the mirror maps the launch commits first
    a.lab("runs")
    assert a.git("config", "--get-all", "remote.upstream.fetch").split() == after["upstream"]  # nothing more


def test_the_reminder_repeats_once_a_day_and_never_storms_when_its_cache_cannot_be_written(clones, monkeypatch):
    a, b = clones
    shared_run(a, b, "exp_001", "h")
    rebase_over_b(a, b, "third")
    a.git("push", "-q", "origin", "main")
    assert SHARE_LINE.format(n=1) in a.lab("runs").stderr.splitlines()
    assert "on no remote" not in a.lab("runs").stderr
    cache_path = Store(a.path).lab_dir / "cache" / "shared.json"
    cache = json.loads(cache_path.read_text())
    cache_path.write_text(json.dumps({**cache, "warned_at": cache["warned_at"] - 25 * 3600}))  # a day later
    assert SHARE_LINE.format(n=1) in a.lab("runs").stderr.splitlines()
    assert "on no remote" not in a.lab("runs").stderr
    cache_path.unlink()

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lab.launcher.shared.write_json", full)
    assert ["on no remote" in a.lab("runs").stderr for _ in range(3)] == [False] * 3
