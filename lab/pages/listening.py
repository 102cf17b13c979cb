"""The listening pages: a run's samples across its checkpoints (steps), and several runs' samples at one step,
from the attempts' samples.jsonl (`lab.records.samples`). Markdown here; the HTML ones are `lab.site.listening`.

    logs/listen/<id>.md        a run's samples by step: source, settings, seed, length, level, a link to the file
    logs/listen/step-<N>.md    the samples that two or more runs made at step N, run beside run
"""

from __future__ import annotations

from pathlib import Path

from lab.pages.context import render
from lab.records import samples
from lab.records.store import Store

FOLDER = "listen"
SETTINGS_SHOWN = ("seconds", "temperature", "tags", "text", "cfg_scale")  # first in a sample's settings line


def run_samples(store: Store, run_id: str) -> list[dict]:
    """Every sample line of the run's attempts, by step then time, each with `attempt` (Test number),
    `attempt_key`, `path` (the file on this machine, or None) and `day` (ISO, in the lab's zone)."""
    found = []
    for attempt in store.attempts.of(run_id):
        folder = store.attempt_dir(run_id, attempt["number"])
        for line in samples.of_attempt(folder):
            found.append({**line, "attempt": attempt["number"], "attempt_key": folder.name,
                          "path": samples.file_of(store.root, folder, line),
                          "day": store.day(line["time"]).isoformat() if line.get("time") else None})
    return sorted(found, key=lambda line: (line.get("step") or 0, line.get("time") or ""))


def by_step(lines: list[dict]) -> list[tuple[int | None, list[dict]]]:
    """`lines` grouped by their step, in step order: [(step, lines)]."""
    groups: dict[int | None, list[dict]] = {}
    for line in lines:
        groups.setdefault(line.get("step"), []).append(line)
    return list(groups.items())


def shared_steps(store: Store) -> list[tuple[int, list[tuple[str, list[dict]]]]]:
    """The steps at which two or more runs have samples: [(step, [(run id, its samples at that step)])]."""
    at: dict[int, list[tuple[str, list[dict]]]] = {}
    for run_id in store.readable_run_ids():
        for step, lines in by_step(run_samples(store, run_id)):
            if isinstance(step, int):
                at.setdefault(step, []).append((run_id, lines))
    return sorted((step, runs) for step, runs in at.items() if len(runs) > 1)


def settings_text(line: dict) -> str:
    """A sample's settings in one line, the common ones first: 'seconds 4, temperature 0.9, seed 7'."""
    settings = dict(line.get("settings") or {})
    settings.pop("seed", None)
    keys = [key for key in SETTINGS_SHOWN if key in settings] + sorted(k for k in settings if k not in SETTINGS_SHOWN)
    words = [f"{key} {settings[key]}" for key in keys]
    if line.get("seed") is not None:
        words.append(f"seed {line['seed']}")
    return ", ".join(words) or "-"


def where_text(line: dict) -> str | None:
    """Why a sample cannot be played here: a large one kept on the machine that made it (its digest and size)."""
    if line.get("path"):
        return None
    digest = str(line.get("sha256", ""))[:12]
    return f"kept on the machine that made it (sha256 {digest}..., {line.get('bytes', '?')} bytes)"


def page_path(store: Store, name: str) -> Path:
    """logs/listen/<name>.md."""
    return store.logs_dir / FOLDER / f"{name}.md"


def relative(path: Path | None, page: Path) -> str | None:
    """The link from Markdown page `page` to file `path` (posix), or None for no file."""
    import os

    return None if path is None else Path(os.path.relpath(path, page.parent)).as_posix()


def run_page(store: Store, run_id: str) -> Path | None:
    """Write logs/listen/<id>.md (None, and nothing written, for a run without samples)."""
    lines = run_samples(store, run_id)
    if not lines:
        return None
    path = page_path(store, run_id)
    steps = [(step, [shown(line, path) for line in group]) for step, group in by_step(lines)]
    return render(store, "listen.md.j2", path, run_id=run_id, steps=steps, shared=False)


def step_page(store: Store, step: int, runs: list[tuple[str, list[dict]]]) -> Path:
    """Write logs/listen/step-<N>.md: the samples each run made at `step`."""
    path = page_path(store, f"step-{step}")
    groups = [(run_id, [shown(line, path) for line in lines]) for run_id, lines in runs]
    return render(store, "listen.md.j2", path, run_id=None, step=step, steps=groups, shared=True)


def shown(line: dict, page: Path | None = None) -> dict:
    """What a page shows of a sample: the line with `settings_text`, `where`, `link` (from Markdown page `page`,
    None without one), and its
    statistics as text (`figures`: length, RMS, peak, silence; '-' where the line has none)."""
    return {"checkpoint": None, "name": "sample", "source": "-", **line, "settings_text": settings_text(line),
            "where": where_text(line), "link": relative(line["path"], page) if page else None, "figures": figures(line)}


def figures(line: dict) -> dict[str, str]:
    """A sample's length, RMS, peak and share of silence as text: {"length": "4.00 s", "rms": "0.1234", ...}."""
    def number(key: str, text: str) -> str:
        value = line.get(key)
        return text.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"

    return {"length": number("seconds", "{:.2f} s"), "rms": number("rms", "{:.4f}"), "peak": number("peak", "{:.4f}"),
            "silence": number("silence", "{:.0%}")}


def render_all(store: Store) -> list[Path]:
    """Every listening page: one per run with samples, one per step shared by two or more runs."""
    written = [path for run_id in store.readable_run_ids() if (path := run_page(store, run_id))]
    return written + [step_page(store, step, runs) for step, runs in shared_steps(store)]
