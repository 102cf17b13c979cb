"""Metric plots as PNG files (matplotlib, Agg); bytes are stable for the same data."""

from __future__ import annotations

from pathlib import Path


def line_plot(path: Path, title: str, series: dict[str, tuple[list[float], list[float]]], ylabel: str) -> Path:
    """Plot `series` (label -> (steps, values)) on one chart at `path`; rewritten only when the bytes change."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=100)
    for label, (steps, values) in series.items():
        axes.plot(steps, values, label=label, linewidth=1.4)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = buffer.getvalue()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path
