"""Field reports, round 2 (issue 20): what users of other trackers hit, replayed on this lab with real git
repositories, real processes and signals. Each section follows the issue's numbered list."""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lab_testing import git, lab_env

from lab.launcher.output import OutputLog, overprint
from lab.records.secrets import SecretDetector
from lab.records.store import Store


def attempt_folder(lab, run_id: str, number: int = 1) -> Path:
    return Store(lab.repo).attempt_dir(run_id, number)


def attempt_of(lab, run_id: str, number: int = 1) -> dict:
    return json.loads((attempt_folder(lab, run_id, number) / "attempt.json").read_text())


def stdout_log(lab, run_id: str, number: int = 1) -> str:
    return (attempt_folder(lab, run_id, number) / "stdout.log").read_text()


def set_launch(lab, **launch) -> None:
    settings = json.loads((lab.repo / "lab.json").read_text())
    settings["launch"] = {**settings.get("launch", {}), **launch}
    (lab.repo / "lab.json").write_text(json.dumps(settings))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# 1. Heavy output: redacted on a fast path that finds every rule's secrets --------------------------------------

H64 = "0123456789abcdef" * 4
MIXED = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9cF2hJ4kL6nP8rS0uX2zA4" * 2
KEY_KINDS = ("DSA ", "EC ", "OPENSSH ", "", "RSA ", "SSH2 ENCRYPTED ")
SECRETS = [  # at least one for every rule of the detector, at the shortest length each rule takes
    "AKIAIOSFODNN7EXAMPLE", 'aws_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "aws_secret_access_key = "
    + MIXED[:40], "artifactory AKCp5abcdef12 ok", "artifactory AP6abcdefgh ok", "AccountKey=" + ("a1B2+/c3D4" * 9)[:88],
    "https://user:pw@example.org/repo", f'cloudant_password = "{H64}"', 'cl_key: "abcdefghijklmnopqrstuvwx"',
    f"https://acct:{H64}@acct.cloudant.com", "https://acct:abcdefghijklmnopqrstuvwx@acct.cloudant.com",
    "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs", "ghp_" + MIXED[:36], "glpat-" + MIXED[:20],
    "GR1348941" + MIXED[:20], "glcbt-" + MIXED[:20], "glimt-" + MIXED[:25], "glptt-" + MIXED[:40],
    "glagent-" + MIXED[:50], "gloas-" + MIXED[:64], f'cos_hmac_secret_access_key = "{H64[:48]}"',
    f'ibm_cloud_iam_api_key = "{MIXED[:44]}"', "eyJa.eyJb.c", "0123456789abcdefghijklmnopqrstuv-us12",
    "//registry.npmjs.org/:_authToken=npm_abc", "sk-" + MIXED[:20] + "T3BlbkFJ" + MIXED[:20],
    *(f"-----BEGIN {kind}PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END {kind}PRIVATE KEY-----"
      for kind in KEY_KINDS), "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
    "PuTTY-User-Key-File-2: ssh-rsa", "pypi-AgEIcHlwaS5vcmc" + MIXED[:70], "pypi-AgENdGVzdC5weXBpLm9yZw" + MIXED[:70],
    "SG." + MIXED[:22] + "." + MIXED[:43], "xoxb-1-a", "https://hooks.slack.com/services/T0/B0/x",
    f'softlayer_api_key = "{H64}"', f"https://api.softlayer.com/soap/v3/{H64}", "sq0csp-" + MIXED[:43],
    "sk_live_" + MIXED[:24], "123456789:" + MIXED[:35], "AC" + H64[:32], "SK" + H64[:32], "github_pat_" + MIXED[:22],
    "AIza" + MIXED[:35], "hf_" + MIXED[:30], "sk-proj-" + MIXED[:20], "machine a\nlogin b\npassword c",
    "WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567", "secret = 'aB3+dE5/gH7+jK9/mN1+pQ3/sT5+vW7/yZ9'",
]
NOISE = "step 12/1000 | loss 0.512 | lr 3.00e-04 | saved /data/ckpt/model_12.pt\n" * 4


