"""`make demo`: a short research story on synthetic neural_decoder data, in a throwaway lab.

The lab lives in artefacts/demo-lab (its own git repository, W&B offline). The story: a baseline run, a run
whose learning rate is far too high (the doctor flags it), a fixed run, a two-run ablation group, and a script
of the researcher's own that logs only with `wandb.log` (recorded by the lab's capture, no lab code in it);
then every page is rendered and its path printed.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lab.records.times import eta_text, seconds_text

DEMO_DIR = Path("artefacts") / "demo-lab"
STEPS = "train.max_steps=240"
WANDB_SCRIPT = """import argparse, math, wandb
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.05)
parser.add_argument('--steps', type=int, default=60)
args = parser.parse_args()
wandb.init(project='my-own-script', config=args)
for step in range(args.steps):
    loss = 0.3 + 2.0 * math.exp(-step * args.lr)
    evaluating = step % 20 == 19
    wandb.log({'train/loss': loss, 'train/lr': args.lr}, commit=not evaluating)
    if evaluating:
        wandb.log({'val/loss': loss + 0.05})  # the same row as the train loss
"""


LAUNCHES = 6  # the story's launches (five trainings and the researcher's script), which take nearly all its time


class Pace:
    """Where the story is: before each launch, 'demo: launch 3 of 6, 1m 10s so far, ETA 1m 45s'."""

    def __init__(self, launches: int = LAUNCHES):
        self.launches, self.done, self.started = launches, 0, time.perf_counter()

    def before(self, command: str) -> None:
        if command == "launch":
            elapsed = time.perf_counter() - self.started
            print(f"\ndemo: launch {self.done + 1} of {self.launches}, {seconds_text(elapsed)} so far, "
                  f"{eta_text(elapsed, self.done, self.launches)}", flush=True)
            self.done += 1


def lab(*args: str, cwd: Path, check: bool = True, pace: Pace | None = None) -> subprocess.CompletedProcess:
    """Run one `lab` command the way a researcher would, echoing it (after the story's `pace` for a launch)."""
    if pace is not None:
        pace.before(args[0])
    print(f"\n$ {shlex.join(['lab', *args])}", flush=True)
    result = subprocess.run([sys.executable, "-m", "lab", *args], cwd=cwd, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"demo: `lab {' '.join(args)}` failed with exit status {result.returncode}")
    return result


def make_repository(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for command in (["init", "-q", "-b", "main"], ["config", "user.name", "Lab Demo"],
                    ["config", "user.email", "demo@lab.invalid"]):
        subprocess.run(["git", *command], cwd=folder, check=True)
    (folder / "README.md").write_text("# Demo lab\n\nA throwaway lab made by `make demo`.\n")


def main() -> None:
    pace = Pace()
    folder = DEMO_DIR.resolve()
    make_repository(folder)
    run = functools.partial(lab, cwd=folder, pace=pace)  # each `lab` command of the story, in the demo lab
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    run("init", "--wandb-entity", "demo-team", "--wandb-project", "neural-decoder-demo", "--prefix",
        "nsd=neural_decoder")
    run("note", "--overview", "Reproduce the GRU+CTC recipe on synthetic data, find a stable LR, ablate noise.")

    run("new-run", "nsd_001", "--preset", "tiny", "--title", "Tiny baseline", "--set", STEPS,
        "--hypothesis", "The tiny recipe learns the synthetic phonemes")
    run("launch", "nsd_001", "--note", "tiny preset, synthetic data")
    run("note", "nsd_001", "--conclusion", "The recipe learns; PER falls steadily.")

    run("new-run", "nsd_002", "--from", "nsd_001", "--title", "LR far too high", "--set", "optim.lr=0.5",
        "--hypothesis", "A 150x higher learning rate trains faster")
    run("launch", "nsd_002", "--note", "lr 0.5, no clipping", check=False)
    run("doctor", "nsd_002")
    run("note", "nsd_002", "--findings", "The loss diverges; the doctor flags it.", "--conclusion",
        "LR 0.5 is far too high.", "--next", "Go back to a small LR and clip gradients.")

    run("new-run", "nsd_003", "--from", "nsd_002", "--title", "LR fixed with clipping", "--set", "optim.lr=0.004",
        "--set", "train.grad_clip=1.0", "--hypothesis", "A small LR with clipping recovers stable training")
    run("launch", "nsd_003", "--note", "lr 0.004, clip 1.0")
    run("note", "nsd_003", "--conclusion", "Stable again: the clipped run trains like the first one.")
    run("note", "--insight", "The doctor catches an LR that is far too high within one run.")

    for run_id, noise, hypothesis in (("nsd_004", "0.0", "Without white noise the decoder overfits"),
                                      ("nsd_005", "0.5", "More white noise regularises the decoder")):
        run("new-run", run_id, "--from", "nsd_003", "--group", "noise_ablation", "--set",
            f"data.white_noise_sd={noise}", "--hypothesis", hypothesis)
        run("launch", run_id, "--note", f"white noise {noise}")
        run("note", run_id, "--conclusion", f"See the ablation page for white noise {noise} against its sibling.")
    run("compare", "--group", "noise_ablation")

    (folder / "my_script.py").write_text(WANDB_SCRIPT)
    run("new-run", "own_001", "--title", "My own wandb script", "--hypothesis",
        "A script that logs only with wandb.log is recorded as it is")
    run("launch", "own_001", "--note", "no lab code in the script", "--", sys.executable, "my_script.py", "--lr",
        "0.1")
    run("report", "own_001")
    run("render")
    run("runs")
    print(f"\ndemo finished in {seconds_text(time.perf_counter() - pace.started)}; pages are under {folder / 'logs'}")


if __name__ == "__main__":
    main()
