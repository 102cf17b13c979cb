"""lab: a research lab notebook and run tracker. `from lab import tracker` inside training scripts, `from lab
import api` to drive the notebook from Python.

The notebook's layers, each importing only those listed before it (never `trainers/`, `models/` or torch):

    lab.errors      the three error kinds every layer raises
    lab.records     the run store and its records: files, configs, metric tables, secret redaction
    lab.families    the family seam: what the notebook needs from a model family, and how families are found
    lab.health      health rules over metric streams, and diagnosing an attempt with its family's rules
    lab.tracking    what runs inside the user's training process: the tracker, zero-code capture (autolog)
    lab.launcher    what runs around the user's command: `lab launch`, its tee, git, W&B links and sync
    lab.pages       rendered pages: context for templates, reports, comparisons, changelogs, plots
    lab.runs        the run operations, one module per command: init, new-run, note, runs/show/diff, rename, rm
    lab.api         the Python API: one function per `lab` command (`from lab import api`)
    lab.cli, lab.demo   the `lab` command (parse, call lab.api, print) and `make demo` on top

`tests/lab/test_layers.py` holds the code to this map.
"""

import importlib


def __getattr__(name: str):
    """`from lab import tracker` gives the tracker client (lab.tracking.tracker) without importing it eagerly."""
    if name == "tracker":
        return importlib.import_module("lab.tracking.tracker")
    raise AttributeError(f"module 'lab' has no attribute {name!r}")
