"""`make demo`: a short research story on synthetic neural_decoder data, in a throwaway lab.

The lab lives in artefacts/demo-lab (its own git repository, W&B offline). The story: a baseline run, a run
whose learning rate is far too high (the doctor flags it), a fixed run, a two-run ablation group, and a script
of the researcher's own that logs only with `wandb.log` (recorded by the lab's capture, no lab code in it);
then every page is rendered and its path printed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def lab(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run one `lab` command the way a researcher would, echoing it."""
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
    started = time.perf_counter()
    folder = DEMO_DIR.resolve()
    make_repository(folder)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    lab("init", "--wandb-entity", "demo-team", "--wandb-project", "neural-decoder-demo", "--prefix",
        "nsd=neural_decoder", cwd=folder)
    lab("note", "--overview", "Reproduce the GRU+CTC recipe on synthetic data, find a stable LR, ablate noise.",
        cwd=folder)

    lab("new-run", "nsd_001", "--preset", "tiny", "--title", "Tiny baseline", "--set", STEPS,
        "--hypothesis", "The tiny recipe learns the synthetic phonemes", cwd=folder)
    lab("launch", "nsd_001", "--note", "tiny preset, synthetic data", cwd=folder)
    lab("note", "nsd_001", "--conclusion", "The recipe learns; PER falls steadily.", cwd=folder)

    lab("new-run", "nsd_002", "--from", "nsd_001", "--title", "LR far too high", "--set", "optim.lr=0.5",
        "--hypothesis", "A 150x higher learning rate trains faster", cwd=folder)
    lab("launch", "nsd_002", "--note", "lr 0.5, no clipping", check=False, cwd=folder)
    lab("doctor", "nsd_002", cwd=folder)
    lab("note", "nsd_002", "--findings", "The loss diverges; the doctor flags it.", "--conclusion",
        "LR 0.5 is far too high.", "--next", "Go back to a small LR and clip gradients.", cwd=folder)

    lab("new-run", "nsd_003", "--from", "nsd_002", "--title", "LR fixed with clipping", "--set", "optim.lr=0.004",
        "--set", "train.grad_clip=1.0", "--hypothesis", "A small LR with clipping recovers stable training",
        cwd=folder)
    lab("launch", "nsd_003", "--note", "lr 0.004, clip 1.0", cwd=folder)
    lab("note", "nsd_003", "--conclusion", "Stable again: the clipped run trains like the first one.", cwd=folder)
    lab("note", "--insight", "The doctor catches an LR that is far too high within one run.", cwd=folder)

    for run_id, noise, hypothesis in (("nsd_004", "0.0", "Without white noise the decoder overfits"),
                                      ("nsd_005", "0.5", "More white noise regularises the decoder")):
        lab("new-run", run_id, "--from", "nsd_003", "--group", "noise_ablation", "--set",
            f"data.white_noise_sd={noise}", "--hypothesis", hypothesis, cwd=folder)
        lab("launch", run_id, "--note", f"white noise {noise}", cwd=folder)
        lab("note", run_id, "--conclusion", f"See the ablation page for white noise {noise} against its sibling.",
            cwd=folder)
    lab("compare", "--group", "noise_ablation", cwd=folder)

    (folder / "my_script.py").write_text(WANDB_SCRIPT)
    lab("new-run", "own_001", "--title", "My own wandb script", "--hypothesis",
        "A script that logs only with wandb.log is recorded as it is", cwd=folder)
    lab("launch", "own_001", "--note", "no lab code in the script", "--", sys.executable, "my_script.py", "--lr",
        "0.1", cwd=folder)
    lab("report", "own_001", cwd=folder)
    lab("render", cwd=folder)
    lab("runs", cwd=folder)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; pages are under {folder / 'logs'}")


if __name__ == "__main__":
    main()
