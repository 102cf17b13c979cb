"""`lab launch`: the command it runs as a child (exit status, variables, its output teed to stdout.log), the commit it
makes first, signals, children left behind, and the running attempt's records."""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from lab_testing import git, lab_env

from lab.launcher.output import OutputLog, overprint
from lab.records.store import Store
from lab.records.store.attempts import Attempts


def read(path):
    return json.loads(path.read_text())


def attempt_record(repo, run_id, number):
    return read(Store(repo).attempt_dir(run_id, number) / "attempt.json")


@pytest.mark.wandb
def test_launch_passes_the_exit_status_and_lab_variables(lab, repo):
    (repo / "show_env.py").write_text(
        "import os, sys\n"
        "for k in ['LAB_RUN_ID','LAB_ATTEMPT_DIR','WANDB_RUN_ID','WANDB_PROJECT','WANDB_ENTITY','WANDB_RUN_GROUP',"
        "'WANDB_NOTES']:\n"
        "    print(k, '=', os.environ.get(k))\n"
        "sys.exit(3)\n"
    )
    lab("new-run", "dia_010", "--hypothesis", "Exit codes pass through", "--group", "g1")
    result = lab("launch", "dia_010", "--", sys.executable, "show_env.py", check=False)
    assert result.returncode == 3
    attempt = attempt_record(repo, "dia_010", 1)
    assert attempt["status"] == "failed" and attempt["exit_code"] == 3
    assert re.search(r"WANDB_RUN_ID = [a-z0-9]{8}\n", result.stdout)
    assert attempt["wandb"] is None  # the script never started W&B: no link to a run that does not exist
    assert "LAB_RUN_ID = dia_010" in result.stdout and "WANDB_RUN_GROUP = g1" in result.stdout
    assert "WANDB_ENTITY = my-team" in result.stdout and "WANDB_NOTES = Exit codes pass through" in result.stdout
    assert f"LAB_ATTEMPT_DIR = {repo / '.git/lab/running/dia_010/attempts' / attempt['key']}" in result.stdout


@pytest.mark.light
def test_launched_scripts_get_the_config_as_json(lab):
    lab("new-run", "sin_004", "--hypothesis", "h", "--set", "hidden=64")
    code = "import json, os\nprint(json.loads(os.environ['LAB_CONFIG']))\n"
    result = lab("launch", "sin_004", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.strip() == "{'hidden': 64}"


def attempt(repo: Path, run_id: str, number: int = 1) -> tuple[dict, list[dict], dict, dict]:
    """(attempt.json, metric rows, config.json, summary.json) of an attempt."""
    folder = Store(repo).attempt_dir(run_id, number)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()] \
        if (folder / "metrics.jsonl").exists() else []
    read = lambda name: json.loads((folder / name).read_text()) if (folder / name).exists() else {}  # noqa: E731
    return read("attempt.json"), rows, read("config.json"), read("summary.json")


def test_no_xla_unless_asked_and_the_report_carries_the_variables(lab, repo):
    (repo / "env.py").write_text("import os\nfrom lab import tracker\nprint('xla', os.environ.get('USE_TORCH_XLA'))\n"
                                 "tracker.log(1, loss=1.0)\n")
    lab("new-run", "ev_001", "--hypothesis", "h")
    assert "xla 0" in lab("launch", "ev_001", "--no-commit", "--", sys.executable, "env.py").stdout
    report = (repo / lab("report", "ev_001").stdout.strip()).read_text()
    assert f"USE_TORCH_XLA=0 {sys.executable} env.py" in report
    asked = lab("launch", "ev_001", "--no-commit", "--", sys.executable, "env.py", env=lab_env(USE_TORCH_XLA="1"))
    assert "xla 1" in asked.stdout and attempt(repo, "ev_001", 2)[0]["launch_environment"] == {}


