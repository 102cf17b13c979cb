"""Metric plots as SVG files, written directly: line panels with nice ticks, log axes for losses and gradient
norms, a legend, and a dashed vertical line labelled at each stage boundary of the run.

A plot is a few kilobytes of text that any markdown viewer shows; writing one takes about a millisecond, so
`lab render` of a thousand runs is not spent drawing (matplotlib took about 0.2 s per figure). A file is
rewritten only when its data changed: it carries a digest of what it shows, so re-rendering the same records
rewrites nothing and gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

from lab.records.files import atomic_write

Series = dict[str, tuple[list[float], list[float]]]  # label -> (steps, values)
Markers = list[tuple[int, str]]  # (step, label) of each stage boundary
MAX_POINTS = 2000  # per plotted series; longer ones are reduced to their lowest and highest point per bucket
LOG_SCALE_WORDS = ("loss", "grad norm")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
PANEL_WIDTH, PANEL_HEIGHT = 480, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 14, 28, 36
TICKS = 5
DRAWING_VERSION = 2  # part of each plot's digest: raise it when the drawing changes, so plots are redrawn


def log_scale(title: str, series: Series) -> bool:
    """Losses and gradient norms are read on a log axis, when every value is positive."""
    return any(word in title for word in LOG_SCALE_WORDS) and all(
        value > 0 for _, values in series.values() for value in values)


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """About `count` round values (1, 2, 2.5 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= raw)
    first = math.ceil(low / step) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis spanning 10**low to 10**high, as log10 values: 1, 2 and 5 times powers of ten,
    or the powers of ten alone when that would be more than 8 ticks."""
    decades = range(math.floor(low), math.ceil(high) + 1)
    ticks = [math.log10(factor) + decade for decade in decades for factor in (1, 2, 5)]
    ticks = [tick for tick in ticks if low <= tick <= high]
    return ticks if len(ticks) <= 8 else [float(decade) for decade in decades if low <= decade <= high]


def tick_label(value: float) -> str:
    """A tick value as people write it: 4 significant digits, no trailing zeros."""
    return f"{value:.4g}"


def segments(steps: list[float], values: list[float]) -> list[list[tuple[float, float]]]:
    """(step, value) pairs cut where the step goes back (a script restarted from an earlier checkpoint inside
    one attempt), so each stretch is drawn on its own instead of a zig-zag."""
    cut: list[list[tuple[float, float]]] = [[]]
    for step, value in zip(steps, values):
        if cut[-1] and step < cut[-1][-1][0]:
            cut.append([])
        cut[-1].append((step, value))
    return cut


@dataclass(frozen=True)
class Frame:
    """Where a panel's plot area lies (its top-left corner, width and height, in pixels) and the step and value
    ranges it shows (values as log10 on a log axis): maps a (step, value) to a point."""

    left: float
    top: float
    width: float
    height: float
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, step: float) -> float:
        return self.left + (step - self.x_low) / (self.x_high - self.x_low) * self.width

    def y(self, value: float) -> float:
        return self.top + (self.y_high - value) / (self.y_high - self.y_low) * self.height


def panel_frame(xs: list[float], ys: list[float], left: float, top: float) -> Frame:
    """The frame of a panel at (left, top) showing steps `xs` and values `ys`, with 5% room above and below (an
    empty range widened by one either way)."""
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        y_low, y_high = y_low - 1, y_high + 1
    padding = (y_high - y_low) * 0.05
    return Frame(left + MARGIN_LEFT, top + MARGIN_TOP, PANEL_WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
                 PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM, x_low, x_high, y_low - padding, y_high + padding)


def panel_svg(title: str, series: Series, left: float, top: float, markers: Markers = ()) -> list[str]:
    """The SVG elements of one panel whose top-left corner is at (left, top), with a dashed vertical line and its
    label at each of `markers` inside the panel's steps."""
    log = log_scale(title, series)
    transform = math.log10 if log else float
    xs = [step for steps, _ in series.values() for step in steps]
    ys = [transform(value) for _, values in series.values() for value in values if math.isfinite(value)]
    if not xs or not ys:
        return []
    frame = panel_frame(xs, ys, left, top)
    parts = [f'<text x="{left + PANEL_WIDTH / 2:.1f}" y="{top + 17:.1f}" text-anchor="middle" font-size="13">'
             f'{escape(title)}{" (log)" if log else ""}</text>',
             f'<rect x="{frame.left:.1f}" y="{frame.top:.1f}" width="{frame.width:.1f}" height="{frame.height:.1f}" '
             'fill="none" stroke="#444"/>']
    parts += axes_svg(frame, log)
    parts.append(f'<text x="{frame.left + frame.width / 2:.1f}" y="{top + PANEL_HEIGHT - 4:.1f}" '
                 'text-anchor="middle" font-size="10">step</text>')
    parts += markers_svg(frame, markers)
    parts += lines_svg(frame, series, transform, log)
    return parts


