"""`lab serve`: the HTML site from a local server (the standard library's `http.server`), read-only.

    GET /<page>.html        the site's pages, rebuilt from the records at most every REBUILD_S seconds
    GET /live/<run>.json    a run's chart data read now (`charts.run_charts`), running attempts' rows included;
                            a run page with a running attempt polls it every 5 s (static/site.js),
                            stopping when it ends or a poll fails
    GET /static/served.js   `window.labServed = true` (the site's own file says false: no page polls elsewhere)

HEAD answers as GET without the body; every other method is answered 405 (no request writes anything). It
listens on 127.0.0.1 unless `host` says otherwise, and there answers only requests whose Host header names
127.0.0.1, localhost or [::1] with its port.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from lab.site import build, charts
from lab.site.frame import finite

REBUILD_S = 5.0
LIVE = re.compile(r"^/live/([^/?#]+)\.json(?:\?.*)?$")


class Pages:
    """The site of a lab being served: its folder, rebuilt when a page is asked and the last build is older
    than REBUILD_S seconds (one build at a time, the others served the pages as they are)."""

    def __init__(self, store):
        self.store, self.out = store, build.site_folder(store)
        self.lock, self.built = threading.Lock(), float("-inf")
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the site unless the last build is younger than REBUILD_S seconds; while another request's
        build runs, the pages already built are served (no request waits on another's build)."""
        if time.monotonic() - self.built < REBUILD_S or not self.lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self.built >= REBUILD_S:
                build.build_site(self.store, self.out)
                self.built = time.monotonic()
        finally:
            self.lock.release()


SERVED = b"window.labServed = true;  // from lab serve: a run's page polls its running attempt's rows\n"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Handler(SimpleHTTPRequestHandler):
    """GET and HEAD of the site's files, of /live/<run>.json and of static/served.js (which says the page is
    served by `lab serve`); 405 for every other method; 403 for a Host header that names another host than the
    one listened on (a DNS-rebinding page cannot read the lab)."""

    pages: Pages
    hosts: frozenset[str]

    def do_GET(self):  # noqa: N802 (http.server's name)
        """A page (rebuilt first when the last build is older than REBUILD_S), a file, or live data."""
        self.answer(body=True)

    def do_HEAD(self):  # noqa: N802 (http.server's name)
        """What GET answers, without the body."""
        self.answer(body=False)

    def answer(self, body: bool) -> None:
        """Answer a GET (`body`) or a HEAD of `self.path`."""
        if self.hosts and self.headers.get("Host", "").lower() not in self.hosts:
            return self.send_error(HTTPStatus.FORBIDDEN, "unknown host")
        path = self.path.split("?")[0].split("#")[0]
        live = LIVE.match(path)
        if live:
            return self.live(urllib.parse.unquote(live.group(1)), body)
        if path == "/static/served.js":
            return self.send_bytes(SERVED, "text/javascript", body)
        if path.endswith((".html", "/")):
            self.pages.refresh()
        return super().do_GET() if body else super().do_HEAD()

    def live(self, run_id: str, body: bool) -> None:
        """A run's chart data read now (JSON, `charts.run_charts`); 404 for no such readable run."""
        store = self.pages.store
        if run_id not in store.readable_run_ids():
            return self.send_error(HTTPStatus.NOT_FOUND, f"no run {run_id}")
        data = json.dumps(finite(charts.run_charts(store, run_id)), allow_nan=False).encode()
        self.send_bytes(data, "application/json", body)

    def send_bytes(self, data: bytes, kind: str, body: bool) -> None:
        """Answer 200 with `data` of content type `kind`, not cached (with no body for a HEAD)."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def refuse(self):
        """405, allowing GET and HEAD: no request writes anything."""
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def __getattr__(self, name: str):
        """Every method but GET and HEAD (POST, TRACE, PROPFIND, CONNECT, ...) is refused with 405."""
        if name.startswith("do_"):
            return self.refuse
        raise AttributeError(name)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        """No line per request."""


def accepted_hosts(host: str, port: int) -> frozenset[str]:
    """The Host headers a server on loopback `host`:`port` accepts (its loopback names with the port); empty
    (any) for a server listening on the network, whose names the lab cannot know."""
    if host not in LOOPBACK:
        return frozenset()
    return frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))


class Server(ThreadingHTTPServer):
    """http.server's threading server, on IPv6 for an IPv6 address (`::1`)."""

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


def make_server(store, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server of the lab's site on `host`:`port` (0: a free port), the site built once before it starts;
    OSError when the port cannot be had. Call `serve_forever()` on it."""
    pages = Pages(store)
    handler = type("LabHandler", (Handler,), {"pages": pages, "hosts": frozenset()})
    server = Server((host, port), functools.partial(handler, directory=str(pages.out)))
    handler.hosts = accepted_hosts(host, server.server_address[1])
    return server
