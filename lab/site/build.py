"""`lab site` (and `lab render --html`): the lab's pages in HTML under logs/site/, from the same records and the
same functions as the Markdown pages (`lab.pages.context.run_view`, `lab.runs.table.frame`, the comparisons
index), with interactive charts (`lab.site.charts`, drawn by the vendored uPlot) and tables that sort.

    logs/site/index.html              days, runs (a sortable table), groups, baselines, ablations
    logs/site/days/<day>.html         a daily page
    logs/site/runs/<id>.html          a run: hypothesis, attempts, notes, config, charts of every attempt
    logs/site/groups/<name>.html      a group's runs, their charts overlaid (likewise baselines/, ablations/)
    logs/site/static/                 uPlot (MIT, its LICENSE beside it), site.js, site.css

The same records give the same bytes (no build time on any page); a page is rewritten only when its bytes
change. Nothing on a page asks another host for anything: it opens from a plain folder (`file://`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.site import charts
from lab.site.frame import KINDS, STATIC, Page, PageKind, Site, register, render_page

INDEX = "index.html"


def site_folder(store) -> Path:
    """Where the lab's HTML pages go: logs/site/ (git-ignored, like the other pages)."""
    return store.logs_dir / "site"


def build_site(store, out: Path | None = None) -> list[Path]:
    """Write every page of every registered kind, the index and the static files under `out` (default:
    `site_folder`); returns the pages' paths, the index first. Files of pages that no longer exist are removed."""
    site = Site(store, out or site_folder(store))
    by_kind = [(kind, kind.pages(site)) for kind in KINDS.values()]
    pages = [page for _, kind_pages in by_kind for page in kind_pages]
    sections = [(kind.name, kind.label, kind_pages) for kind, kind_pages in by_kind if kind.label and kind_pages]
    columns, rows = runs_table(store)
    index = Page(INDEX, "Lab", "index.html.j2", {"sections": sections, "columns": columns, "rows": rows})
    navigation = [("Index", INDEX)] + [(label, f"{INDEX}#{name}") for name, label, _ in sections]
    written = [render_page(site, page, navigation, related(page, pages)) for page in [index, *pages]]
    copy_static(site.out)
    remove_stale(site.out, {path.relative_to(site.out).as_posix() for path in written})
    return written


def related(page: Page, pages: list[Page]) -> list[Page]:
    """The other pages about the run or day `page` is the page of (a run's page is `runs/<id>.html`, a day's
    `days/<day>.html`), in build order."""
    folder, _, name = page.path.rpartition("/")
    key = name.removesuffix(".html")
    return [other for other in pages if other is not page and
            ((folder == "runs" and key in other.runs) or (folder == "days" and key in other.days))]


def copy_static(out: Path) -> None:
    """Copy the site's static files into `out/static` (only those whose bytes differ)."""
    target = out / "static"
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(STATIC.iterdir()):
        copy = target / source.name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)


def remove_stale(out: Path, kept: set[str]) -> None:
    """Delete the HTML files under `out` that no page of this build wrote (a removed or renamed run's)."""
    for path in sorted(out.rglob("*.html")):
        if path.relative_to(out).as_posix() not in kept:
            path.unlink()


# -- the built-in kinds -----------------------------------------------------------------------------------


def day_pages(site: Site) -> list[Page]:
    """A page per day with activity: its overview, the runs active that day, insights and commits."""
    from lab.launcher import vcs
    from lab.pages.context import active_days, run_view

    store, found = site.store, []
    for day in active_days(store):
        events = {rid: [e for e in store.events.of(rid) if store.day(e["time"]) == day]
                  for rid in store.readable_run_ids()}
        first = {rid: min(e["time"] for e in on_day) for rid, on_day in events.items() if on_day}
        journal = [e for e in store.events.journal() if store.day(e["time"]) == day]
        context = {"day": day.isoformat(),
                   "overview": [e["text"] for e in journal if e["kind"] == "overview"],
                   "insights": [e["text"] for e in journal if e["kind"] == "insight"],
                   "experiments": [run_view(store, rid, day) for rid in sorted(first, key=lambda r: (first[r], r))],
                   "commits": vcs.commits_on(store.root, day, store.zone)}
        found.append(Page(f"days/{day.isoformat()}.html", f"Research Log: {day.isoformat()}", "day.html.j2",
                          context, runs=tuple(sorted(first)), days=(day.isoformat(),)))
    return found


