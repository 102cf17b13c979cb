"""Cost of zero-code capture (lab.tracking.autolog) per `wandb.log` and per `SummaryWriter.add_scalar` call, on
top of the library's own: the lab's patch is put around a library method that does nothing, in a process
recording to an attempt as under `lab launch`, so the time per call is the capture's alone (wrapping, W&B's
row merging, the tracker's rules and the metrics.jsonl line). Target: under 10 us each."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sizes import pick

TARGET_US = 10.0
ROOT = Path(__file__).resolve().parents[1]
CALLS, BATCHES = pick(full=1000, tiny=20), pick(full=60, tiny=2)  # per batch; the quickest batch counts

CHILD = """
import time, types
from wandb.sdk import wandb_run
from lab.tracking.autolog import hooks

def per_call_us(function, calls={calls}, batches={batches}):
    best = float('inf')  # the quickest batch: the cost without the other processes of a shared machine
    for _ in range(batches):
        start = time.perf_counter()
        for step in range(calls):
            function(step)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best

wandb_run.Run.log = lambda self, data, step=None, commit=None: None  # W&B's own work left out
import wandb
hooks.patch_wandb(wandb)
run = types.SimpleNamespace(_step=0)
data = {'train/loss': 0.5, 'train/lr': 1e-3, 'train/grad_norm': 1.2}
print('wandb.log', per_call_us(lambda step: wandb_run.Run.log(run, data, step=step)))
import os, pathlib
from lab.tracking.tracker import Tracker
own = Tracker(pathlib.Path(os.environ['LAB_ATTEMPT_DIR']))  # a tracker of its own: no other source's rows
print('tracker.log', per_call_us(lambda step: own.log(step, **data)))

from lab import tracker
tracker.finish()  # TensorBoard's rows go to a fresh tracker: a script logging through it alone

class SummaryWriter:  # TensorBoard's own work left out
    def add_scalar(self, tag, value, global_step=None): pass
    def add_scalars(self, main_tag, values, global_step=None): pass
    def add_hparams(self, hparams, metrics): pass

hooks.patch_summary_writer(types.SimpleNamespace(SummaryWriter=SummaryWriter))
writer = SummaryWriter()
print('SummaryWriter.add_scalar', per_call_us(lambda step: writer.add_scalar('tb/loss', 0.5, step)))
"""


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from lab.records.store import Store

    with tempfile.TemporaryDirectory() as folder:
        store = Store.init(Path(folder))
        store.runs.create("bench_001", hypothesis="capture cost")
        attempt = store.attempts.begin("bench_001", command=["bench"], pid=os.getpid())
        env = {**os.environ, "LAB_ATTEMPT_DIR": str(attempt), "PYTHONPATH": str(ROOT)}
        child = CHILD.replace("{calls}", str(CALLS)).replace("{batches}", str(BATCHES))
        output = subprocess.run([sys.executable, "-c", child], env=env, check=True, capture_output=True,
                                text=True).stdout
    for line in output.splitlines():
        name, cost = line.split()
        if name == "tracker.log":
            print(f"  for reference, tracker.log with the same row: {float(cost):.2f} us")
            continue
        verdict = "ok" if float(cost) < TARGET_US else "OVER TARGET"
        print(f"capture cost per {name}: {float(cost):.2f} us (target < {TARGET_US:g} us: {verdict})")


if __name__ == "__main__":
    main()
