"""Headless Chromium for the site's tests and benchmark, through Playwright with Debian's chromium (Playwright's
own browser download cannot work here): a page opened from a file, every request it makes recorded and any
request to a non-`file:` URL refused, with the dialogs (an `alert` that ran) and script errors it raised."""

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def missing() -> str | None:
    """Why no browser test can run here (no chromium, no Playwright), or None."""
    if not Path(CHROMIUM).exists():
        return "no chromium installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install playwright)"
    return None


@contextlib.contextmanager
def browser_session():
    """A launched headless Chromium (Playwright's Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class View:
    """An open page with what it did: `requests` (every URL asked), `refused` (those not under file:),
    `dialogs` (alert, confirm, prompt texts) and `errors` (uncaught script errors)."""

    page: object
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _route(view: View, route) -> None:
    url = route.request.url
    view.requests.append(url)
    if url.startswith("file://"):
        route.continue_()
    else:
        view.refused.append(url)
        route.abort()


@contextlib.contextmanager
def open_page(browser, path: Path):
    """The page at `path` opened from file:// in a fresh context, charts drawn; on exit it asserts that no
    request went to another URL than a file."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    view = View(page)
    page.route("**/*", lambda route: _route(view, route))
    page.on("dialog", lambda dialog: (view.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: view.errors.append(str(error)))
    try:
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_function("window.labChartsDrawn !== undefined")
        yield view
    finally:
        context.close()
    assert not view.refused, f"requests left the machine: {view.refused}"


def pixels(page, chart: int) -> int:
    """How many pixels of chart `chart`'s canvas (`window.labCharts`, uPlot) are not blank."""
    return page.evaluate("""(index) => {
        const canvas = labCharts[index].ctx.canvas;
        const data = labCharts[index].ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
        return count;
    }""", chart)