def test_no_commit_records_the_dirty_diff(lab, repo, train_script):
    lab("new-run", "dia_011", "--hypothesis", "h")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    (repo / "my_train.py").write_text(train_script.read_text() + "# a local change\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    lab("launch", "dia_011", "--no-commit", "--", sys.executable, "my_train.py")
    assert git(repo, "rev-parse", "HEAD").strip() == head
    attempt = attempt_record(repo, "dia_011", 1)
    assert attempt["git"] == {"sha": head, "branch": "main", "committed": False, "files": 0}
    assert "+# a local change" in (Store(repo).attempt_dir("dia_011", 1) / "dirty.diff").read_text()


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_launch_outside_git_needs_no_commit(lab, repo, train_script):
    lab("new-run", "dia_013", "--hypothesis", "h")
    import shutil

    shutil.rmtree(repo / ".git")
    one_line_error(lab("launch", "dia_013", "--", sys.executable, "my_train.py", check=False),
                   "not inside a git repository")
    lab("launch", "dia_013", "--no-commit", "--", sys.executable, "my_train.py")
    assert attempt_record(repo, "dia_013", 1)["git"] is None


def test_a_bad_launch_override_is_refused_before_anything_is_committed(lab, repo):
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h")
    head_before = git(repo, "rev-list", "--all", "--count")
    one_line_error(lab("launch", "nsd_001", "--set", "train.precision=fp8", check=False), "train.precision='fp8'")
    assert git(repo, "rev-list", "--all", "--count") == head_before
    assert not (repo / "logs/runs/nsd_001/attempts").exists()


def test_a_resumed_attempt_says_so(lab, repo):
    (repo / "ckpt.py").write_text(
        "import os, zipfile\nfrom lab import tracker\n"
        "print('resuming from', os.environ.get('LAB_RESUME_FROM'))\n"
        "tracker.log(4, loss=0.5)\nos.makedirs('ckpt', exist_ok=True)\n"
        "with zipfile.ZipFile('ckpt/last.pt', 'w') as archive:\n    archive.writestr('data.pkl', 'weights')\n"
        "tracker.checkpoint('last', 'ckpt/last.pt', 4)\n")
    lab("new-run", "rs_001", "--hypothesis", "h")
    lab("launch", "rs_001", "--no-commit", "--", sys.executable, "ckpt.py")
    second = lab("launch", "rs_001", "--no-commit", "--resume", "--", sys.executable, "ckpt.py")
    assert "resuming from ckpt/last.pt" in second.stdout
    assert "resumed from Test 1 at step 4" in Path(lab("log", str(date.today())).stdout.strip()).read_text()


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def test_stale_checkpoint_temporaries_are_removed_at_the_next_launch(lab):
    lab("new-run", "k_005", "--hypothesis", "h")
    lab("launch", "k_005", "--no-commit", "--", sys.executable, "-c", "print(1)")
    folder = Path(attempt_of(lab, "k_005")["artefacts"]) / "checkpoints"
    folder.mkdir(parents=True)
    stale = folder / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half")
    result = lab("launch", "k_005", "--no-commit", "--", sys.executable, "-c", "print(2)")
    assert not stale.exists() and "left half-written by attempt 1" in result.stderr


def set_launch(lab, **launch) -> None:
    settings = json.loads((lab.repo / "lab.json").read_text())
    settings["launch"] = {**settings.get("launch", {}), **launch}
    (lab.repo / "lab.json").write_text(json.dumps(settings))


def stdout_log(lab, run_id: str, number: int = 1) -> str:
    return (attempt_folder(lab, run_id, number) / "stdout.log").read_text()


def test_heavy_output_is_capped_head_and_tail_with_secrets_redacted(lab):
    set_launch(lab, output_head_mb=0.01, output_tail_mb=0.01)
    lab("new-run", "o_001", "--hypothesis", "h")
    code = ("key = 'WANDB_API_KEY=' + '0123456789abcdef' * 2 + '01234567'\nprint('first', key)\n"
            "for i in range(20000):\n    print(f'line {i} loss 0.5')\nprint('last', key)\n")
    result = lab("launch", "o_001", "--", sys.executable, "-c", code)
    assert result.stdout.count("\n") == 20002 and "0123456789abcdef0123456789abcdef01234567" in result.stdout
    log = stdout_log(lab, "o_001")
    head, marker, tail = log.partition("[lab: ")
    assert head.startswith("first WANDB_API_KEY=[redacted]\nline 0 loss 0.5\n") and len(head) <= 10_000
    assert tail.endswith("line 19999 loss 0.5\nlast WANDB_API_KEY=[redacted]\n") and len(tail) <= 10_200
    kept = head.count("\n") + tail.count("\n") - 1
    assert tail.startswith(f"{20002 - kept:,} lines (") and "of output left out here" in tail
    assert attempt_of(lab, "o_001")["status"] == "finished"


def test_a_redraw_overprints_as_a_terminal_shows_it():
    assert overprint(b"loading 10%\rloading 100%") == b"loading 100%"
    assert overprint(b"epoch 1: 99%|####|\rdone") == b"doneh 1: 99%|####|"  # the longer draw shows past the end
    assert overprint("80%|███▌ |\r100%|█████|".encode()) == "100%|█████|".encode()  # by character, not byte
    assert overprint(b"windows line\r") == b"windows line"


def test_a_progress_bar_flood_keeps_one_line_and_the_next_launch_commits(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "commit": {"max_commit_mb": 0.05}}))
    lab("new-run", "o_002", "--hypothesis", "h")
    code = ("import sys\nprint('start')\nfor i in range(20000):\n"
            "    sys.stdout.write(f'\\r{i * 100 // 19999:3d}%|{i}/19999 [00:01<00:02, 5.0it/s]')\n"
            "print()\nprint('end')\n")
    result = lab("launch", "o_002", "--", sys.executable, "-c", code)
    assert result.stdout.count("/19999 [") == 20000  # the terminal got every redraw
    assert stdout_log(lab, "o_002") == "start\n100%|19999/19999 [00:01<00:02, 5.0it/s]\nend\n"
    flood = attempt_folder(lab, "o_002") / "stdout.log"
    flood.write_text("old output line\n" * 20000)  # 320 kB of the lab's own records, over max_commit_mb
    lab("launch", "o_002", "--", sys.executable, "-c", "print(1)")
    assert attempt_of(lab, "o_002", 2)["git"]["committed"]
    assert git(lab.repo, "show", f"HEAD:{flood.relative_to(lab.repo)}").startswith("old output line\n")


