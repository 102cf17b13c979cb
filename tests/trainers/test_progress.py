"""Progress of long work (`lab generate`, `lab codec encode`, training): a line every few seconds without a
terminal, never one per step, each with the time left at the pace so far."""

import io

import pytest

from trainers.commands.progress import StepProgress
from lab.records.times import eta_text


def test_without_a_terminal_a_line_every_few_seconds_and_one_at_the_end():
    now = [0.0]
    stream = io.StringIO()  # not a terminal, as a log file or a pipe
    progress = StepProgress("generate", stream=stream, every=5.0, clock=lambda: now[0])
    for done in range(1, 1001):
        now[0] = done * 0.012  # 12 ms a step: 12 s in all
        progress(done, 1000)
    progress.close()
    assert stream.getvalue().splitlines() == ["generate: 417/1000 steps, ETA 7s", "generate: 834/1000 steps, ETA 2s",
                                              "generate: 1000/1000 steps in 12.0 s"]


def test_a_loop_that_ends_early_says_where():
    stream = io.StringIO()
    progress = StepProgress("generate", stream=stream, every=5.0)
    progress(9, 172)
    progress.close()
    assert stream.getvalue().startswith("generate: 9/172 steps in ")


@pytest.mark.parametrize("elapsed, done, total, text", [
    (10.0, 5, 20, "ETA 30s"), (125.0, 1, 2, "ETA 2m 5s"), (3725.0, 1, 2, "ETA 1h 2m"),
    (0.0, 0, 20, "ETA unknown"), (4.0, 20, 20, "ETA 0s"),
])
def test_the_time_left_is_the_pace_so_far_times_the_steps_left(elapsed, done, total, text):
    assert eta_text(elapsed, done, total) == text
