"""Metric plots as PNG files (matplotlib, Agg).

A plot is redrawn only when its data changed: the PNG carries a digest of what it shows, so re-rendering the
same records rewrites nothing and gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from lab.records import atomic_write

Series = dict[str, tuple[list[float], list[float]]]  # label -> (steps, values)
MAX_POINTS = 2000  # per plotted series; longer ones are reduced to their lowest and highest point per bucket


def _digest(panels: list[tuple[str, Series]]) -> str:
    return hashlib.sha1(json.dumps(panels, sort_keys=True).encode()).hexdigest()


def _shows(path: Path, digest: str) -> bool:
    """Whether the PNG at `path` carries `digest` in its Comment text chunk."""
    try:
        return b"Comment\x00" + digest.encode() in path.read_bytes()
    except FileNotFoundError:
        return False


LOG_SCALE_WORDS = ("loss", "grad norm")


def log_scale(title: str, series: Series) -> bool:
    """Losses and gradient norms are read on a log axis, when every value is positive."""
    return any(word in title for word in LOG_SCALE_WORDS) and all(
        value > 0 for _, values in series.values() for value in values)


def plot_panels(path: Path, panels: list[tuple[str, Series]]) -> Path:
    """Draw each (title, series) panel side by side in one PNG at `path`, unless it already shows this data."""
    digest = _digest(panels)
    if _shows(path, digest):
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(panels), 2)
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), dpi=80, squeeze=False)
    for (title, series), ax in zip(panels, axes.flat):
        for label, (steps, values) in series.items():
            ax.plot(steps, values, label=label, linewidth=1.3)
        if log_scale(title, series):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    figure.subplots_adjust(left=0.09, right=0.97, bottom=0.14 / rows, top=1 - 0.1 / rows, wspace=0.25,
                           hspace=0.45)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None, "Comment": digest})
    plt.close(figure)
    atomic_write(path, lambda stream: stream.write(buffer.getvalue()))
    return path
