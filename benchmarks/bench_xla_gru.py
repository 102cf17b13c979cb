"""neural_decoder `tiny` on the XLA path run on the CPU (PJRT_DEVICE=CPU): seconds to the first finished step
(tracing and compiling the scan GRU) and per later step. Before the scan GRU the first step did not finish in
10 minutes (the bidirectional GRU unrolled over time). Targets (set here; about 16 s and 0.5 s were measured
when the scan GRU was built): the first step within FIRST_TARGET_S, later ones within LATER_TARGET_S each."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sizes import pick

ROOT = Path(__file__).resolve().parents[1]
STEPS = pick(full=6, tiny=3)  # the first compiles; the rest are timed
MODEL = pick(full=[], tiny=["model.n_units=16", "model.n_layers=1", "data.synthetic_sentences_per_day=8",
                           "train.batch_size=8"])
FIRST_TARGET_S, LATER_TARGET_S = 60.0, 1.0
SCRIPT = f"""
import json, time
from lab.families import registry
from trainers.engine.training import train
from lab.records.config import from_dict
spec = registry.get("neural_decoder")
config = from_dict(spec.config.Config, spec.resolve(preset="tiny", overrides=[
    "train.device=xla", "train.max_steps={STEPS}", "train.eval_every=1000", "train.log_every=1", *{MODEL!r}]))
rows = []
started = time.perf_counter()
train("neural_decoder", config, out_dir=OUT, on_row=lambda row: rows.append((time.perf_counter(), row)))
steps = [moment for moment, row in rows if "train/loss" in row]
print(json.dumps({{"first": steps[0] - started, "later": (steps[-1] - steps[1]) / max(1, len(steps) - 2)}}))
"""


def main() -> int:
    if importlib.util.find_spec("torch_xla") is None:
        print("xla tiny: skipped, torch_xla is not installed (pip install 'lab[tpu]'; target: first step within "
              f"{FIRST_TARGET_S:g} s)")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PJRT_DEVICE": "CPU", "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", f"OUT = {folder!r}\n" + SCRIPT], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            print(f"xla tiny: failed ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'})")
            return 1
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"neural_decoder tiny on XLA (CPU): first step after {figures['first']:.1f} s (target <= "
              f"{FIRST_TARGET_S:g} s; was > 600 s before the scan GRU), then {figures['later']:.2f} s per step "
              f"(target <= {LATER_TARGET_S:g} s)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