def axes_svg(frame: Frame, log: bool) -> list[str]:
    """The grid lines and tick labels of a panel: round steps across, round values (or 1, 2, 5 times powers of
    ten on a log axis) up."""
    parts = []
    bottom = frame.top + frame.height
    for tick in nice_ticks(frame.x_low, frame.x_high):
        x = frame.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{frame.top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" '
                     f'font-size="10">{tick_label(tick)}</text>')
    y_ticks = log_ticks(frame.y_low, frame.y_high) if log else nice_ticks(frame.y_low, frame.y_high)
    for tick in y_ticks:
        if not frame.y_low <= tick <= frame.y_high:
            continue
        y = frame.y(tick)
        parts.append(f'<line x1="{frame.left:.1f}" y1="{y:.1f}" x2="{frame.left + frame.width:.1f}" y2="{y:.1f}" '
                     'stroke="#ddd"/>')
        label = tick_label(round(10 ** tick, 12)) if log else tick_label(tick)
        parts.append(f'<text x="{frame.left - 5:.1f}" y="{y + 3:.1f}" text-anchor="end" font-size="10">{label}</text>')
    return parts


def markers_svg(frame: Frame, markers: Markers) -> list[str]:
    """A dashed vertical line at each (step, label) marker inside the panel's steps, labelled on the side away
    from the nearer edge."""
    parts = []
    for index, (step, label) in enumerate(sorted(markers)):
        if not frame.x_low <= step <= frame.x_high:
            continue
        x = frame.x(step)
        parts.append(f'<line x1="{x:.1f}" y1="{frame.top:.1f}" x2="{x:.1f}" y2="{frame.top + frame.height:.1f}" '
                     'stroke="#555" stroke-dasharray="4 3"/>')
        right_half = x > frame.left + frame.width / 2
        parts.append(f'<text x="{x - 3 if right_half else x + 3:.1f}" y="{frame.top + 10 + 11 * (index % 3):.1f}" '
                     f'text-anchor="{"end" if right_half else "start"}" font-size="9" fill="#555">'
                     f'{escape(label)} (step {step})</text>')
    return parts


def lines_svg(frame: Frame, series: Series, transform, log: bool) -> list[str]:
    """Each series as polylines in its colour (a restart from an earlier step drawn as its own line), and a
    legend when there are several."""
    parts = []
    for index, (label, (steps, values)) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        for segment in segments(steps, values):
            points = " ".join(f"{frame.x(step):.1f},{frame.y(transform(value)):.1f}"
                              for step, value in segment if math.isfinite(value) and (value > 0 or not log))
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.3"/>')
        if len(series) > 1:
            y = frame.top + 12 + 13 * index
            right = frame.left + frame.width
            parts.append(f'<line x1="{right - 110:.1f}" y1="{y - 3:.1f}" x2="{right - 96:.1f}" y2="{y - 3:.1f}" '
                         f'stroke="{colour}" stroke-width="2"/>')
            parts.append(f'<text x="{right - 92:.1f}" y="{y:.1f}" font-size="10">{escape(label)}</text>')
    return parts


def _digest(panels: list[tuple[str, Series]], markers: Markers) -> str:
    return hashlib.sha1(json.dumps([DRAWING_VERSION, panels, sorted(markers)], sort_keys=True).encode()).hexdigest()


def _shows(path: Path, digest: str) -> bool:
    """Whether the SVG at `path` carries `digest`."""
    try:
        return f"<!-- data {digest} -->".encode() in path.read_bytes()
    except FileNotFoundError:
        return False


def plot_panels(path: Path, panels: list[tuple[str, Series]], markers: Markers = ()) -> Path:
    """Draw each (title, series) panel, two per row, in one SVG at `path`, unless it already shows this data;
    each panel marks the (step, label) stage boundaries of `markers`."""
    digest = _digest(panels, list(markers))
    if _shows(path, digest):
        return path
    columns = min(len(panels), 2)
    rows = (len(panels) + columns - 1) // columns
    width, height = PANEL_WIDTH * columns, PANEL_HEIGHT * rows
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             f"<!-- data {digest} -->",
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, (title, series) in enumerate(panels):
        parts += panel_svg(title, series, PANEL_WIDTH * (index % columns), PANEL_HEIGHT * (index // columns),
                           markers)
    parts.append("</svg>\n")
    data = "\n".join(parts).encode("utf-8")
    atomic_write(path, lambda stream: stream.write(data))
    return path
