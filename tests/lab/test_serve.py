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
        for method in ("POST", "PUT", "DELETE"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"{base}/index.html", data=b"x", method=method))
            assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD"
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"{base}/live/x_999.json")
        assert missing.value.code == 404
    assert api.serve(port=0, root=two_runs.repo).server_address[0] == "127.0.0.1"


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