def test_every_rule_of_the_detector_has_a_secret_here():
    uncovered = [name for name, pattern, _ in SecretDetector().rules if not any(pattern.search(s) for s in SECRETS)]
    assert not uncovered  # a rule added to the detector needs its shortest secret in SECRETS


@pytest.mark.parametrize("secret", SECRETS)
def test_the_fast_redaction_finds_what_the_full_detector_finds(secret):
    detector = SecretDetector()
    text = f"{NOISE}prefix {secret} suffix\n{NOISE}"
    full = detector.redact(text)
    assert "[redacted]" in full and detector.redact_lines(text.encode()) == full.encode()


def test_ordinary_output_passes_the_fast_path_byte_for_byte():
    data = NOISE.encode() + "naïve ünïcode \xff bytes\n".encode("latin-1")
    assert SecretDetector().redact_lines(data) == data


def test_heavy_output_is_capped_head_and_tail_with_secrets_redacted(lab):
    set_launch(lab, output_head_mb=0.01, output_tail_mb=0.01)
    lab("new-run", "o_001", "--hypothesis", "h")
    code = ("key = 'WANDB_API_KEY=' + '0123456789abcdef' * 2 + '01234567'\nprint('first', key)\n"
            "for i in range(20000):\n    print(f'line {i} loss 0.5')\nprint('last', key)\n")
    result = lab("launch", "o_001", "--", sys.executable, "-c", code)
    assert result.stdout.count("\n") == 20002 and "0123456789abcdef0123456789abcdef01234567" in result.stdout
    log = stdout_log(lab, "o_001")
    head, marker, tail = log.partition("[lab: ")
    assert head.startswith("first WANDB_API_KEY=[redacted]\nline 0 loss 0.5\n") and len(head) <= 10_000
    assert tail.endswith("line 19999 loss 0.5\nlast WANDB_API_KEY=[redacted]\n") and len(tail) <= 10_200
    kept = head.count("\n") + tail.count("\n") - 1
    assert tail.startswith(f"{20002 - kept:,} lines (") and "of output left out here" in tail
    assert attempt_of(lab, "o_001")["status"] == "finished"


# 2. Progress bars: carriage-return redraws collapse; the lab's own records never block a launch ---------------


def test_a_redraw_overprints_as_a_terminal_shows_it():
    assert overprint(b"loading 10%\rloading 100%") == b"loading 100%"
    assert overprint(b"epoch 1: 99%|####|\rdone") == b"doneh 1: 99%|####|"  # the longer draw shows past the end
    assert overprint("80%|███▌ |\r100%|█████|".encode()) == "100%|█████|".encode()  # by character, not byte
    assert overprint(b"windows line\r") == b"windows line"


def test_a_progress_bar_flood_keeps_one_line_and_the_next_launch_commits(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "commit": {"max_commit_mb": 0.05}}))
    lab("new-run", "o_002", "--hypothesis", "h")
    code = ("import sys\nprint('start')\nfor i in range(20000):\n"
            "    sys.stdout.write(f'\\r{i * 100 // 19999:3d}%|{i}/19999 [00:01<00:02, 5.0it/s]')\n"
            "print()\nprint('end')\n")
    result = lab("launch", "o_002", "--", sys.executable, "-c", code)
    assert result.stdout.count("/19999 [") == 20000  # the terminal got every redraw
    assert stdout_log(lab, "o_002") == "start\n100%|19999/19999 [00:01<00:02, 5.0it/s]\nend\n"
    flood = attempt_folder(lab, "o_002") / "stdout.log"
    flood.write_text("old output line\n" * 20000)  # 320 kB of the lab's own records, over max_commit_mb
    lab("launch", "o_002", "--", sys.executable, "-c", "print(1)")
    assert attempt_of(lab, "o_002", 2)["git"]["committed"]
    assert git(lab.repo, "show", f"HEAD:{flood.relative_to(lab.repo)}").startswith("old output line\n")


