"""Train a family from the command line.

    python -m trainers neural_decoder --preset tiny --set train.max_steps=200 --set optim.lr=1e-3
    python -m trainers neural_decoder --config logs/runs/nsd_001/config.json --resume artefacts/.../last.pt

Bad input (unknown family, preset or key, a bad value, a missing file) ends with one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from lab import families, tracker
from lab.config import ConfigError, apply_overrides, from_dict, to_dict
from lab.health import LiveMonitor
from trainers.config import validate


def load_config(family: str, preset: str | None, config_file: str | None, overrides: list[str]):
    """The family's Config dataclass from a preset (default baseline) or a JSON file, with overrides applied.

    Raises ConfigError (one line) for anything the engine would refuse in the config itself.
    """
    module = families.config_module(family)
    if config_file is not None:
        try:
            values = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_file}") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"config file {config_file} is not JSON: {error}") from None
        values = to_dict(from_dict(module.Config, values))  # unknown keys are rejected here
    else:
        values = families.preset(family, preset or "baseline")
    config = from_dict(module.Config, apply_overrides(values, overrides))
    validate(config.optim, config.train)
    return config


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m trainers",
        description="Train a model family on the shared engine.",
        epilog="example: python -m trainers neural_decoder --preset tiny --set train.max_steps=100",
    )
    command.add_argument("family", help=f"model family ({', '.join(families.known())})")
    source = command.add_mutually_exclusive_group()
    source.add_argument("--preset", help="named preset of the family (default: baseline)")
    source.add_argument("--config", metavar="FILE.json", help="resolved config written by the lab")
    command.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)",
    )
    command.add_argument("--resume", metavar="PATH", help="checkpoint to continue from exactly")
    command.add_argument(
        "--out", metavar="DIR", help="where checkpoints go outside the lab (default artefacts/standalone/FAMILY)"
    )
    return command


def health_monitor(config) -> Callable[[dict], bool]:
    """An `on_row` hook running the lab's health rules live: findings become events; `train.stop_on` stops."""
    monitor = LiveMonitor(to_dict(config), stop_on=config.train.stop_on)

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
        from trainers.engine import train

        train(args.family, config, resume=args.resume, out_dir=args.out, on_row=health_monitor(config))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
