"""Progress of a long loop outside training (`lab generate`), on stderr so that stdout keeps the command's answer.

    progress = StepProgress("generate", unit="frame")
    for done in range(1, total + 1):
        ...
        progress(done, total)
    progress.close()

On a terminal it is a tqdm bar; otherwise (a log file, a pipe, `lab` run by a script) a line every `every`
seconds with the time left at the pace so far (`generate: 120/500 frames, ETA 41s`) and one when it ends, so a
long loop shows it is alive without flooding the log.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm

from lab.records.times import eta_text

EVERY_SECONDS = 5.0  # without a terminal, a progress line at most this often


class StepProgress:
    """Call with (steps done, total steps) as a loop goes; `close()` when it ends, early or not."""

    def __init__(self, label: str, unit: str = "step", stream: TextIO | None = None,
                 every: float = EVERY_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.label, self.unit, self.every, self.clock = label, unit, every, clock
        self.stream = stream if stream is not None else sys.stderr
        self.started = self.printed = clock()
        self.done, self.total = 0, 0
        self.bar: tqdm | None = None
        self.terminal = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.terminal:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.label, unit=self.unit, file=self.stream, dynamic_ncols=True)
            self.bar.update(done - self.bar.n)
        elif self.clock() - self.printed >= self.every:
            self.printed = self.clock()
            self.line(f", {eta_text(self.printed - self.started, done, total)}")

    def line(self, ending: str) -> None:
        print(f"{self.label}: {self.done}/{self.total} {self.unit}s{ending}", file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar, or print the last line with the time taken."""
        if self.bar is not None:
            self.bar.close()
        elif self.total:
            self.line(f" in {self.clock() - self.started:.1f} s")
