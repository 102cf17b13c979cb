"""`lab render` over 1,000 synthetic runs: every daily log, the changelog, group ablations and reports. Target:
30 ms per run, cold or warm (30 s for 1,000 runs; 390 s before SVG plots)."""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from lab.pages import reports
from lab.records.config import apply_overrides, to_dict
from lab.records.files import write_json
from lab.records.store import Store
from sizes import pick
from trainers.neural_decoder.config import PROVENANCE, baseline

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(full=1000, tiny=5)
TARGET_MS_PER_RUN = 30
STEPS, EVAL_EVERY, GROUP_SIZE = 200, 50, 10


def metric_lines(rng: random.Random, final: float) -> str:
    lines = []
    for step in range(1, STEPS + 1):
        loss = final + 3 * math.exp(-4 * step / STEPS) + rng.gauss(0, 0.02)
        lines.append(f'{{"step": {step}, "time": {step * 0.1:.1f}, "train/loss": {loss:.5f}, '
                     f'"train/grad_norm": {1 + rng.random():.4f}, "train/lr": 0.001}}')
        if step % EVAL_EVERY == 0:
            lines.append(f'{{"step": {step}, "time": {step * 0.1 + 0.05:.2f}, "val/loss": {loss + 0.2:.5f}, '
                         f'"val/per": {(loss + 0.2) / 5:.5f}}}')
    return "\n".join(lines) + "\n"


def build(store: Store) -> None:
    rng = random.Random(0)
    base = to_dict(baseline())
    store.baselines.save(PROVENANCE["baseline"], PROVENANCE, base)
    for index in range(1, RUNS + 1):
        run_id = f"nsd_{index:03d}" if index < 1000 else f"nse_{index - 999:03d}"
        lr = rng.choice(["0.001", "0.0015", "0.002", "0.003"])
        config = apply_overrides(base, [f"optim.lr={lr}", f"model.dropout={rng.choice(['0.2', '0.3', '0.4'])}"])
        store.runs.create(run_id, hypothesis=f"LR {lr} works", family="neural_decoder", preset="baseline",
                         baseline=PROVENANCE["baseline"], group=f"group_{index // GROUP_SIZE:03d}", config=config)
        folder = store.attempts.begin(run_id, command=["python", "-m", "trainers"], pid=os.getpid(),
                                     builtin_trainer=True, overrides=[])
        write_json(folder / "config.json", config)
        (folder / "metrics.jsonl").write_text(metric_lines(rng, rng.uniform(0.8, 1.5)))
        write_json(folder / "summary.json", {"param_count": 133845033, "steps": STEPS, "samples_per_s": 900.0})
        store.attempts.end(folder, exit_code=0, status="finished")
        store.events.add(run_id, "note", field="conclusion", text="Synthetic conclusion.")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store.init(Path(folder))
        started = time.perf_counter()
        build(store)
        print(f"built {RUNS} runs ({STEPS} steps each) in {time.perf_counter() - started:.1f} s")
        for label in ("cold", "warm"):
            started = time.perf_counter()
            pages = reports.render_all(store)
            seconds = time.perf_counter() - started
            per_run = seconds / RUNS * 1000
            print(f"lab render ({label}): {len(pages)} pages in {seconds:.1f} s ({per_run:.0f} ms per run, target <= "
                  f"{TARGET_MS_PER_RUN} ms: {'met' if per_run <= TARGET_MS_PER_RUN else 'MISSED'})")


if __name__ == "__main__":
    main()
