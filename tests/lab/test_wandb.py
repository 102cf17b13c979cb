"""W&B: links chosen before the script starts, offline runs and their copy, servers that cannot be reached or stall
(never holding the script), `lab sync`, and one W&B run per attempt."""

import http.server
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from lab_testing import lab_env

from lab.records.store import Store

pytestmark = pytest.mark.wandb  # every case here is about the W&B copy of a run



def attempt(repo: Path, run_id: str, number: int = 1) -> tuple[dict, list[dict], dict, dict]:
    """(attempt.json, metric rows, config.json, summary.json) of an attempt."""
    folder = Store(repo).attempt_dir(run_id, number)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()] \
        if (folder / "metrics.jsonl").exists() else []
    read = lambda name: json.loads((folder / name).read_text()) if (folder / name).exists() else {}  # noqa: E731
    return read("attempt.json"), rows, read("config.json"), read("summary.json")


def test_a_script_that_never_starts_wandb_gets_no_link(lab, repo):
    (repo / "quiet.py").write_text("print('no W&B here')\n")
    lab("new-run", "wb_002", "--hypothesis", "h")
    lab("launch", "wb_002", "--no-commit", "--", sys.executable, "quiet.py")
    assert attempt(repo, "wb_002")[0]["wandb"] is None
    assert "wandb.ai" not in Path(lab("log").stdout.strip()).read_text()


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


STEPS = ("import time\nfrom lab import tracker\nstart = time.monotonic()\ntracker.log(0, loss=1.0)\n"
         "print('first log', round(time.monotonic() - start, 2), flush=True)\n"
         "for step in range(1, 50):\n    tracker.log(step, loss=1.0 / step)\n")


def launch_online(lab, run_id: str, server: str, **env: str):
    lab("new-run", run_id, "--hypothesis", "h")
    start = time.monotonic()
    environment = {**lab_env(WANDB_BASE_URL=server, WANDB_API_KEY="0" * 40, **env), "WANDB_MODE": "online"}
    result = lab("launch", run_id, "--no-commit", "--", sys.executable, "-c", STEPS, timeout=120, env=environment)
    return result, time.monotonic() - start


def metric_rows(lab, run_id: str) -> list[dict]:
    path = attempt_folder(lab, run_id) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_unreachable_wandb_server_costs_one_warning_and_the_link_stays_pending(lab):
    result, seconds = launch_online(lab, "w_001", f"http://127.0.0.1:{free_port()}")
    assert float(result.stdout.split("first log ")[1].split()[0]) < 1 and seconds < 60
    warnings = [line for line in result.stdout.splitlines() if line.startswith("lab: warning")]
    assert len(warnings) == 1 and "cannot reach the W&B server" in warnings[0] and "offline" in warnings[0]
    attempt = attempt_of(lab, "w_001")
    assert attempt["status"] == "finished" and attempt["wandb"]["synced"] is False
    assert len(metric_rows(lab, "w_001")) == 50
    assert list((lab.repo / "artefacts" / "wandb" / "wandb").glob(f"offline-run-*-{attempt['wandb']['run_id']}"))
    assert "(pending sync)" in lab("show", "w_001").stdout


def test_a_wandb_server_that_never_answers_does_not_hold_the_script(lab):
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        result, seconds = launch_online(lab, "w_002", f"http://127.0.0.1:{server.getsockname()[1]}")
    assert float(result.stdout.split("first log ")[1].split()[0]) < 1 and seconds < 90
    assert result.stdout.count("lab: warning") == 1 and "cannot reach the W&B server" in result.stdout
    attempt = attempt_of(lab, "w_002")
    assert attempt["status"] == "finished" and attempt["wandb"]["synced"] is False
    assert len(metric_rows(lab, "w_002")) == 50


class Stalling(http.server.BaseHTTPRequestHandler):
    """A W&B server that answers a probe and then stalls every API call."""

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        time.sleep(120)

    do_GET = do_POST


def test_a_wandb_server_that_stalls_after_answering_does_not_hold_the_exit(lab):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result, seconds = launch_online(lab, "w_003", f"http://127.0.0.1:{server.server_address[1]}",
                                        WANDB_INIT_TIMEOUT="3")
    finally:
        server.shutdown()
    assert float(result.stdout.split("first log ")[1].split()[0]) < 1 and seconds < 90
    assert result.stdout.count("lab: warning") == 1 and "W&B is off" in result.stdout
    assert attempt_of(lab, "w_003")["status"] == "finished" and len(metric_rows(lab, "w_003")) == 50


SPAWNING = ("import multiprocessing, time\nfrom lab import tracker\n\n"
            "def work(step):\n    tracker.log(step, **{'worker/seen': float(step)})\n    time.sleep(6)\n"
            "    return step\n\n"
            "if __name__ == '__main__':\n    tracker.log(0, loss=1.0)\n"
            "    pool = multiprocessing.get_context('spawn').Pool(2)\n"
            "    print(sum(pool.map(work, [1, 2])))\n    pool.close()\n    pool.join()\n    tracker.log(7, loss=0.5)\n")


def test_spawned_workers_never_start_their_own_wandb_run(lab):
    lab("new-run", "p_001", "--hypothesis", "h")
    (lab.repo / "spawning.py").write_text(SPAWNING)
    result = lab("launch", "p_001", "--no-commit", "--", sys.executable, "spawning.py", timeout=180)
    assert result.stdout.strip().endswith("3")
    run_id = attempt_of(lab, "p_001")["wandb"]["run_id"]
    assert len(list((lab.repo / "artefacts" / "wandb" / "wandb").glob(f"*run-*-{run_id}"))) == 1


