"""The error kinds of the notebook, and the one way the library writes a line to the user. Each message is one
line meant for the user; the CLI prints an error as `lab: error: <message>` and exits non-zero. Imports nothing
of the lab."""

from __future__ import annotations

import sys


class LabError(Exception):
    """A user-facing error: bad input or a missing record; the message is one line."""


class ConfigError(ValueError):
    """An invalid config value or override (unknown key, wrong type); the message is one line."""


class RecordError(ValueError):
    """A record file that cannot be read (edited by hand, or damaged); the message is one line."""


def say(text: str) -> None:
    """One `lab: <text>` line on stderr, flushed (the lab's lines interleave with a launched command's output).
    sys.stderr is looked up at each call, so `lab.cli.main(argv, stderr=...)` receives it."""
    print(f"lab: {text}", file=sys.stderr, flush=True)


def warn(text: str) -> None:
    """One `lab: warning: <text>` line on stderr (see `say`)."""
    say(f"warning: {text}")
