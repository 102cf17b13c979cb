"""Train a family from the command line.

    python -m trainers neural_decoder --preset tiny --set train.max_steps=200 --set optim.lr=1e-3
    python -m trainers neural_decoder --config logs/runs/nsd_001/config.json --resume artefacts/.../last.pt

Bad input (unknown family, preset or key, a bad value, a missing file) ends with one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from lab import tracker
from lab.errors import ConfigError
from lab.families import registry
from lab.families.spec import FamilySpec
from lab.health.diagnosis import rules_for
from lab.health.rules import LiveMonitor
from lab.records.config import read_config_file, to_dict


def load_config(family: str, preset: str | None, config_file: str | None, overrides: list[str]):
    """The family's Config dataclass the way `lab new-run` makes it: the preset (default baseline), a JSON
    file's values merged in (a partial file changes only what it names), then overrides.

    Raises ConfigError (one line) for anything the engine would refuse in the config itself.
    """
    spec = registry.get(family)
    file_values = read_config_file(config_file) if config_file is not None else None
    values = spec.resolve(preset=preset, file_values=file_values, overrides=overrides)
    return spec.build_config(values)


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m trainers",
        description="Train a model family on the shared engine.",
        epilog="example: python -m trainers neural_decoder --preset tiny --set train.max_steps=100",
    )
    command.add_argument("family", help=f"model family ({', '.join(registry.known())})")
    source = command.add_mutually_exclusive_group()
    source.add_argument("--preset", help="named preset of the family (default: baseline)")
    source.add_argument("--config", metavar="FILE.json",
                        help="JSON config merged into the baseline preset (the lab writes resolved ones)")
    command.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)",
    )
    command.add_argument("--resume", metavar="PATH", help="checkpoint to continue from exactly")
    command.add_argument(
        "--out", metavar="DIR", help="where checkpoints go outside the lab (default artefacts/standalone/FAMILY)"
    )
    return command


def health_monitor(spec: FamilySpec, config) -> Callable[[dict], bool]:
    """An `on_row` hook running the health rules (global and the family's) live: findings become events;
    `train.stop_on` stops the run."""
    monitor = LiveMonitor(to_dict(config), stop_on=config.train.stop_on, rules=rules_for(spec))

    def on_row(row: dict) -> bool:
        for finding in monitor.observe(row):
            tracker.event("health", **finding.to_dict())
            print(f"health [{finding.rule}] step {finding.step}: {finding.message}", file=sys.stderr, flush=True)
        return monitor.should_stop

    return on_row


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        config = load_config(args.family, args.preset, args.config, args.overrides)
        from trainers.engine.training import train

        spec = registry.get(args.family)
        train(spec, config, resume=args.resume, out_dir=args.out, on_row=health_monitor(spec, config))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def leave(code: int) -> None:
    """End a process of a multi-process run once its records are closed, without tearing down its process
    group: destroying gloo's group (the last reference going with DDP's reducer) joins a worker thread that
    waits for the GIL the joining thread holds, and the process hangs after training (seen on CPU, torch 2.9)."""
    tracker.finish()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    status = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        leave(status)
    sys.exit(status)
