"""Sharded (train.parallel=fsdp) against replicated (ddp) training, as `lab launch --processes N` runs them:
the time of a training step from the engine's summary (evaluation and checkpoints excluded).

On CPU: dia `tiny` on two processes with gloo. Where CUDA is present: the dia baseline (1.6B, bf16, AdamW, one
process per GPU), with
tokens/s (decoder steps) and MFU: 6 * parameters * tokens/s (Kaplan et al. 2020's training FLOPs per token)
over the GPUs' dense bf16 peak (PEAK_TFLOPS, or a GPU named in PEAK_BY_NAME).

Targets (set here): on CPU, a sharded step at most CPU_TARGET_RATIO times a replicated one (gloo gathers every block's
parameters and reduce-scatters its gradients); on GPUs, an MFU of at least MFU_TARGET under either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lab.families import registry
from lab.records.config import apply_overrides
from lab.records.store import Store
from sizes import pick
from trainers.dia.spec import longest_delay
from trainers.family.launch import launch_command

ROOT = Path(__file__).resolve().parents[1]
PEAK_BY_NAME = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10G": 70e12}  # dense bf16, FLOP/s
DATA = ["data.sliding_window=false", "train.unconditional_frac=0", "data.tag_shuffle=false"]
CPU_TARGET_RATIO, MFU_TARGET = 2.0, 0.30
STEPS, BATCH = pick(full=30, tiny=2), pick(full=8, tiny=2)
# tiny: few short clips, as the synthetic set is encoded with a DAC codec when the run starts
TINY_DATA = ["data.synthetic_clips=4", "data.synthetic_seconds=0.25", "data.audio_length=16",
             "data.synthetic_codec_width=8"]


def step_seconds(folder: Path, processes: int, overrides: list[str]) -> tuple[float, dict]:
    """Seconds per training step of dia with `overrides` on `processes` processes, and the summary."""
    store = Store.init(folder / "lab")
    store.runs.create("dia_001", hypothesis="benchmark")
    attempt = store.attempts.begin("dia_001", command=["python", "-m", "trainers"], pid=os.getpid())
    config = folder / "config.json"
    config.write_text(json.dumps(apply_overrides(registry.get("dia").preset(overrides[0]), overrides[1:])))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "WANDB_"))}
    env.update(LAB_ATTEMPT_DIR=str(attempt), LAB_ARTEFACTS_DIR=str(folder / "artefacts"), WANDB_MODE="offline",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    subprocess.run(launch_command("dia", config, processes=processes), env=env, cwd=folder, check=True,
                   capture_output=True)
    summary = json.loads((attempt / "summary.json").read_text())
    return summary["train_s"] / summary["steps"], summary


def main() -> None:
    cuda = torch.cuda.is_available()
    processes = torch.cuda.device_count() if cuda else pick(full=2, tiny=1)
    if cuda:
        overrides = ["baseline", "train.device=cuda", "optim.name=adamw", f"train.max_steps={pick(12, 2)}",
                     f"train.eval_every={pick(12, 2)}",
                     "train.grad_accum=1", "data.synthetic_seconds=10.5", "data.synthetic_clips=12", *DATA]
    else:
        overrides = ["tiny", f"train.max_steps={STEPS}", f"train.eval_every={STEPS}", f"train.batch_size={BATCH}",
                     *DATA, *pick(full=[], tiny=TINY_DATA)]
    times = {}
    for parallel in ("ddp", "fsdp"):
        with tempfile.TemporaryDirectory() as folder:
            times[parallel] = step_seconds(Path(folder), processes, [*overrides, f"train.parallel={parallel}"])
    if not cuda:
        (ddp, _), (fsdp, _) = times["ddp"], times["fsdp"]
        ratio = fsdp / ddp
        print(f"dia tiny on CPU, {processes} process(es) (gloo), batch {BATCH} each: {ddp * 1e3:.1f} ms per step "
              f"replicated (ddp), {fsdp * 1e3:.1f} ms sharded (fsdp): {ratio:.2f}x (target <= {CPU_TARGET_RATIO:g}x: "
              f"{'met' if ratio <= CPU_TARGET_RATIO else 'MISSED'})")
        return
    config = registry.get("dia").build_config(apply_overrides(registry.get("dia").preset("baseline"), overrides[1:]))
    steps_per_item = config.data.audio_length + 1 + longest_delay(config.model)
    name = torch.cuda.get_device_name(0)
    peak = float(os.environ.get("PEAK_TFLOPS", 0)) * 1e12 or next(
        (flops for key, flops in PEAK_BY_NAME.items() if key in name), 0.0)
    for parallel, (seconds, summary) in times.items():
        tokens = config.train.batch_size * processes * steps_per_item / seconds
        mfu = 6 * summary["param_count"] * tokens / (peak * processes) if peak else float("nan")
        print(f"dia baseline on {processes}x {name}, {parallel}: {seconds * 1e3:.0f} ms per step, {tokens:,.0f} "
              f"tokens/s, MFU {mfu:.1%} (target >= {MFU_TARGET:.0%}), peak {summary['peak_mem_mb']:,.0f} MB per GPU")


if __name__ == "__main__":
    sys.exit(main())
