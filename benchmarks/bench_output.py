"""A 60 MB stream of ordinary log lines through `lab launch` beside plain `tee` (target: within 1.2x), and a tqdm
flood of 700,000 carriage-return redraws. The launch's fixed cost (imports, records) is measured with a command
that prints nothing and taken off, so the figure compared is what the output itself costs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINES = ("import sys\nout = sys.stdout\nfor i in range({count}):\n"
         "    out.write(f'step {{i}}/1000000 | loss {{1 / (i + 1):.6f}} | lr 3.00e-04 | grad_norm 1.2345 | "
         "12.3 it/s\\n')\n")
REDRAWS = ("import sys\nfor i in range({count}):\n"
           "    sys.stdout.write(f'\\r{{i * 100 // {count}:3d}}%|#####     | {{i}}/{count} [00:01<00:02, 5.0it/s]')\n"
           "print()\n")


def seconds(command: str, cwd: Path, env: dict, repeats: int = 3) -> float:
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
        (root / "lines.py").write_text(LINES.format(count=745_000))
        (root / "redraws.py").write_text(REDRAWS.format(count=700_000))
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
        print(f"{size:.0f} MB of log lines: script alone {alone:.2f} s; through tee +{tee:.2f} s; through lab launch "
              f"+{launch:.2f} s over its fixed {fixed:.2f} s ({launch / tee:.2f}x tee, target <= 1.2x; 5 + 5 MB kept)")

        settings["launch"] = {"output_head_mb": 100}
        (root / "lab.json").write_text(json.dumps(settings))
        whole = seconds(f"{lab} launch bench_001 --no-commit -- {python} lines.py", root, env) - fixed
        print(f"  the same, all {size:.0f} MB kept and redacted: +{whole:.2f} s ({whole / tee:.2f}x tee)")

        redraws = seconds(f"{lab} launch bench_001 --no-commit -- {python} redraws.py", root, env, repeats=1) - fixed
        log = sorted((root / "logs" / "runs" / "bench_001" / "attempts").iterdir(), key=lambda p: int(p.name))[-1]
        kept = (log / "stdout.log").stat().st_size
        print(f"700,000 tqdm redraws: +{redraws:.2f} s through lab launch; stdout.log keeps {kept} bytes")


if __name__ == "__main__":
    main()
