"""A run with an attempt still running says so: in `lab show`, and when another attempt is launched (issue 21)."""

import os
import sys

from lab.records.store import Store


def test_a_running_attempt_is_shown_and_warned_about(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "h")
    store = Store(repo)
    store.begin_attempt("dia_001", command=["python", "train.py"], pid=os.getpid())  # this test process: alive
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")
    second = lab("launch", "dia_001", "--no-commit", "--", sys.executable, "-c", "pass")
    assert (f"lab: warning: Test 1 of dia_001 is still running (pid {os.getpid()} on " in second.stderr
            and "this launch runs beside it" in second.stderr)
    assert lab("show", "dia_001").stdout.splitlines()[0].endswith("[running]")  # Test 2 finished, Test 1 has not
