"""The size a benchmark runs at: full under `make bench`, tiny with `BENCH_SIZE=tiny`, which the test suite's
smoke run uses to prove that every benchmark still runs (figures at that size mean nothing).

    from sizes import pick
    RUNS = pick(full=1000, tiny=5)
"""

from __future__ import annotations

import os

TINY = os.environ.get("BENCH_SIZE", "full") == "tiny"


def pick(full, tiny):
    """`tiny` under BENCH_SIZE=tiny, else `full`."""
    return tiny if TINY else full