def test_a_log_that_cannot_be_written_still_counts_the_output(tmp_path):
    log = OutputLog(tmp_path / "stdout.log", lambda data: data, head_bytes=25, tail_bytes=22)
    for _ in range(100):
        log.feed(b"0123456789\n")
    assert log.close() is None
    text = (tmp_path / "stdout.log").read_text()
    assert text == "0123456789\n" * 2 + "[lab: 96 lines (0.0 MB) of output left out here; the terminal showed " \
                   "them]\n" + "0123456789\n" * 2


def folder_of(repo: Path, run_id: str, number: int) -> Path:
    """Test `number`'s folder: logs/runs/<id>/attempts/<start>-<clone>/ once ended, in .git/lab while running."""
    return Store(repo).attempt_dir(run_id, number)


def test_a_full_disk_during_an_attempt_still_records_how_it_ended(lab):
    lab("new-run", "d_001", "--hypothesis", "h")
    code = "import sys\nfor _ in range(4000):\n    print('x' * 250)\nprint('end')\n"
    limit = 300_000  # bytes any file may grow to: stdout.log hits it, like a disk filling up

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # a process of its own: the file-size limit holds for the launcher's whole process
    result = subprocess.run([sys.executable, "-m", "lab", "launch", "d_001", "--no-commit", "--", sys.executable,
                             "-c", code], cwd=lab.repo, capture_output=True, text=True, env=lab_env(),
                            preexec_fn=limited, timeout=120)
    assert result.returncode == 0 and result.stdout.endswith("end\n")
    assert "stdout.log stopped early" in result.stderr and "Traceback" not in result.stderr
    attempt = json.loads((folder_of(lab.repo, "d_001", 1) / "attempt.json").read_text())
    assert attempt["status"] == "finished" and attempt["exit_code"] == 0


