"""What a run prints on its main process: a tqdm bar on a terminal, else a plain progress line at most every
`PROGRESS_SECONDS` (so that stdout.log under `lab launch` shows the run alive), and one line per evaluation."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from lab.records.times import eta_text

from trainers.engine.state import Run

PROGRESS_SECONDS = 10.0  # without a terminal (under `lab launch`), a progress line at most this often


class Console:
    """The progress of `run`: call `step` after every update, `evaluation` after every evaluation, `close` at
    the end."""

    def __init__(self, run: Run):
        self.run = run
        self.bar = tqdm(
            total=run.train_config.max_steps, initial=run.progress.step, desc=run.family_name, unit="step",
            disable=not (run.is_main and sys.stderr.isatty()), dynamic_ncols=True,
        )
        self.printed: float | None = None  # when the last plain progress line went out
        self.started, self.first_step = time.monotonic(), run.progress.step  # a resumed run's pace is its own

    def step(self, row: dict) -> None:
        """After an update: on the steps that log throughput, the bar's loss and learning rate (or a plain line)."""
        run = self.run
        if "train/samples_per_s" in row:
            loss, lr = row["train/loss"], row["train/lr"]
            self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", refresh=False)
            quiet = self.printed is not None and time.monotonic() - self.printed < PROGRESS_SECONDS
            if self.bar.disable and run.is_main and not quiet:
                self.printed = time.monotonic()
                total = run.train_config.max_steps
                eta = eta_text(self.printed - self.started, row["step"] - self.first_step, total - self.first_step)
                print(f"{run.family_name}: step {row['step']}/{total}, loss {loss:.4g}, "
                      f"lr {lr:.3g}, {row['train/samples_per_s']:.4g} samples/s, {eta}", flush=True)
        self.bar.update(1)

    def evaluation(self, metrics: dict[str, float]) -> None:
        """One line per evaluation: step, last training loss, the metrics, the best so far, skipped updates."""
        progress, train_config = self.run.progress, self.run.train_config
        parts = [f"step {progress.step}/{train_config.max_steps}"]
        if progress.last_loss is not None:
            parts.append(f"train/loss={progress.last_loss:.4g}")
        parts += [f"{name}={value:.4g}" for name, value in metrics.items()]
        if progress.best_value is not None:
            parts.append(f"best {train_config.best_metric}={progress.best_value:.4g}@{progress.best_step}")
        parts.append(f"skipped={progress.skipped_steps}")
        tqdm.write(" ".join(parts))
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()