def run_pages(site: Site) -> list[Page]:
    """A page per readable run: what the daily page says of it over all days, the config its headline attempt ran
    with and the charts of every attempt."""
    from lab.pages.context import run_view
    from lab.pages.results import ran_config
    from lab.records import config as config_tools

    store, found = site.store, []
    for run_id in store.readable_run_ids():
        view = run_view(store, run_id)
        days = sorted({store.day(e["time"]).isoformat() for e in store.events.of(run_id)})
        config = sorted(config_tools.flatten(ran_config(store, run_id)).items())
        context = {"x": view, "config": config, "chart_data": charts.run_charts(store, run_id), "days": days}
        found.append(Page(f"runs/{run_id}.html", f"{run_id}: {view['title']}", "run.html.j2", context,
                          runs=(run_id,), days=tuple(days)))
    return found


def compared(site: Site, kind: str, name: str, title: str, arms: list[tuple[str, int | None]],
             note: str | None = None) -> Page:
    """A page comparing runs (a group's, a baseline's, an ablation's arms): their table and overlaid charts."""
    from lab.pages.context import display_title
    from lab.pages.results import run_result

    store = site.store
    rows = [{"id": rid, "attempt": number, "title": display_title(store.runs.load(rid)),
             "status": store.attempts.run_status(rid), "result": run_result(store, rid)} for rid, number in arms]
    context = {"kind": kind, "name": name, "note": note, "rows": rows, "chart_data": charts.runs_charts(store, arms)}
    return Page(f"{kind}s/{safe_name(name)}.html", title, "runs.html.j2", context,
                runs=tuple(dict.fromkeys(rid for rid, _ in arms)))


def safe_name(name: str) -> str:
    """A page file name from a group's or baseline's name: characters outside [A-Za-z0-9_.-] become `_`."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "_"


def group_pages(site: Site) -> list[Page]:
    """A page per group of runs, led by the run they branch from (`comparisons.group_arms`)."""
    from lab.pages.comparisons import group_arms

    groups = sorted({group for rid in site.store.readable_run_ids()
                     if (group := site.store.runs.load(rid).get("group"))})
    pages = []
    for group in groups:
        arms, reference = group_arms(site.store, group)
        pages.append(compared(site, "group", group, f"Group: {group}", [(rid, None) for rid in arms], reference))
    return pages


def baseline_pages(site: Site) -> list[Page]:
    """A page per baseline the runs name: its provenance and the runs attached to it."""
    from lab.pages.changelogs import baselines_in_use

    store, pages = site.store, []
    for name in baselines_in_use(store):
        runs = [rid for rid in store.readable_run_ids() if store.runs.load(rid).get("baseline") == name]
        snapshot = store.baselines.get(name) or {}
        note = "; ".join(f"{key}: {snapshot[key]}" for key in ("repo", "reference") if snapshot.get(key)) or None
        pages.append(compared(site, "baseline", name, f"Baseline: {name}", [(rid, None) for rid in runs], note))
    return pages


def ablation_pages(site: Site) -> list[Page]:
    """A page per comparison in the comparisons index (`lab compare`) whose runs can all be read."""
    from lab.pages.comparisons import comparisons

    readable, pages = set(site.store.readable_run_ids()), []
    for name, specs in sorted(comparisons(site.store).items()):
        arms = [(rid, int(number) if number.isdigit() else None)
                for rid, _, number in (spec.partition(":") for spec in specs)]
        if all(rid in readable for rid, _ in arms):
            pages.append(compared(site, "ablation", name, f"Ablation: {name}", arms))
    return pages


def runs_table(store) -> tuple[list[str], list[dict]]:
    """(columns, rows) of the index's table of runs: `lab runs`' listing and the verdict (`lab.runs.table`)."""
    from lab.runs import table

    frame = table.frame(store, config=False, measured=True)
    columns = [*table.LISTED, "verdict"]
    return columns, [{column: table.shown(row[column]) for column in columns} for _, row in frame.iterrows()]


for built_in in (PageKind("day", day_pages, "Days"), PageKind("run", run_pages, "Runs"),
                 PageKind("group", group_pages, "Groups"), PageKind("baseline", baseline_pages, "Baselines"),
                 PageKind("ablation", ablation_pages, "Ablations")):
    register(built_in)

from lab.site import listening  # noqa: E402,F401  (registers the listening pages after the built-in kinds)
