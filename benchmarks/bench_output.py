"""Output through `lab launch` beside plain `tee`, for each shape of output that scripts print: ordinary log lines,
lines ending in a long run of one character, hex and base64-like tokens (hashes, ids, blobs), a tqdm bar redrawn
with `\\r` 700,000 times, very long lines, 40 KB lines of one secret-sounding name repeated, and 1 MB lines of
URL-safe base64. Each prints about 40 MB. The launch's fixed cost (imports, records) is measured with a command that
prints nothing and taken off, so the figure compared is what the output itself costs (tee's own start likewise).
Targets: within 1.5x of tee for every shape (1.2x for ordinary lines), and a stdout.log of the redraws under 1 MB
(the bar's last state per line kept)."""

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

COUNT, REPEATS = pick(full=600_000, tiny=2_000), pick(3, 1)
TEE_TARGET, ORDINARY_TARGET, KEPT_TARGET_BYTES = 1.5, 1.2, 1_000_000
HEADER = "import random, sys\nout = sys.stdout\nrandom.seed(0)\n"
SHAPES = {  # name -> the script's body (COUNT lines or redraws)
    "ordinary log lines": "for i in range({count}):\n"
                          "    out.write(f'step {{i}}/1000000 | loss {{1 / (i + 1):.6f}} | lr 3.00e-04 | "
                          "grad_norm 1.2345 | 12.3 it/s\\n')\n",
    "a run of one character": "for i in range({count}):\n"
                              "    out.write(f'step {{i}} tokens/s 123456 ' + 'x' * 60 + '\\n')\n",
    "hex tokens": "for i in range({count}):\n"
                  "    out.write(f'step {{i}} saved ckpt {{i * 2654435761 ** 3 % (1 << 160):040x}}\\n')\n",
    "base64-like tokens": "alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'\n"
                          "tokens = [''.join(random.choices(alphabet, k=44)) + '==' for _ in range(1000)]\n"
                          "for i in range({count}):\n"
                          "    out.write(f'step {{i}} blob {{tokens[i % 1000]}}\\n')\n",
    "\\r progress bars": "for i in range({count}):\n"
                        "    out.write(f'\\r{{i * 100 // {count}:3d}}%|#####     | {{i}}/{count} "
                        "[00:01<00:02, 5.0it/s] loss {{1 / (i + 1):.6f}}')\n"
                        "print()\n",
    "very long lines": "hexes = [f'{{index * 2654435761 ** 3 % (1 << 160):040x}}' for index in range(1000)]\n"
                       "line = ' '.join(hexes * 25) + '\\n'\n"
                       "for i in range({count} // 15_000 + 1):\n"
                       "    out.write(line)\n",
    "a repeated name": "line = 'pw' * 20_000 + '\\n'\n"
                       "for i in range({count} // 600 + 1):\n"
                       "    out.write(line)\n",
    "URL-safe base64 lines": "import base64\n"
                             "line = base64.urlsafe_b64encode(random.randbytes(750_000)).decode() + '\\n'\n"
                             "for i in range({count} // 15_000 + 1):\n"
                             "    out.write(line)\n",
}


def seconds(command: str, cwd: Path, env: dict, repeats: int = REPEATS) -> float:
    """Median wall time of a shell command, its output sent to /dev/null."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(f"{command} > /dev/null", shell=True, cwd=cwd, env=env, check=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def compare(root: Path, env: dict, script: str, fixed: float, tee_start: float) -> tuple[float, float, float]:
    """(script alone, what tee adds, what lab launch adds over its fixed cost), in seconds."""
    python, lab = sys.executable, f"{sys.executable} -m lab"
    alone = seconds(f"{python} {script}", root, env)
    tee = seconds(f"{python} {script} | tee out.txt", root, env) - tee_start
    launch = seconds(f"{lab} launch bench_001 --no-commit -- {python} {script}", root, env) - fixed
    return alone, tee, launch


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "lab", "init", "--no-wandb"], cwd=root, env=env, check=True,
                       capture_output=True)
        settings = json.loads((root / "lab.json").read_text())
        (root / "nothing.py").write_text("")
        python, lab = sys.executable, f"{sys.executable} -m lab"
        subprocess.run(f"{lab} new-run bench_001 --hypothesis output", shell=True, cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        fixed = seconds(f"{lab} launch bench_001 --no-commit -- {python} nothing.py", root, env)
        tee_start = seconds(f"{python} nothing.py | tee out.txt", root, env)
        print(f"the launch's fixed cost {fixed:.2f} s and tee's start {tee_start:.2f} s are taken off each figure")
        for index, (name, body) in enumerate(SHAPES.items()):
            script = f"shape{index}.py"
            (root / script).write_text(HEADER + body.format(count=COUNT))
            size = len(subprocess.run([python, script], cwd=root, check=True, capture_output=True).stdout) / 1e6
            alone, tee, launch = compare(root, env, script, fixed, tee_start)
            target = ORDINARY_TARGET if name == "ordinary log lines" else TEE_TARGET
            ratio = launch / max(tee, 1e-3)
            print(f"{name}, {size:.1f} MB: script alone {alone:.2f} s; tee +{tee:.2f} s; lab launch +{launch:.2f} s "
                  f"({ratio:.2f}x tee, target <= {target:g}x: {'met' if ratio <= target else 'MISSED'})")
            if name == "\\r progress bars":
                kept = (Store(root).attempt_folders("bench_001")[-1] / "stdout.log").stat().st_size
                print(f"  stdout.log keeps {kept:,} bytes of the redraws (target < {KEPT_TARGET_BYTES:,})")

        settings["launch"] = {"output_head_mb": 100}
        (root / "lab.json").write_text(json.dumps(settings))
        alone, tee, launch = compare(root, env, "shape0.py", fixed, tee_start)
        print(f"ordinary log lines, all kept and redacted: lab launch +{launch:.2f} s ({launch / max(tee, 1e-3):.2f}x "
              f"tee, target <= {TEE_TARGET:g}x)")


if __name__ == "__main__":
    main()
