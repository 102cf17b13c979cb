"""`make bench`: run every benchmark in this folder, each in its own process, and print its figures beside their
targets. `BENCH_SIZE=tiny` runs each at a tiny size (what the test suite's smoke run does)."""

import subprocess
import sys
from pathlib import Path

for script in sorted(Path(__file__).parent.glob("bench_*.py")):
    print(f"== {script.stem}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