HELPER = ("import subprocess, sys\n"
          "helper = subprocess.Popen([sys.executable, '-c', 'import time\\nprint(\"tick\", flush=True)\\n"
          "time.sleep(60)'])\n"
          "print('helper', helper.pid, flush=True)\n")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_attempt_ends_when_the_command_ends_and_names_what_it_left(lab):
    lab("new-run", "o_003", "--hypothesis", "h")
    start = time.monotonic()
    result = lab("launch", "o_003", "--no-commit", "--", sys.executable, "-c", HELPER, timeout=60)
    helper = int(result.stdout.split("helper ")[1].split()[0])
    try:
        assert time.monotonic() - start < 40 and alive(helper)  # the helper sleeps 60 s: well apart on a busy machine
        attempt = attempt_of(lab, "o_003")
        assert attempt["status"] == "finished" and attempt["exit_code"] == 0
        assert [item["pid"] for item in attempt["left_running"]] == [helper]
        assert f"left 1 process running (pid {helper}: " in result.stderr
        assert f"kill -- -{attempt['child_pid']}" in result.stderr
    finally:
        os.kill(helper, signal.SIGKILL)


CHATTY = ("import subprocess, sys\n"
          "subprocess.Popen([sys.executable, '-c', 'import time\\nfor _ in range(1200):\\n    print(\"tick\", "
          "flush=True)\\n    time.sleep(0.05)'])\n")


def test_a_left_child_that_keeps_printing_does_not_hold_the_attempt_open(lab):
    lab("new-run", "o_005", "--hypothesis", "h")
    start = time.monotonic()
    lab("launch", "o_005", "--no-commit", "--", sys.executable, "-c", CHATTY, timeout=60)
    assert time.monotonic() - start < 40  # the helper prints for a minute; the attempt does not wait for it
    assert attempt_of(lab, "o_005")["status"] == "finished"


def test_a_running_attempt_is_shown_and_warned_about(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "h")
    store = Store(repo)
    store.attempts.begin("dia_001", command=["python", "train.py"], pid=os.getpid())  # this test process: alive
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")
    second = lab("launch", "dia_001", "--no-commit", "--", sys.executable, "-c", "pass")
    assert (f"lab: warning: Test 1 of dia_001 is still running (pid {os.getpid()} on " in second.stderr
            and "this launch runs beside it" in second.stderr)
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")  # Test 2 finished, Test 1 has not


def test_a_failed_launch_ends_with_one_error_line_naming_its_exit_and_last_printed_line(lab, repo):
    lab("new-run", "f_001", "--hypothesis", "h")
    crash = "import sys\nprint('step 1', flush=True)\nprint('CUDA error: device-side assert', file=sys.stderr)\n" \
            "sys.exit(3)\n"
    abort = "import os\nprint('about to abort', flush=True)\nos.abort()\n"
    silent = "import sys\nsys.exit(2)\n"
    for number, (code, exit_code, words) in enumerate([
            (crash, 3, 'ended with exit 3, last printing "CUDA error: device-side assert"'),
            (abort, 134, 'ended with exit 134 (SIGABRT), last printing "about to abort"'),
            (silent, 2, "ended with exit 2")], start=1):
        launched = lab("launch", "f_001", "--no-commit", "--", sys.executable, "-c", code, check=False)
        attempt = Store(repo).attempts.load("f_001", number)
        folder = Store(repo).attempt_dir("f_001", number).relative_to(repo)
        assert launched.returncode == exit_code and attempt["exit_code"] == exit_code
        assert launched.stderr.splitlines()[-1] == f"lab: error: f_001 Test {number} {words}; its records are kept " \
                                                   f"in {folder}"
        assert sum(line.startswith("lab: error:") for line in launched.stderr.splitlines()) == 1
    finished = lab("launch", "f_001", "--no-commit", "--", sys.executable, "-c", "print('done')")
    assert "lab: error" not in finished.stderr