def test_a_log_that_cannot_be_written_still_counts_the_output(tmp_path):
    log = OutputLog(tmp_path / "stdout.log", lambda data: data, head_bytes=25, tail_bytes=22)
    for _ in range(100):
        log.feed(b"0123456789\n")
    assert log.close() is None
    text = (tmp_path / "stdout.log").read_text()
    assert text == "0123456789\n" * 2 + "[lab: 96 lines (0.0 MB) of output left out here; the terminal showed " \
                   "them]\n" + "0123456789\n" * 2


# 3. A child that outlives the script ---------------------------------------------------------------------------

HELPER = ("import subprocess, sys\n"
          "helper = subprocess.Popen([sys.executable, '-c', 'import time\\nprint(\"tick\", flush=True)\\n"
          "time.sleep(60)'])\n"
          "print('helper', helper.pid, flush=True)\n")
CHATTY = ("import subprocess, sys\n"
          "subprocess.Popen([sys.executable, '-c', 'import time\\nfor _ in range(1200):\\n    print(\"tick\", "
          "flush=True)\\n    time.sleep(0.05)'])\n")


def test_the_attempt_ends_when_the_command_ends_and_names_what_it_left(lab):
    lab("new-run", "o_003", "--hypothesis", "h")
    start = time.monotonic()
    result = lab("launch", "o_003", "--no-commit", "--", sys.executable, "-c", HELPER, timeout=60)
    helper = int(result.stdout.split("helper ")[1].split()[0])
    try:
        assert time.monotonic() - start < 20 and alive(helper)
        attempt = attempt_of(lab, "o_003")
        assert attempt["status"] == "finished" and attempt["exit_code"] == 0
        assert [item["pid"] for item in attempt["left_running"]] == [helper]
        assert f"left 1 process running (pid {helper}: " in result.stderr
        assert f"kill -- -{attempt['child_pid']}" in result.stderr
    finally:
        os.kill(helper, signal.SIGKILL)


def test_a_left_child_that_keeps_printing_does_not_hold_the_attempt_open(lab):
    lab("new-run", "o_005", "--hypothesis", "h")
    start = time.monotonic()
    lab("launch", "o_005", "--no-commit", "--", sys.executable, "-c", CHATTY, timeout=60)
    assert time.monotonic() - start < 20  # the helper prints for a minute; the attempt does not wait for it
    assert attempt_of(lab, "o_005")["status"] == "finished"


def test_a_signal_to_the_launcher_reaches_what_the_command_started(lab):
    lab("new-run", "o_004", "--hypothesis", "h")
    code = HELPER + "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-m", "lab", "launch", "o_004", "--no-commit", "--", sys.executable,
                                "-c", code], cwd=lab.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=lab_env())
    helper = int(process.stdout.readline().split()[1])
    while process.stdout.readline() not in ("ready\n", ""):
        pass
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(helper)
    assert attempt_of(lab, "o_004")["status"] == "killed"


# 4. W&B online with no network: never blocks the script's start, steps or exit ------------------------------

