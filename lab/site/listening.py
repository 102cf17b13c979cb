"""The listening pages of the HTML site: a run's samples across its checkpoints, and several runs' samples at
one step, side by side with players (`<audio controls>`), from the same records as the Markdown listening pages
(`lab.pages.listening`). Each file a page plays is copied under the site's folder, so the page opens from
`file://` and asks no other host for anything:

    logs/site/listen/<id>.html                  linked from the run's page and the day's page of each sample
    logs/site/listen/step-<N>.html              the samples two or more runs made at step N
    logs/site/media/<id>/<attempt key>/<file>   the files the pages play
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.pages import listening
from lab.site import frame


def media_path(line: dict, run_id: str) -> str:
    """The site path a sample's file is copied to: media/<id>/<attempt key>/<file name>."""
    return f"media/{run_id}/{line['attempt_key']}/{Path(str(line['file'])).name}"


def copy_media(site: frame.Site, line: dict, run_id: str) -> str | None:
    """Copy a sample's file into the site (when its bytes differ from the copy there); its site path, or None
    where the file is not on this machine."""
    if line.get("path") is None:
        return None
    target = media_path(line, run_id)
    copy = site.out / target
    if not copy.exists() or copy.stat().st_size != line["path"].stat().st_size \
            or copy.read_bytes() != line["path"].read_bytes():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(line["path"], copy)
    return target


def shown(site: frame.Site, run_id: str, lines: list[dict]) -> list[dict]:
    """The samples as a page shows them: settings and figures as text (`listening.shown`), `media` the site
    path of the copied file (None where the file is not here, `where` says why)."""
    return [{**listening.shown(line), "media": copy_media(site, line, run_id)} for line in lines]


def listening_pages(site: frame.Site) -> list[frame.Page]:
    """A page per run with samples (linked from its run page and the days they were made), and a page per step
    at which two or more runs have samples (linked from those runs' pages)."""
    store, pages = site.store, []
    for run_id in store.readable_run_ids():
        lines = listening.run_samples(store, run_id)
        if not lines:
            continue
        steps = [(step, shown(site, run_id, group)) for step, group in listening.by_step(lines)]
        days = tuple(sorted({line["day"] for line in lines if line.get("day")}))
        pages.append(frame.Page(f"listen/{run_id}.html", f"{run_id}: samples", "listen.html.j2",
                                {"run_id": run_id, "steps": steps, "shared": False}, runs=(run_id,), days=days))
    for step, runs in listening.shared_steps(store):
        groups = [(run_id, shown(site, run_id, lines)) for run_id, lines in runs]
        pages.append(frame.Page(f"listen/step-{step}.html", f"Samples at step {step}", "listen.html.j2",
                                {"step": step, "steps": groups, "shared": True},
                                runs=tuple(run_id for run_id, _ in runs)))
    return pages


frame.register(frame.PageKind("listening", listening_pages, label="Listening"))