def test_a_pid_record_that_cannot_be_written_neither_stops_the_command_nor_reads_as_not_started(lab, repo, capsys):
    from lab.launcher import launch

    class FullDisk(Attempts):
        def update(self, attempt_dir, merge=None, **fields):
            if "child_pid" in fields:
                raise OSError(28, "No space left on device")
            return super().update(attempt_dir, merge, **fields)

    lab("new-run", "p_001", "--hypothesis", "h")
    store = Store(repo)
    store.attempts = FullDisk(store, store.runs, store.events)
    folder = store.attempts.begin("p_001", command=["python"], pid=os.getpid())
    code = launch._run_and_record(store, folder, [sys.executable, "-c", "print('ran to the end')"], lab_env())
    printed = capsys.readouterr()
    assert code == 0 and "ran to the end" in printed.out
    assert "lab: warning: the attempt does not name the command's pid " in printed.err
    assert "(No space left on device); the command runs on" in printed.err
    attempt = store.attempts.load("p_001", 1)
    assert attempt["status"] == "finished" and attempt["exit_code"] == 0


def start_sleepy_launch(lab, repo, run_id):
    """Launch a command that prints 'started' and sleeps; returns the launcher (a process of its own, to be
    signalled or killed) once the command runs."""
    (repo / "sleepy.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    lab("new-run", run_id, "--hypothesis", "h")
    launcher = subprocess.Popen([sys.executable, "-m", "lab", "launch", run_id, "--", sys.executable, "sleepy.py"],
                                cwd=repo, env=lab_env(), stdout=subprocess.PIPE, text=True)
    assert launcher.stdout.readline().strip() == "started"
    return launcher


def test_killing_the_launcher_marks_the_attempt_killed(lab, repo):
    launcher = start_sleepy_launch(lab, repo, "dia_014")
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
    attempt = attempt_record(repo, "dia_014", 1)
    assert attempt["status"] == "killed" and attempt["ended"]


def test_a_vanished_launcher_shows_as_crashed(lab, repo):
    launcher = start_sleepy_launch(lab, repo, "dia_015")
    child_pid = attempt_record(repo, "dia_015", 1)["child_pid"]
    launcher.kill()
    launcher.wait()
    os.kill(child_pid, signal.SIGKILL)
    time.sleep(0.2)
    assert re.search(r"dia_015\s+crashed", lab("runs").stdout)
    assert attempt_record(repo, "dia_015", 1)["status"] == "crashed"


def test_a_signal_to_the_launcher_reaches_what_the_command_started(lab):
    lab("new-run", "o_004", "--hypothesis", "h")
    code = HELPER + "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    # a process of its own: the test signals the launcher
    process = subprocess.Popen([sys.executable, "-m", "lab", "launch", "o_004", "--no-commit", "--", sys.executable,
                                "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=lab_env())
    helper = int(process.stdout.readline().split()[1])
    while process.stdout.readline() not in ("ready\n", ""):
        pass
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(helper)
    assert attempt_of(lab, "o_004")["status"] == "killed"


def launch_in_background(lab, run_id: str, code: str) -> subprocess.Popen:
    """`lab launch RUN_ID -- python -c CODE` as a process of its own; returns once the child printed 'ready'."""
    process = subprocess.Popen([sys.executable, "-m", "lab", "launch", run_id, "--no-commit", "--", sys.executable,
                                "-u", "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=lab_env())
    assert process.stdout.readline() == "ready\n"
    return process


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
    while time.monotonic() < deadline and alive(child):
        time.sleep(0.1)
    assert not alive(child)
    assert "crashed" in lab("show", "k_003").stdout


def test_sigint_reaches_a_trainer_launched_in_the_background_by_a_script(lab, repo):
    settings = json.loads((repo / "lab.json").read_text())
    (repo / "lab.json").write_text(json.dumps({**settings, "launch": {"kill_grace_seconds": 45}}))
    lab("new-run", "k_001", "--hypothesis", "h")
    code = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"  # Python's own SIGINT: KeyboardInterrupt
    process = subprocess.Popen(  # as `lab launch ... &` in a script: the shell starts it with SIGINT ignored
        [sys.executable, "-m", "lab", "launch", "k_001", "--no-commit", "--", sys.executable, "-u", "-c", code],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 130 and time.monotonic() - started < 45, process.stderr.read()  # not killed
    attempt = Store(repo).attempts.load("k_001", 1)
    assert attempt["status"] == "killed" and attempt["stopped_by"] == {"signal": "SIGINT"}
