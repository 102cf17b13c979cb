"""How long things take, as the pages and progress lines say it: '2h 5m', '3m 12s', '9s', and the time left of
long work at the pace so far ('ETA 3m 12s'). Torch-free and quick to import: trainers print it on every
progress line."""

from __future__ import annotations


def seconds_text(seconds: float) -> str:
    """A non-negative number of seconds as '2h 5m', '3m 12s' or '9s'."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def eta_text(elapsed: float, done: float, total: float) -> str:
    """'ETA 3m 12s' for the `total - done` units of work left, at the pace of the `done` units that took
    `elapsed` seconds (whatever ran between them, evaluations and checkpoints, included); 'ETA unknown' before
    the first unit."""
    if done <= 0 or elapsed <= 0:
        return "ETA unknown"
    return f"ETA {seconds_text(round(elapsed / done * max(total - done, 0)))}"
