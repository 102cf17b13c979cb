"""The HTML site's chart of 100 runs x 10,000 points each (one panel, as a group page draws it), opened from
file:// in headless Chromium (Debian's chromium through Playwright): the time from navigation until uPlot has
drawn it, the median of 3 opens, once with every run on the same steps and once with each run's steps shifted
(the browser then thins each series to its buckets' lowest and highest points). Target: under 2 s. Skipped,
saying why, where no browser is installed."""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import site_browser  # noqa: E402
from lab.site import build  # noqa: E402
from lab.site.charts import chart_data  # noqa: E402
from lab.site.frame import Page, Site, render_page  # noqa: E402
from sizes import pick  # noqa: E402

RUNS, POINTS = pick(full=100, tiny=3), pick(full=10_000, tiny=100)
TARGET_S = 2.0


class Lab:
    root = Path(tempfile.gettempdir()) / "no-lab-templates"


def write_page(out: Path, shifted: bool) -> Path:
    """A group page of RUNS x POINTS under `out`; with `shifted`, run k logs steps k, k + 1, ... (x differ)."""
    series = [{"label": f"run_{run:03d} train/loss", "arm": f"run_{run:03d}", "metric": "train/loss",
               "step": [step + (run if shifted else 0) for step in range(POINTS)],
               "time": [1.8e9 + run * 1e5 + step * 0.5 for step in range(POINTS)],
               "value": [round(1 + math.exp(-step / 2000) * (1 + run / RUNS) + 0.01 * math.sin(step), 5)
                         for step in range(POINTS)]} for run in range(RUNS)]
    page = Page("groups/big.html", "Group: big", "runs.html.j2",
                {"note": None, "facts": [], "rows": [], "chart_data": chart_data(series)})
    site = Site(Lab(), out)
    path = render_page(site, page, [("Index", "index.html")], [])
    build.copy_static(site)
    return path


def main() -> None:
    reason = site_browser.missing()
    if reason:
        print(f"site chart: skipped ({reason})")
        return
    for shifted in (False, True):
        with tempfile.TemporaryDirectory() as folder:
            path = write_page(Path(folder), shifted)
            size_mb = path.stat().st_size / 1e6
            times = []
            with site_browser.browser_session() as browser:
                for _ in range(3):
                    started = time.perf_counter()
                    with site_browser.open_page(browser, path) as view:
                        assert view.page.evaluate("labCharts[0].series.length") == RUNS + 1
                        times.append(time.perf_counter() - started)
        opened = sorted(times)[1]
        print(f"site chart: {RUNS} runs x {POINTS} points, {'shifted' if shifted else 'the same'} steps "
              f"({size_mb:.1f} MB page) drawn in {opened:.2f} s from file:// (target < {TARGET_S} s) "
              f"{'OK' if opened < TARGET_S else 'SLOW'}")

if __name__ == "__main__":
    main()
