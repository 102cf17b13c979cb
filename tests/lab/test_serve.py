"""`lab serve`: the site from 127.0.0.1, read-only, a running attempt's rows refreshed as they arrive."""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from lab import api
from lab.site.serve import REBUILD_S

REBUILD_PAUSE = REBUILD_S + 0.2  # the page asked next is rebuilt from the records

WAITING = ("import os, time\n"
           "from lab import tracker\n"
           "for step in range(1, 6):\n"
           "    tracker.log(step, **{'train/loss': 1.0 / step})\n"
           "while not os.path.exists('go'):\n"
           "    time.sleep(0.05)\n")


@contextlib.contextmanager
def served(root):
    server = api.serve(port=0, root=root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read()


@pytest.mark.light
def test_serve_answers_pages_on_loopback_and_refuses_every_write(two_runs):
    with served(two_runs.repo) as base:
        status, page = get(f"{base}/runs/x_001.html")
        assert status == 200 and b"<h1>x_001: h x_001</h1>" in page
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"{base}/index.html", data=b"x", method=method))
            assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD", method
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"{base}/live/x_999.json")
        assert missing.value.code == 404
        head = urllib.request.urlopen(urllib.request.Request(f"{base}/live/x_001.json", method="HEAD"), timeout=10)
        assert head.status == 200 and head.read() == b"" and int(head.headers["Content-Length"]) > 0
        assert get(f"{base}/static/served.js")[1].startswith(b"window.labServed = true;")
        with pytest.raises(urllib.error.HTTPError) as rebound:  # a DNS-rebinding page's request
            urllib.request.urlopen(urllib.request.Request(f"{base}/index.html",
                                                          headers={"Host": "evil.example:" + base.rsplit(":", 1)[1]}))
        assert rebound.value.code == 403
    own = two_runs.repo / "logs" / "site" / "static" / "served.js"
    assert own.read_text().startswith("window.labServed = false;")
    server = api.serve(port=0, root=two_runs.repo)
    assert server.server_address[0] == "127.0.0.1"
    server.server_close()


@pytest.mark.light
def test_a_port_in_use_is_one_error_line(two_runs, capsys):
    from lab.cli import main

    with served(two_runs.repo) as base:
        port = base.rsplit(":", 1)[1]
        os.chdir(two_runs.repo)
        assert main(["serve", "--port", port]) == 2
    assert capsys.readouterr().err.startswith(f"lab: error: cannot serve on 127.0.0.1:{port}")


@pytest.mark.light
def test_a_running_attempt_s_rows_arrive_on_its_live_endpoint(lab, repo):
    lab("new-run", "x_001", "--hypothesis", "h")
    child = subprocess.Popen([sys.executable, "-m", "lab", "launch", "x_001", "--no-commit", "--",
                              sys.executable, "-c", WAITING], cwd=repo, stdout=subprocess.DEVNULL)
    try:
        with served(repo) as base:
            deadline, data = time.monotonic() + 60, {}
            while time.monotonic() < deadline and len((data.get("series") or [{}])[0].get("step", [])) < 5:
                time.sleep(0.2)
                data = json.loads(get(f"{base}/live/x_001.json")[1])
            assert data["live"] is True and data["series"][0]["step"] == [1, 2, 3, 4, 5]
            assert b'"run":"x_001"' in get(f"{base}/runs/x_001.html")[1]  # what the page polls
            (repo / "go").write_text("")
            assert child.wait(timeout=60) == 0
            assert json.loads(get(f"{base}/live/x_001.json")[1])["live"] is False
    finally:
        child.kill()


