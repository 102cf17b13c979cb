"""A 60 MB stream of ordinary log lines through `lab launch` beside plain `tee` (target: within 1.2x), and a tqdm
flood of 700,000 carriage-return redraws. The launch's fixed cost (imports, records) is measured with a command
that prints nothing and taken off, so the figure compared is what the output itself costs. Targets: within 1.2x of
tee for the ordinary lines, and a stdout.log of the redraws under 1 MB (the bar's last state per line kept)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.records.store import Store
from sizes import pick

LINE_COUNT, REDRAW_COUNT, REPEATS = pick(full=745_000, tiny=2_000), pick(full=700_000, tiny=2_000), pick(3, 1)
TEE_TARGET, KEPT_TARGET_BYTES = 1.2, 1_000_000
LINES = ("import sys\nout = sys.stdout\nfor i in range({count}):\n"
         "    out.write(f'step {{i}}/1000000 | loss {{1 / (i + 1):.6f}} | lr 3.00e-04 | grad_norm 1.2345 | "
         "12.3 it/s\\n')\n")
REDRAWS = ("import sys\nfor i in range({count}):\n"
           "    sys.stdout.write(f'\\r{{i * 100 // {count}:3d}}%|#####     | {{i}}/{count} [00:01<00:02, 5.0it/s]')\n"
           "print()\n")


def seconds(command: str, cwd: Path, env: dict, repeats: int = REPEATS) -> float:
    """Median wall time of a shell command, its output sent to /dev/null."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(f"{command} > /dev/null", shell=True, cwd=cwd, env=env, check=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "lab", "init", "--no-wandb"], cwd=root, env=env, check=True,
                       capture_output=True)
        settings = json.loads((root / "lab.json").read_text())
        (root / "lines.py").write_text(LINES.format(count=LINE_COUNT))
        (root / "redraws.py").write_text(REDRAWS.format(count=REDRAW_COUNT))
        (root / "nothing.py").write_text("")
        python, lab = sys.executable, f"{sys.executable} -m lab"
        subprocess.run(f"{python} lines.py > stream.txt", shell=True, cwd=root, check=True)
        size = (root / "stream.txt").stat().st_size / 1e6
        subprocess.run(f"{lab} new-run bench_001 --hypothesis output", shell=True, cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)

        alone = seconds(f"{python} lines.py", root, env)
        tee = seconds(f"{python} lines.py | tee out.txt", root, env) - seconds(f"{python} nothing.py | tee out.txt",
                                                                                 root, env)
        fixed = seconds(f"{lab} launch bench_001 --no-commit -- {python} nothing.py", root, env)
        launch = seconds(f"{lab} launch bench_001 --no-commit -- {python} lines.py", root, env) - fixed
        ratio = launch / max(tee, 1e-3)
        print(f"{size:.1f} MB of log lines: script alone {alone:.2f} s; through tee +{tee:.2f} s; through lab launch "
              f"+{launch:.2f} s over its fixed {fixed:.2f} s ({ratio:.2f}x tee, target <= {TEE_TARGET:g}x: "
              f"{'met' if ratio <= TEE_TARGET else 'MISSED'}; 5 + 5 MB kept)")

        settings["launch"] = {"output_head_mb": 100}
        (root / "lab.json").write_text(json.dumps(settings))
        whole = seconds(f"{lab} launch bench_001 --no-commit -- {python} lines.py", root, env) - fixed
        print(f"  the same, all {size:.1f} MB kept and redacted: +{whole:.2f} s ({whole / max(tee, 1e-3):.2f}x tee, "
              f"target <= {TEE_TARGET:g}x)")

        redraws = seconds(f"{lab} launch bench_001 --no-commit -- {python} redraws.py", root, env, repeats=1) - fixed
        log = Store(root).attempt_folders("bench_001")[-1]  # the newest attempt, in the lab's own order
        kept = (log / "stdout.log").stat().st_size
        print(f"{REDRAW_COUNT:,} tqdm redraws: +{redraws:.2f} s through lab launch; stdout.log keeps {kept} bytes "
              f"(target < {KEPT_TARGET_BYTES:,})")


if __name__ == "__main__":
    main()