@pytest.mark.parametrize("ending", ["os._exit(0)", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_wandb_copy_cut_short_is_marked_incomplete(lab, ending):
    lab("new-run", "k_001", "--hypothesis", "h")
    code = f"import os, signal\nfrom lab import tracker\nfor step in range(5):\n    tracker.log(step, loss=1.0)\n" \
           f"{ending}\n"
    result = lab("launch", "k_001", "--no-commit", "--", sys.executable, "-c", code, check=False)
    assert "W&B's copy of this attempt is incomplete" in result.stderr
    assert attempt_of(lab, "k_001")["wandb"]["copy"] == "incomplete" and len(metric_rows(lab, "k_001")) == 5
    page = Path(lab("log").stdout.strip()).read_text()
    assert "(pending sync) (W&B's copy is incomplete; the lab's records are whole)" in page


def test_a_finished_wandb_copy_is_complete(lab, train_script):
    lab("new-run", "k_002", "--hypothesis", "h")
    result = lab("launch", "k_002", "--no-commit", "--", sys.executable, "my_train.py")
    assert "incomplete" not in result.stderr and attempt_of(lab, "k_002")["wandb"]["copy"] == "complete"


def read(path):
    return json.loads(path.read_text())


def attempt_record(repo, run_id, number):
    return read(Store(repo).attempt_dir(run_id, number) / "attempt.json")


def test_sync_without_network_or_key_keeps_links_pending(lab, repo, train_script):
    lab("new-run", "dia_017", "--hypothesis", "h")
    env = lab_env(HOME=str(repo.parent / "home"), WANDB_CONFIG_DIR=str(repo.parent / "wandb-config"),
                  WANDB_BASE_URL="http://127.0.0.1:9")  # nothing listens there: an offline machine
    lab("launch", "dia_017", "--", sys.executable, "my_train.py")
    assert list((repo / "artefacts/wandb/wandb").glob(
        "offline-run-*-" + attempt_record(repo, "dia_017", 1)["wandb"]["run_id"]))
    started = time.monotonic()
    result = lab("sync", check=False, env=env)
    assert result.returncode == 2
    assert time.monotonic() - started < 60  # it failed on the connection check, not after wandb sync's wait
    assert result.stderr.startswith("lab: error: cannot reach the W&B server 127.0.0.1:9")
    assert result.stderr.count("\n") == 1 and "stays pending" in result.stderr
    assert attempt_record(repo, "dia_017", 1)["wandb"]["synced"] is False
    for path in repo.rglob("*"):
        if path.is_file() and "artefacts" not in path.parts and ".git" not in path.parts:
            assert "api_key" not in path.read_text(errors="ignore").lower(), path


def test_sync_finds_the_wandb_run_where_wandb_put_it(lab, train_script, tmp_path):
    lab("new-run", "r_001", "--hypothesis", "h")
    lab("launch", "r_001", "--no-commit", "--", sys.executable, "my_train.py")
    attempt = attempt_of(lab, "r_001")
    folder = Path(attempt["wandb"]["folder"])
    assert folder.is_dir() and folder.name.endswith(attempt["wandb"]["run_id"])
    elsewhere = tmp_path / "fallback" / "wandb" / folder.name  # as W&B does when the lab's folder is read-only
    elsewhere.parent.mkdir(parents=True)
    folder.rename(elsewhere)
    record = attempt_folder(lab, "r_001") / "attempt.json"
    record.write_text(json.dumps({**attempt, "wandb": {**attempt["wandb"], "folder": str(elsewhere)}}))
    result = lab("sync", check=False, env=lab_env(WANDB_BASE_URL=f"http://127.0.0.1:{free_port()}"))
    assert result.returncode != 0 and "cannot reach the W&B server" in result.stderr
    assert "never started" not in result.stdout and attempt_of(lab, "r_001")["wandb"].get("started") is not False


@pytest.mark.light
@pytest.mark.parametrize("known", [False, True])
def test_init_without_an_entity_takes_w_and_bs_default_or_shows_no_link(repo, tmp_path, known):
    from lab_testing import run_lab

    config_dir = tmp_path / "wandb-config"
    config_dir.mkdir()
    if known:
        (config_dir / "settings").write_text("[default]\nentity = my-team\nproject = other\n")
    env = lab_env(WANDB_CONFIG_DIR=str(config_dir))
    init = run_lab("init", "--wandb-project", "proj", cwd=repo, env=env)
    assert init.returncode == 0
    said = init.stdout.splitlines()[1]
    run_lab("new-run", "sc_001", "--hypothesis", "h", cwd=repo, env=env)
    code = "from lab import tracker\ntracker.log(1, **{'train/loss': 1.0})\n"
    launched = run_lab("launch", "sc_001", "--no-commit", "--", sys.executable, "-c", code, cwd=repo, env=env)
    assert launched.returncode == 0
    page = Path(run_lab("log", cwd=repo, env=env).stdout.strip()).read_text()
    run_id = attempt(repo, "sc_001")[0]["wandb"]["run_id"]
    assert "<entity>" not in page
    if known:
        assert said == "W&B links: https://wandb.ai/my-team/proj/... (entity my-team from W&B's settings file)"
        assert f"**W&B:** https://wandb.ai/my-team/proj/runs/{run_id} (pending sync)" in page
    else:
        assert "pages show the W&B run id alone; set one with lab init --wandb-entity ENTITY" in said
        assert f"**W&B:** run `{run_id}` (no link: the lab knows no W&B entity" in page and "wandb.ai/" not in page