def until(page, expression: str, seconds: float = 30) -> None:
    """Wait until `expression` is true in `page` (polled from here: the pages' CSP refuses Playwright's own)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(100)


PHASED = ("import os, time\n"
          "from lab import tracker\n"
          "def wait(name):\n"
          "    while not os.path.exists(name):\n"
          "        time.sleep(0.05)\n"
          "for step in range(1, 11):\n"
          "    tracker.log(step, **{'train/loss': 1.0 / step, 'val/loss': 2.0 / step})\n"
          "wait('more')\n"
          "for step in range(11, 21):\n"
          "    tracker.log(step, **{'train/loss': 1.0 / step, 'val/loss': 2.0 / step})\n"
          "wait('go')\n")


def test_a_live_page_keeps_its_zoom_and_hidden_series_and_stops_polling_when_the_attempt_ends(lab, repo, browser):
    lab("new-run", "x_001", "--hypothesis", "h")
    child = subprocess.Popen([sys.executable, "-m", "lab", "launch", "x_001", "--no-commit", "--",
                              sys.executable, "-c", PHASED], cwd=repo, stdout=subprocess.DEVNULL)
    try:
        with served(repo) as base:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len((json.loads(get(f"{base}/live/x_001.json")[1])
                                                       ["series"] or [{"step": []}])[0]["step"]) < 10:
                time.sleep(0.2)
            time.sleep(REBUILD_PAUSE)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page, asked = context.new_page(), []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(f"{base}/runs/x_001.html")
            until(page, "window.labChartsDrawn !== undefined && labCharts.length === 1")
            page.evaluate("labCharts[0].setScale('x', {min: 2, max: 6})")
            page.locator(".u-legend .u-series").nth(2).click()  # hide Test 1 (its train/loss and val/loss)
            (repo / "more").write_text("")
            until(page, "labCharts[0].data[0].length === 20")
            assert page.evaluate("[labCharts[0].scales.x.min, labCharts[0].scales.x.max]") == [2, 6]
            assert page.evaluate("labCharts[0].series.map(s => s.show)") == [True, False, False]
            (repo / "go").write_text("")
            assert child.wait(timeout=60) == 0
            until(page, "document.querySelector('p.live').textContent.startsWith('finished')")
            polls = [url for url in asked if "/live/" in url]
            page.wait_for_timeout(6_000)
            assert [url for url in asked if "/live/" in url] == polls and polls
            assert set(polls) == {f"{base}/live/x_001.json"}
            context.close()
    finally:
        child.kill()


def test_a_page_polls_nothing_from_a_plain_http_server_and_stops_when_a_poll_fails(lab, repo, browser):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    lab("new-run", "x_001", "--hypothesis", "h")
    child = subprocess.Popen([sys.executable, "-m", "lab", "launch", "x_001", "--no-commit", "--",
                              sys.executable, "-c", WAITING], cwd=repo, stdout=subprocess.DEVNULL)
    try:
        with served(repo) as base:  # the page is built while the attempt runs: it is live
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not json.loads(get(f"{base}/live/x_001.json")[1])["series"]:
                time.sleep(0.2)
            time.sleep(REBUILD_PAUSE)
            context = browser.new_context()
            page, asked = context.new_page(), []
            page.on("request", lambda request: asked.append(request.url))
            page.route("**/live/**", lambda route: route.abort())  # the server stops answering
            page.goto(f"{base}/runs/x_001.html")
            until(page, "document.querySelector('p.live') !== null")
            page.wait_for_timeout(11_000)
            assert len([url for url in asked if "/live/" in url]) == 1
            assert page.inner_text("p.live").startswith("no longer refreshed")
            context.close()
        plain = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
            SimpleHTTPRequestHandler, directory=str(repo / "logs" / "site")))
        threading.Thread(target=plain.serve_forever, daemon=True).start()
        try:
            context = browser.new_context()
            page, asked = context.new_page(), []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(f"http://127.0.0.1:{plain.server_address[1]}/runs/x_001.html")
            until(page, "window.labChartsDrawn !== undefined")
            page.wait_for_timeout(6_000)
            assert b'"live":true' in (repo / "logs" / "site" / "runs" / "x_001.html").read_bytes()
            assert not [url for url in asked if "/live/" in url] and page.locator("p.live").count() == 0
            context.close()
        finally:
            plain.shutdown()
            plain.server_close()
    finally:
        (repo / "go").write_text("")
        child.wait(timeout=60)


@pytest.mark.light
def test_serve_listens_on_ipv6_loopback(two_runs):
    server = api.serve(host="::1", port=0, root=two_runs.repo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, page = get(f"http://[::1]:{server.server_address[1]}/runs/x_001.html")
        assert status == 200 and b"<h1>x_001: h x_001</h1>" in page
    finally:
        server.shutdown()
        server.server_close()
