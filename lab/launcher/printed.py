"""Rows from a command's printed lines, for scripts that only print (opt-in).

A pattern (`lab launch --metrics-pattern`, or `capture.metrics_pattern` in lab.json) is a regular expression
with named groups: each group is a metric, and a group named `step` is the row's step (else the count of
matching lines before it). `^step (?P<step>\\d+) loss (?P<loss>\\S+) lr (?P<lr>\\S+)$` turns the line
`step 10 loss 0.53 lr 1e-4` into {"step": 10, "loss": 0.53, "lr": 0.0001}. Rows go through the tracker's rules
(a value that is not a number is skipped with one warning). The lines are read from stdout.log when the
command has ended, so they cost the command nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from lab.tracking.tracker import Tracker
from lab.errors import LabError


def compile_pattern(pattern: str) -> re.Pattern:
    """The compiled pattern, or LabError naming what is wrong with it."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise LabError(f"--metrics-pattern {pattern!r} is not a regular expression: {error}") from None
    if not set(compiled.groupindex) - {"step"}:
        raise LabError(f"--metrics-pattern {pattern!r} names no metric: use named groups, e.g. "
                       r"'loss (?P<loss>\S+)'")
    return compiled


def number(text: str) -> float | int | str:
    """A printed value as a number when it reads as one (whole numbers as int), else the text."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and re.fullmatch(r"[+-]?\d+", text) else value


def record_printed_metrics(attempt_dir: Path, pattern: str) -> int:
    """Append the rows that the lines of the attempt's stdout.log matching `pattern` hold; returns how many."""
    compiled = compile_pattern(pattern)
    log = Path(attempt_dir) / "stdout.log"
    if not log.exists():
        return 0
    tracker = Tracker(attempt_dir)
    count = 0
    with open(log, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = compiled.search(line.rstrip("\r\n"))
            if match is None:
                continue
            values = {name: number(text) for name, text in match.groupdict().items() if text is not None}
            step = values.pop("step", count)
            tracker.record(step, values, "printed lines")
            count += 1
    tracker.finish()
    return count
