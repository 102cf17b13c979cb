"""Reading a large lab: a generated lab of RUNS runs made the way launches record them (20 runs a day, groups of
10, 2 attempts a run, 204 metric rows an attempt), then the time and peak memory of each reading command from a
fresh process, against issue 31's targets at 10,000 runs. The first table derives every row (and keeps it in
the lab's derived values); every later command reads what was kept. Then `lab render` cold (every page) and
after one `lab note` (only the pages that changed: lab.pages.incremental). Beside them, when mlflow is importable
(it is no dependency of the lab), MLflow's answer to the filtered, sorted question on the same runs logged to
its sqlite store.

A lab of more than TINY runs is generated once into ~/.cache/lab/bench-lab-<RUNS> and copied for each
measurement (generating 10,000 runs takes long on a small machine).

    python benchmarks/bench_lab_size.py [RUNS]      # default 10,000 (make bench), 20 at BENCH_SIZE=tiny
"""

from __future__ import annotations

import importlib.util
import json
import math
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lab.records.files import write_json
from lab.records.store import Store, attempts, events, runs
from sizes import pick

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(full=10_000, tiny=20)
PER_DAY, GROUP_SIZE, ATTEMPTS, STEPS, EVAL_EVERY = 20, 10, 2, 200, 50
TARGET_MB = 400
TINY = 100  # a lab this small is generated afresh each time
QUESTION = ["--where", "group == 'group_0001' or val/loss.best < 1.0", "--sort", "val/loss.best",
            "--columns", "id,config.lr,val/loss.best"]


class Clock:
    """A clock the store reads instead of the wall's: 20 runs a day from 2025-01-01, each record a minute on."""

    def __init__(self):
        self.now = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)

    def __call__(self) -> str:
        self.now += timedelta(minutes=1)
        return self.now.isoformat(timespec="seconds")

    def next_day(self) -> None:
        self.now = (self.now + timedelta(days=1)).replace(hour=9, minute=0)


def metric_lines(rng: random.Random, final: float) -> str:
    """204 rows: a training loss every step, a validation loss every 50."""
    lines = []
    for step in range(1, STEPS + 1):
        loss = final + 3 * math.exp(-4 * step / STEPS) + rng.gauss(0, 0.02)
        lines.append(f'{{"step": {step}, "time": {step * 0.1:.1f}, "train/loss": {loss:.5f}}}')
        if step % EVAL_EVERY == 0:
            lines.append(f'{{"step": {step}, "time": {step * 0.1 + 0.05:.2f}, "val/loss": {loss + 0.2:.5f}}}')
    return "\n".join(lines) + "\n"


def run_name(index: int) -> str:
    """The id of the index-th run: a prefix per 999 runs (ids are a prefix and three digits)."""
    return f"exp{index // 999:02d}_{index % 999 + 1:03d}"


def build(store: Store) -> None:
    """RUNS runs through the store's own API, each with ATTEMPTS ended attempts and a note."""
    clock, rng = Clock(), random.Random(0)
    for module in (runs, attempts, events):
        module.now_iso = clock
    for index in range(RUNS):
        if index and index % PER_DAY == 0:
            clock.next_day()
        run_id = run_name(index)
        lr = rng.choice([0.001, 0.002, 0.003])
        store.runs.create(run_id, hypothesis=f"LR {lr} trains faster", group=f"group_{index // GROUP_SIZE:04d}",
                          parent=run_name(index - 1) if index % GROUP_SIZE else None, config={"lr": lr})
        for _ in range(ATTEMPTS):
            folder = store.attempts.begin(run_id, command=["python", "train.py"], pid=os.getpid())
            write_json(folder / "config.json", {"lr": lr})
            (folder / "metrics.jsonl").write_text(metric_lines(rng, rng.uniform(0.8, 1.5)))
            store.attempts.end(folder, exit_code=0, status="finished")
        store.events.add(run_id, "note", field="conclusion", text="Synthetic conclusion.")


def measure(root: Path, *args: str, code: str | None = None) -> tuple[float, float]:
    """(seconds, peak resident MB) of one `lab` command (or of Python `code`) in a fresh process."""
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lab", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def report(label: str, seconds: float, peak: float, target: float) -> None:
    verdict = "met" if seconds <= target and peak <= TARGET_MB else "MISSED"
    print(f"{label}: {seconds:.2f} s (target <= {target:g} s), peak {peak:.0f} MB (target <= {TARGET_MB} MB): "
          f"{verdict}")