STEPS = ("import time\nfrom lab import tracker\nstart = time.monotonic()\ntracker.log(0, loss=1.0)\n"
         "print('first log', round(time.monotonic() - start, 2), flush=True)\n"
         "for step in range(1, 50):\n    tracker.log(step, loss=1.0 / step)\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_online(lab, run_id: str, server: str, **env: str):
    lab("new-run", run_id, "--hypothesis", "h")
    start = time.monotonic()
    environment = {**lab_env(WANDB_BASE_URL=server, WANDB_API_KEY="0" * 40, **env), "WANDB_MODE": "online"}
    result = lab("launch", run_id, "--no-commit", "--", sys.executable, "-c", STEPS, timeout=120, env=environment)
    return result, time.monotonic() - start


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


def metric_rows(lab, run_id: str) -> list[dict]:
    path = attempt_folder(lab, run_id) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# 5. A symlinked logs/ -----------------------------------------------------------------------------------------


def test_a_symlinked_logs_folder_finds_its_lab(lab, tmp_path):
    elsewhere = tmp_path / "other_disk" / "logs"
    elsewhere.parent.mkdir()
    (lab.repo / "logs").rename(elsewhere)
    (lab.repo / "logs").symlink_to(elsewhere)
    lab("new-run", "l_001", "--hypothesis", "h")
    code = "from lab import tracker\ntracker.config({'lr': 0.1})\ntracker.log(1, loss=0.5)\ntracker.summary(best=0.5)\n"
    result = lab("launch", "l_001", "--no-commit", "--", sys.executable, "-c", code)
    assert "warning" not in result.stdout + result.stderr
    folder = attempt_folder(lab, "l_001")
    assert folder.resolve().is_relative_to(elsewhere)
    assert json.loads((folder / "config.json").read_text())["lr"] == 0.1
    assert json.loads((folder / "summary.json").read_text()) == {"best": 0.5}


# 6. Bad steps ---------------------------------------------------------------------------------------------------


def test_a_bad_step_skips_its_row_with_one_warning_and_a_numeric_string_is_a_number(lab):
    lab("new-run", "l_002", "--hypothesis", "h")
    code = ("from lab import tracker\ntracker.log(None, loss=1.0)\ntracker.log('7', loss=0.7)\n"
            "tracker.log(2.5, loss=0.6)\ntracker.log('abc', loss=0.5)\ntracker.log(8.0, loss=0.4)\n"
            "tracker.log(9, **{'loss': 0.3, 'note': 'text'})\nprint('done')\n")
    result = lab("launch", "l_002", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.endswith("done\n") and "Traceback" not in result.stdout
    assert [(row["step"], row["loss"]) for row in metric_rows(lab, "l_002")] == [(7, 0.7), (8, 0.4), (9, 0.3)]
    assert result.stdout.count("skips a row with step None") == 1 and result.stdout.count("skips a row") == 1
    assert result.stdout.count("lab: warning") == 2  # the bad steps once, the text value once


def test_a_tracker_call_that_fails_never_raises_into_the_script(lab):
    lab("new-run", "l_003", "--hypothesis", "h")
    code = ("from lab import tracker\ntracker.config(42)\ntracker.config(42)\ntracker.log(1, loss=0.5)\n"
            "print('done')\n")
    result = lab("launch", "l_003", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.endswith("done\n") and result.stdout.count("tracker.config is skipped (TypeError") == 1
    assert metric_rows(lab, "l_003")[0]["loss"] == 0.5


# 7. User text is escaped for where it lands ------------------------------------------------------------------

HOSTILE = {
    "hypothesis": "Warmup helps\n## Injected heading\n<script>alert(1)</script>",
    "title": "A title that is long enough to be cut right inside the tag <img src=x onerror=alert(1)>",
    "note": "batch 4\n### exp_999: fake run\n```\nrm -rf /\n```",
    "insight": "Clipping matters\n## Commits\n- `fake` [`0000000`] **main**: forged",
}


def outside_code(page: str) -> list[str]:
    """The page's lines outside fenced code blocks (a fence closes on a line of at least as many backticks)."""
    lines, fence = [], None
    for line in page.splitlines():
        ticks = len(line) - len(line.lstrip("`"))
        if fence is None and ticks >= 3:
            fence = ticks
        elif fence is not None and ticks >= fence and not line.strip("`"):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def test_user_text_cannot_add_headings_sections_columns_or_html(lab, repo):
    lab("new-run", "e_001", "--hypothesis", HOSTILE["hypothesis"], "--title", HOSTILE["title"])
    code = ("from lab import tracker\ntracker.log(1, **{'top1|top5': 0.5, 'val\\nloss': 0.25, 'x<b>': 1.0})\n")
    lab("launch", "e_001", "--note", HOSTILE["note"], "--", sys.executable, "-c", code)
    lab("note", "e_001", "--findings", "a | b\n### exp_998: fake too")
    lab("note", "--insight", HOSTILE["insight"])
    page = Path(lab("log").stdout.strip()).read_text()
    headings = [line for line in outside_code(page) if line.startswith("#")]
    assert headings == [headings[0], "## Overview", "## Experiments", headings[3], "## Key Insights", "## Commits"]
    assert headings[3].startswith("### e_001: A title") and "<img" not in page and "<script" not in page
    assert page.count("`0000000`") == 1 and "\\## Commits" in page  # the insight's line is text, not a section
    fences = [line for line in page.splitlines() if line.startswith("```")]
    assert fences[0] == "````bash" and fences[-1] == "````"  # longer than the note's own fence inside it
    rows = [line for line in page.splitlines() if line.startswith("| ") and "0." in line]
    # | Metric | At kept step | Final | Own best | Own best step |: no judged metric was logged, so no kept step
    assert sorted(rows) == ["| top1\\|top5 | - | 0.5 | - | - |", "| val loss | - | 0.25 | - | - |"]
    assert "| x&lt;b> | - | 1 | - | - |" in page
    report = Path(lab("report", "e_001").stdout.strip().splitlines()[-1]).read_text()
    assert not [line for line in outside_code(report) if line.startswith(("## Injected", "### exp_99"))]
    assert "<script" not in report and "<img" not in report and "| top1\\|top5 |" in report


def test_media_names_branches_and_stop_reasons_are_text_on_the_report(lab, repo):
    subprocess.run(["git", "checkout", "-q", "-b", "x/<img-src=y>#1"], cwd=repo, check=True)
    lab("new-run", "e_002", "--hypothesis", "h")
    (repo / "clip.wav").write_bytes(b"RIFF")
    code = ("from lab import tracker\n"
            "tracker.log(1, **{'val/loss': 0.5})\n"
            "tracker.media('sample\\n## Injected <b>x</b>', 'clip.wav', 1, kind='audio')\n")
    lab("launch", "e_002", "--", sys.executable, "-c", code)
    report = Path(lab("report", "e_002").stdout.strip().splitlines()[-1]).read_text()
    assert not [line for line in outside_code(report) if line.startswith("## Injected")]
    text = "\n".join(outside_code(report))  # the Reproduce block holds the command as it is, fenced
    assert "<b>" not in text and "<img" not in text
    assert "- step 1, sample ## Injected &lt;b>x&lt;/b> (audio): `" in report
    assert "on x/&lt;img-src=y>#1" in report


# 8. The same step logged twice -----------------------------------------------------------------------------------


def test_a_step_logged_twice_is_one_row_with_the_last_values(lab):
    lab("new-run", "s_001", "--hypothesis", "h")
    code = ("from lab import tracker\n"
            "for step, (train, val) in enumerate([(1.0, 0.5), (0.8, 0.4), (0.6, 0.3), (0.4, 0.2)], start=2):\n"
            "    tracker.log(step, **{'train/loss': train})\n"
            "    tracker.log(step, **{'val/loss': val})\n"
            "tracker.log(5, **{'val/loss': 0.25})\n")  # a corrected value
    lab("launch", "s_001", "--no-commit", "--", sys.executable, "-c", code)
    doctor = lab("doctor", "s_001").stdout
    assert "(step 5) to" not in doctor and "gap" not in doctor
    report = Path(lab("report", "s_001").stdout.strip().splitlines()[-1]).read_text()
    rows = [line for line in report.splitlines() if line.startswith("| 5 |")]
    assert len(rows) == 1 and "| 0.4 | 0.25 |" in rows[0] and "gap widening" not in report


# 9. Identical ablation arms ---------------------------------------------------------------------------------


def test_identical_ablation_arms_are_called_identical(lab):
    code = "from lab import tracker\nfor step in (1, 2):\n    tracker.log(step, **{'val/loss': 0.5 / step})\n"
    for run_id in ("a_001", "a_002"):
        lab("new-run", run_id, "--hypothesis", "h")
        lab("launch", run_id, "--no-commit", "--", sys.executable, "-c", code, "--dropout", "0.1")
    page = Path(lab("compare", "a_001", "a_002").stdout.strip().splitlines()[-1]).read_text()
    assert "No run has logged metrics yet" not in page
    assert "The arms are identical: each logged the same val/loss 0.25." in page
    assert "No winner: every arm logged the same val/loss (0.25); the arms are identical" in page


# 11. Pages and commands that claim what they cannot know --------------------------------------------------------


def test_commands_say_only_what_they_know(lab):
    lab("new-run", "c_001", "--hypothesis", "h", "--set", "lr=0.1")
    lab("new-run", "c_002", "--from", "c_001", "--hypothesis", "h", "--set", "lr=0.2")
    lab("launch", "c_001", "--no-commit", "--", sys.executable, "-c", "print('no metrics')")
    assert lab("doctor", "c_001").stdout.strip() == "c_001: no metrics logged, so only the config was checked " \
                                                    "(no finding)"
    assert lab("diff", "c_002", "c_001").stdout.splitlines()[0] == "c_002 -> c_001"
    assert "lr: 0.2 -> 0.1" in lab("diff", "c_002", "c_001").stdout
    result = lab("changelog", check=False)
    assert result.returncode != 0 and "--baseline NAME" in result.stderr and result.stderr.count("\n") == 1


def test_a_changelog_without_results_names_no_best_run(lab, repo):
    (repo / "base.json").write_text(json.dumps({"lr": 0.1}))
    lab("baseline", "add", "orig", "--config", "base.json")
    lab("new-run", "c_003", "--baseline", "orig", "--hypothesis", "h", "--set", "lr=0.2")
    page = Path(lab("changelog", "orig").stdout.strip()).read_text()
    assert "the best run" not in page and "the latest run: no run has a result yet" in page


# 14. A shallow clone ----------------------------------------------------------------------------------------------


def test_a_shallow_clone_lists_its_commits(repo, tmp_path):
    for number in (1, 2, 3):
        (repo / f"f{number}.txt").write_text(str(number))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"change {number}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    subprocess.run([sys.executable, "-m", "lab", "init"], cwd=clone, check=True, capture_output=True, env=lab_env())
    result = subprocess.run([sys.executable, "-m", "lab", "log"], cwd=clone, capture_output=True, text=True,
                            env=lab_env())
    assert result.returncode == 0 and "Traceback" not in result.stderr
    page = Path(result.stdout.strip()).read_text()
    assert "**main**: change 3 (3 files)" in page  # the boundary commit as git sees it: a root


# 12. The user's commit policy holds for the lab's commits -----------------------------------------------------------

FAKE_SIGNER = ("#!/bin/sh\ncat > /dev/null\necho '[GNUPG:] SIG_CREATED D 1 8 00 1 ABCD' >&2\n"
               "printf -- '-----BEGIN PGP SIGNATURE-----\\nfake\\n-----END PGP SIGNATURE-----\\n'\n")


def hook(repo: Path, name: str, body: str) -> None:
    path = repo / ".git" / "hooks" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_hooks_that_refuse_the_users_commits_refuse_the_labs(lab, repo):
    lab("new-run", "g_001", "--hypothesis", "h")
    hook(repo, "pre-commit", "echo 'lint failed: trailing whitespace' >&2\nexit 1\n")
    result = lab("launch", "g_001", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "the pre-commit hook refused (exit 1): lint failed: trailing whitespace" in result.stderr
    assert "Test 1" not in lab("show", "g_001").stdout and "test 1" not in lab("show", "g_001").stdout
    (repo / ".git" / "hooks" / "pre-commit").unlink()
    hook(repo, "commit-msg", "grep -q '^JIRA-' \"$1\" || { echo 'message must start with JIRA-'; exit 1; }\n")
    result = lab("launch", "g_001", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and "the commit-msg hook refused (exit 1): message must start with JIRA-" \
        in result.stderr
    hook(repo, "commit-msg", "sed -i 's/^/JIRA-1 /' \"$1\"\n")  # a hook that edits the message
    lab("launch", "g_001", "--", sys.executable, "-c", "print(1)")
    assert git(repo, "log", "-1", "--format=%s").startswith("JIRA-1 ")


def test_a_repository_that_signs_gets_signed_lab_commits(lab, repo, tmp_path):
    signer = tmp_path / "signer.sh"
    signer.write_text(FAKE_SIGNER)
    signer.chmod(0o755)
    git(repo, "config", "commit.gpgsign", "true")
    git(repo, "config", "gpg.program", str(signer))
    lab("new-run", "g_002", "--hypothesis", "h")
    lab("launch", "g_002", "--", sys.executable, "-c", "print(1)")
    assert "gpgsig -----BEGIN PGP SIGNATURE-----" in git(repo, "cat-file", "commit", "HEAD")
    git(repo, "config", "gpg.program", "false")  # a signer that fails
    (repo / "change.txt").write_text("x")
    result = lab("launch", "g_002", "--", sys.executable, "-c", "print(1)", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "git commit-tree failed" in result.stderr


# 16. Spawned workers never start W&B ----------------------------------------------------------------------------

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


# 13. An edited submodule --------------------------------------------------------------------------------------------


def test_an_edited_submodule_is_recorded_with_the_attempt(lab, repo, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    git(library, "init", "-q", "-b", "main")
    git(library, "config", "user.email", "a@example.org")
    git(library, "config", "user.name", "A")
    (library / "layers.py").write_text("WIDTH = 64\n")
    git(library, "add", "-A")
    git(library, "commit", "-qm", "library")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(repo, "commit", "-qm", "add lib")
    (repo / "lib" / "layers.py").write_text("WIDTH = 128\n")  # edited, not committed in the submodule
    lab("new-run", "m_001", "--hypothesis", "h")
    result = lab("launch", "m_001", "--", sys.executable, "-c", "print(1)")
    assert "submodule lib has uncommitted changes (1 file)" in result.stderr
    [module] = attempt_of(lab, "m_001")["git"]["submodules"]
    assert module["path"] == "lib" and module["dirty"] == ["layers.py"]
    assert module["sha"] == git(library, "rev-parse", "HEAD").strip() and "+WIDTH = 128" in module["diff"]


# 15. W&B's copy after os._exit or SIGKILL -----------------------------------------------------------------------


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


# 17. W&B's run where W&B put it -------------------------------------------------------------------------------------


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


# 10. Machines in different time zones --------------------------------------------------------------------------------


def test_records_written_in_different_zones_land_on_one_day(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "timezone": "UTC"}))
    lab("new-run", "z_001", "--hypothesis", "h", env=lab_env(TZ="America/Los_Angeles"))
    lab("launch", "z_001", "--", sys.executable, "-c", "print(1)", env=lab_env(TZ="Pacific/Kiritimati"))  # UTC+14
    lab("note", "z_001", "--findings", "seconds later, in Tokyo", env=lab_env(TZ="Asia/Tokyo"))
    pages = lab("log", "--all", env=lab_env(TZ="Pacific/Pago_Pago")).stdout.split()  # UTC-11
    now = datetime.now(timezone.utc)
    if now.hour == 23 and now.minute == 59:
        pytest.skip("the records may straddle midnight UTC")
    assert [Path(page).stem for page in pages] == [now.date().isoformat()]
    page = Path(pages[0]).read_text()
    assert "seconds later, in Tokyo" in page and "**Test 1:**" in page
    assert json.loads((lab.repo / "logs/runs/z_001/run.json").read_text())["slug"].startswith(now.strftime("%Y%m%d"))
    assert f"[`{attempt_of(lab, 'z_001')['git']['sha'][:7]}`]" in page  # the launch commit on the same page


def test_a_bad_timezone_is_one_line(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "timezone": "Mars/Olympus"}))
    result = lab("log", check=False)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "Mars/Olympus" in result.stderr
