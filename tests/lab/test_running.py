"""A run with an attempt still running says so: in `lab show`, and when another attempt is launched (issue 21)."""

import json
import os
import signal
import subprocess
import sys
import time

from lab_testing import lab_env

from lab.records.store import Store
from lab.records.store.attempts import Attempts


def test_a_running_attempt_is_shown_and_warned_about(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "h")
    store = Store(repo)
    store.attempts.begin("dia_001", command=["python", "train.py"], pid=os.getpid())  # this test process: alive
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")
    second = lab("launch", "dia_001", "--no-commit", "--", sys.executable, "-c", "pass")
    assert (f"lab: warning: Test 1 of dia_001 is still running (pid {os.getpid()} on " in second.stderr
            and "this launch runs beside it" in second.stderr)
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")  # Test 2 finished, Test 1 has not


def test_sigint_reaches_a_trainer_launched_in_the_background_by_a_script(lab, repo):
    settings = json.loads((repo / "lab.json").read_text())
    (repo / "lab.json").write_text(json.dumps({**settings, "launch": {"kill_grace_seconds": 20}}))
    lab("new-run", "k_001", "--hypothesis", "h")
    code = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"  # Python's own SIGINT: KeyboardInterrupt
    process = subprocess.Popen(  # as `lab launch ... &` in a script: the shell starts it with SIGINT ignored
        [sys.executable, "-m", "lab", "launch", "k_001", "--no-commit", "--", sys.executable, "-u", "-c", code],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130 and time.monotonic() - started < 15, process.stderr.read()
    attempt = Store(repo).attempts.load("k_001", 1)
    assert attempt["status"] == "killed" and attempt["stopped_by"] == {"signal": "SIGINT"}


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
