"""Settings for the whole suite. Under pytest-xdist (`make test` runs `-n auto`) every worker, and every process it
starts (a launched trainer inherits the environment), uses its share of the CPU cores for torch's threads: with
each process spinning up a thread per core, two workers on two cores oversubscribe them and a tiny training run
takes several times as long."""

import os

import pytest

import lab_testing


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, threads)


@pytest.fixture(autouse=True)
def wandb_mode(request):
    """W&B offline for the `lab` calls and launches of a test marked `wandb`, disabled for the others."""
    lab_testing.WANDB_MODE = "offline" if request.node.get_closest_marker("wandb") else "disabled"
    yield
    lab_testing.WANDB_MODE = "disabled"