def generated(folder: Path) -> None:
    """A generated lab of RUNS runs at `folder`: copied from ~/.cache/lab/bench-lab-<RUNS> (made there first when
    missing), or generated in place for a lab of at most TINY runs."""
    cached = Path.home() / ".cache" / "lab" / f"bench-lab-{RUNS}"
    if RUNS > TINY and (cached / "built").exists():
        shutil.copytree(cached, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("built"))
        print(f"copied the generated lab of {RUNS:,} runs from {cached}")
        return
    started = time.perf_counter()
    build(Store.init(folder))
    print(f"built {RUNS:,} runs, {RUNS * ATTEMPTS:,} attempts, {RUNS * ATTEMPTS * 204:,} metric rows over "
          f"{math.ceil(RUNS / PER_DAY)} days in {time.perf_counter() - started:.0f} s (the targets are for 10,000 "
          "runs)")
    if RUNS > TINY:
        shutil.copytree(folder, cached, dirs_exist_ok=True)
        (cached / "built").touch()


MLFLOW_QUESTION = ("import mlflow; mlflow.set_tracking_uri({uri!r}); "
                   "mlflow.search_runs(experiment_names=['bench'], filter_string=\"metrics.`val/loss` < 1.0\", "
                   "order_by=['metrics.`val/loss` ASC'])")


def mlflow_store(root: Path, uri: str) -> None:
    """The lab's runs logged to MLflow at `uri` (its sqlite store): one MLflow run per lab run, its lr as a param,
    its group as a tag and the validation losses of its last attempt as metric history."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("bench")
    store = Store.find(root)
    for run_id in store.run_ids():
        run = store.runs.load(run_id)
        folder = store.attempt_folders(run_id)[-1]
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        lr = json.loads((folder / "config.json").read_text())["lr"]
        losses = [Metric("val/loss", row["val/loss"], 0, row["step"]) for row in rows if "val/loss" in row]
        made = client.create_run(experiment, tags={"mlflow.runName": run_id})
        client.log_batch(made.info.run_id, metrics=losses, params=[Param("lr", str(lr))],
                         tags=[RunTag("group", run["group"])])
        client.set_terminated(made.info.run_id)


def mlflow_beside(root: Path) -> None:
    """MLflow's search_runs of the question (fresh process) beside the lab's, or why not."""
    if importlib.util.find_spec("mlflow") is None:
        print("mlflow: not installed, skipped")
        return
    uri = f"sqlite:///{root / 'mlflow.db'}"
    started = time.perf_counter()
    logging = multiprocessing.get_context("fork").Process(target=mlflow_store, args=(root, uri))
    logging.start()  # in a child: Linux keeps a process's peak memory across fork and exec for the measured ones
    logging.join()
    print(f"mlflow: logged {RUNS:,} runs to its sqlite store in {time.perf_counter() - started:.0f} s")
    report("mlflow.search_runs(filter_string=val/loss < 1.0, order_by=val/loss), fresh process",
           *measure(root, code=MLFLOW_QUESTION.format(uri=uri)), 1.0)
    report("lab runs --where 'val/loss.best < 1.0' --sort val/loss.best, fresh process",
           *measure(root, "runs", "--where", "val/loss.best < 1.0", "--sort", "val/loss.best"), 1.0)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generated(root)
        day = "2025-01-01"
        table = "from lab import api; api.runs()"
        report("lab.api.runs() DataFrame, configs and final metrics, first (derives every row)",
               *measure(root, code=table), 2.0)
        report("lab.api.runs() again (rows kept in the derived index)", *measure(root, code=table), 2.0)
        report("lab runs --where ... --sort ...", *measure(root, "runs", *QUESTION), 1.0)
        report("lab runs", *measure(root, "runs"), 0.5)
        report(f"lab log {day}", *measure(root, "log", day), 1.0)
        report("lab compare --group group_0001 (10 runs)", *measure(root, "compare", "--group", "group_0001"), 1.5)
        report("lab render cold, every page", *measure(root, "render"), 180.0)
        measure(root, "note", run_name(RUNS - 1), "--findings", "one more note")
        report("lab render after one lab note", *measure(root, "render"), 2.0)
        mlflow_beside(root)


if __name__ == "__main__":
    main()
