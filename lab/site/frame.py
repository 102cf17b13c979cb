"""The HTML site's frame: pages, the kinds of page, the jinja2 environment (autoescaped), JSON for `<script>`.

A page kind is a name and a function that lists the pages of that kind in a lab (`register`); the site
(`lab.site.build`) asks every registered kind for its pages, links each run's and each day's page to the other
pages about that run or day, and renders them all inside `frame.html.j2` (head, navigation, the shared scripts).
A kind registered from another module (the listening page) needs nothing else from the site:

    from lab.site import frame

    def listening_pages(site: frame.Site) -> list[frame.Page]:
        return [frame.Page(f"listen/{rid}.html", f"{rid}: samples", "listen.html.j2", {"run": rid}, runs=(rid,))
                for rid in site.store.readable_run_ids()]

    frame.register(frame.PageKind("listening", listening_pages, label="Listening"))

Every text on a page goes through jinja2's autoescape (`&`, `<`, `>`, `"`, `'` as entities); data for a chart
goes into `<script type="application/json">` through the `script_json` filter, which also escapes `<`, `>`, `&`
and the two JavaScript line separators, so no text can close the script element or open another one.
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.records import config as config_tools
from lab.records import metrics

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True)
class Page:
    """One HTML page: `path` relative to the site's folder (posix, like `runs/x_001.html`), its `title`, the
    template that draws it and the template's `context`; `runs` and `days` (ISO dates) name what it is about, so
    those runs' and days' pages link to it."""

    path: str
    title: str
    template: str
    context: dict = field(default_factory=dict, compare=False)
    runs: tuple[str, ...] = ()
    days: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageKind:
    """A kind of page: `name` (unique), `pages(site)` listing the lab's pages of this kind, and `label`, the
    heading of its list on the index page (None: not listed there)."""

    name: str
    pages: Callable[["Site"], list[Page]]
    label: str | None = None


KINDS: dict[str, PageKind] = {}


def register(kind: PageKind) -> PageKind:
    """Add (or replace, by name) a page kind of the site; kinds are built in the order they were registered."""
    KINDS[kind.name] = kind
    return kind


@dataclass
class Site:
    """The site being built: the lab's `store` and the folder `out` the pages are written under; `files` the
    site paths of the other files the build wrote there (`copy`), which the manifest lists beside the pages."""

    store: Any
    out: Path
    files: set[str] = field(default_factory=set)

    def copy(self, source: Path, site_path: str) -> str:
        """Copy the file `source` to `site_path` under the site (posix, like `media/x_001/1.flac`), only when
        its bytes differ, and list it as the site's own (kept by the next build while still copied, removed
        once not, published by `lab site --branch`); returns `site_path`, for `link`."""
        import shutil

        target = self.out / site_path
        if not target.exists() or target.read_bytes() != Path(source).read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        self.files.add(site_path)
        return site_path


def href(from_page: str, to_page: str) -> str:
    """The relative link from page `from_page` to `to_page` (both site paths), which works from `file://`."""
    return posixpath.relpath(to_page, posixpath.dirname(from_page) or ".")


def script_json(value: Any):
    """`value` as JSON (keys sorted, so the same records give the same bytes) safe inside a `<script>` element:
    `<`, `>`, `&`, U+2028 and U+2029 as `\\u` escapes. Non-finite numbers become null."""
    import markupsafe

    text = json.dumps(finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return markupsafe.Markup(text)


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (nested in lists and dicts) replaced by None."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


@functools.lru_cache(maxsize=8)
def environment(root: Path):
    """The jinja2 environment of the site of the lab at `root`: the lab's own `templates/` first (a lab may
    override any page), then the site's; autoescape on for every template."""
    import jinja2

    loader = jinja2.FileSystemLoader([str(root / "templates"), str(TEMPLATES)])
    env = jinja2.Environment(loader=loader, autoescape=True, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["script_json"] = script_json
    env.filters["num"] = metrics.format_number
    env.filters["value"] = config_tools.format_value
    return env


def render_page(site: Site, page: Page, navigation: list[tuple[str, str]], related: list[Page]) -> Path:
    """Write `page` under the site's folder (only when its bytes changed) and return its path. `navigation` is
    the (label, site path) of the top bar, `related` the other pages about this page's run or day."""
    from lab.records.files import write_text

    def link(to_page: str) -> str:
        """The relative href from this page to the site path `to_page`."""
        return href(page.path, to_page)

    context = {**page.context, "page": page, "link": link, "navigation": navigation, "related": related,
               "static": link("static")}
    text = environment(site.store.root).get_template(page.template).render(**context).rstrip("\n") + "\n"
    path = site.out / page.path
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path
