"""`lab serve`: the HTML site from a local server (the standard library's `http.server`), read-only.

    GET /<page>.html        the site's pages, rebuilt from the records at most every REBUILD_S seconds
    GET /live/<run>.json    a run's chart data read now (`charts.run_charts`), running attempts' rows included;
                            a run page with a running attempt polls it every 5 s (static/site.js)

Every other method is answered 405 (no request writes anything). It listens on 127.0.0.1 unless `host` says
otherwise.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lab.site import build, charts
from lab.site.frame import finite

REBUILD_S = 5.0
LIVE = re.compile(r"^/live/([^/?#]+)\.json(?:\?.*)?$")


class Pages:
    """The site of a lab being served: its folder, rebuilt when a page is asked and the last build is older
    than REBUILD_S seconds (one build at a time)."""

    def __init__(self, store, out: Path | None = None):
        self.store, self.out = store, out or build.site_folder(store)
        self.lock, self.built = threading.Lock(), float("-inf")
        self.refresh()

    def refresh(self) -> None:
        with self.lock:
            if time.monotonic() - self.built >= REBUILD_S:
                build.build_site(self.store, self.out)
                self.built = time.monotonic()


class Handler(SimpleHTTPRequestHandler):
    """GET and HEAD of the site's files and of /live/<run>.json; 405 for anything else."""

    pages: Pages

    def do_GET(self):  # noqa: N802 (http.server's name)
        live = LIVE.match(self.path)
        if live:
            return self.live(live.group(1))
        if self.path.split("?")[0].endswith((".html", "/")):
            self.pages.refresh()
        return super().do_GET()

    def live(self, run_id: str) -> None:
        store = self.pages.store
        if run_id not in store.readable_run_ids():
            return self.send_error(HTTPStatus.NOT_FOUND, f"no run {run_id}")
        body = json.dumps(finite(charts.run_charts(store, run_id)), allow_nan=False).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self):
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse  # noqa: N815

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature): no line per request
        pass


def make_server(store, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server of the lab's site on `host`:`port` (0: a free port), the site built once before it starts;
    OSError when the port cannot be had. Call `serve_forever()` on it."""
    pages = Pages(store)
    handler = type("LabHandler", (Handler,), {"pages": pages})
    return ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(pages.out)))
