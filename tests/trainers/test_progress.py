"""`lab generate`'s progress on stderr: a line every few seconds without a terminal, never one per step."""

import io

from trainers.commands.progress import StepProgress


def test_without_a_terminal_a_line_every_few_seconds_and_one_at_the_end():
    now = [0.0]
    stream = io.StringIO()  # not a terminal, as a log file or a pipe
    progress = StepProgress("generate", stream=stream, every=5.0, clock=lambda: now[0])
    for done in range(1, 1001):
        now[0] = done * 0.012  # 12 ms a step: 12 s in all
        progress(done, 1000)
    progress.close()
    assert stream.getvalue().splitlines() == ["generate: 417/1000 steps", "generate: 834/1000 steps",
                                              "generate: 1000/1000 steps in 12.0 s"]


def test_a_loop_that_ends_early_says_where():
    stream = io.StringIO()
    progress = StepProgress("generate", stream=stream, every=5.0)
    progress(9, 172)
    progress.close()
    assert stream.getvalue().startswith("generate: 9/172 steps in ")
