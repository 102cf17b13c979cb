import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lab.records.store import Store
from lab_testing import git, lab_env


def read(path):
    return json.loads(path.read_text())


def attempt_record(repo, run_id, number):
    return read(Store(repo).attempt_dir(run_id, number) / "attempt.json")


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_the_researcher_flow_end_to_end(lab, train_script):
    repo = lab.repo
    lab("new-run", "dia_009", "--hypothesis", "MusicGen delay needs the full-size decoder",
        "--group", "musicgen_delay_scaled")
    first = lab("launch", "dia_009", "--note", "batch 4, grad accum 1", "--",
                sys.executable, "my_train.py", "--lr", "2e-4")
    assert "trained with lr 0.0002" in first.stdout
    lab("launch", "dia_009", "--note", "batch 2, grad accum 16", "--", sys.executable, "my_train.py", "--lr", "2e-4")
    lab("note", "dia_009", "--findings", "Loss falls", "--conclusion", "Keep it", "--next", "Scale up")
    lab("note", "dia_009", "--attempt", "2", "--result", "val loss 0.5")
    lab("note", "--insight", "Gradient explosions start only when training from scratch")

    attempt = attempt_record(repo, "dia_009", 2)
    assert attempt["status"] == "finished" and attempt["exit_code"] == 0 and attempt["note"] == "batch 2, grad accum 16"
    assert attempt["environment"]["python"] and attempt["environment"]["torch"]
    assert re.fullmatch(r"https://wandb.ai/my-team/dia-music-finetuning/runs/[a-z0-9]{8}", attempt["wandb"]["url"])
    assert attempt["wandb"]["group_url"] == ("https://wandb.ai/my-team/dia-music-finetuning/groups/"
                                            "musicgen_delay_scaled/workspace")
    assert attempt["wandb"]["synced"] is False
    folder = Store(repo).attempt_dir("dia_009", 2)
    assert "trained with lr" in (folder / "stdout.log").read_text()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 1 and rows[-1] == {**rows[-1], "val/loss": 0.5}
    assert read(folder / "summary.json") == {"final_loss": 0.2}

    slug = read(repo / "logs/runs/dia_009/run.json")["slug"]
    assert git(repo, "log", "-4", "--format=%s").splitlines() == [  # each note commits itself, after the attempt
        "lab records: day notes", f"lab records: notes of {slug}", f"lab records: notes of {slug}",
        f"lab records: {slug} test 2"]
    assert git(repo, "status", "--porcelain", "logs") == ""
    assert slug in git(repo, "log", "--format=%s").splitlines()  # the launch commit of test 1
    assert attempt["git"]["sha"] == git(repo, "rev-parse", "HEAD~4").strip()
    assert "logs/runs/dia_009/events.jsonl" in git(repo, "show", "--name-only", "--format=", "HEAD~3")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["logs/journal.jsonl"]

    listing = lab("runs").stdout
    assert re.search(r"dia_009\s+finished\s+-\s+musicgen_delay_scaled\s+2", listing)
    shown = json.loads(lab("show", "dia_009", "--json").stdout)
    assert [a["number"] for a in shown["attempts"]] == [1, 2]
    assert [a["summary"] for a in shown["attempts"]] == [{"final_loss": 0.2}] * 2
    assert {e["field"] for e in shown["events"] if e["kind"] == "note"} == {"findings", "conclusion", "next", "result"}
    runs_json = json.loads(lab("runs", "--json", "--group", "musicgen_delay_scaled").stdout)
    assert [row["id"] for row in runs_json] == ["dia_009"]
    assert json.loads(lab("runs", "--json", "--status", "failed").stdout) == []


def test_launch_passes_the_exit_status_and_lab_variables(lab, repo):
    (repo / "show_env.py").write_text(
        "import os, sys\n"
        "for k in ['LAB_RUN_ID','LAB_ATTEMPT_DIR','WANDB_RUN_ID','WANDB_PROJECT','WANDB_ENTITY','WANDB_RUN_GROUP',"
        "'WANDB_NOTES']:\n"
        "    print(k, '=', os.environ.get(k))\n"
        "sys.exit(3)\n"
    )
    lab("new-run", "dia_010", "--hypothesis", "Exit codes pass through", "--group", "g1")
    result = lab("launch", "dia_010", "--", sys.executable, "show_env.py", check=False)
    assert result.returncode == 3
    attempt = attempt_record(repo, "dia_010", 1)
    assert attempt["status"] == "failed" and attempt["exit_code"] == 3
    assert re.search(r"WANDB_RUN_ID = [a-z0-9]{8}\n", result.stdout)
    assert attempt["wandb"] is None  # the script never started W&B: no link to a run that does not exist
    assert "LAB_RUN_ID = dia_010" in result.stdout and "WANDB_RUN_GROUP = g1" in result.stdout
    assert "WANDB_ENTITY = my-team" in result.stdout and "WANDB_NOTES = Exit codes pass through" in result.stdout
    assert f"LAB_ATTEMPT_DIR = {repo / '.git/lab/running/dia_010/attempts' / attempt['key']}" in result.stdout


def test_no_commit_records_the_dirty_diff(lab, repo, train_script):
    lab("new-run", "dia_011", "--hypothesis", "h")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    (repo / "my_train.py").write_text(train_script.read_text() + "# a local change\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    lab("launch", "dia_011", "--no-commit", "--", sys.executable, "my_train.py")
    assert git(repo, "rev-parse", "HEAD").strip() == head
    attempt = attempt_record(repo, "dia_011", 1)
    assert attempt["git"] == {"sha": head, "branch": "main", "committed": False, "files": 0}
    assert "+# a local change" in (Store(repo).attempt_dir("dia_011", 1) / "dirty.diff").read_text()


@pytest.mark.parametrize("name, content, reason", [
    (".env", "WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567\n", "secret file name"),
    ("keys/server.pem", "-----BEGIN RSA PRIVATE KEY-----\n", "secret file name"),
    ("settings.py", "api_key = 'abcdefghijklmnopqrstuvwxyz123456'\n", "looks like a secret"),
    ("weights.bin", None, "> 10 MB"),
])
def test_launch_refuses_to_commit_secrets_and_large_files(lab, repo, train_script, name, content, reason):
    lab("new-run", "dia_012", "--hypothesis", "h")
    path = repo / name
    path.parent.mkdir(exist_ok=True)
    if content is None:
        path.write_bytes(b"\0" * (11 * 1024 * 1024))
    else:
        path.write_text(content)
    if name == ".env":
        (repo / ".gitignore").write_text("")  # a lab whose .gitignore lost its .env entry
    result = lab("launch", "dia_012", "--", sys.executable, "my_train.py", check=False)
    one_line_error(result, "refusing to commit", name, reason)
    assert git(repo, "diff", "--cached", "--name-only") == ""
    assert path.exists()
    assert not (repo / "logs/runs/dia_012/attempts").exists()


def test_launch_outside_git_needs_no_commit(lab, repo, train_script):
    lab("new-run", "dia_013", "--hypothesis", "h")
    import shutil

    shutil.rmtree(repo / ".git")
    one_line_error(lab("launch", "dia_013", "--", sys.executable, "my_train.py", check=False),
                   "not inside a git repository")
    lab("launch", "dia_013", "--no-commit", "--", sys.executable, "my_train.py")
    assert attempt_record(repo, "dia_013", 1)["git"] is None


def start_sleepy_launch(lab, repo, run_id):
    """Launch a command that prints 'started' and sleeps; returns the launcher once the command runs."""
    (repo / "sleepy.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    lab("new-run", run_id, "--hypothesis", "h")
    launcher = subprocess.Popen([sys.executable, "-m", "lab", "launch", run_id, "--", sys.executable, "sleepy.py"],
                                cwd=repo, env=lab_env(), stdout=subprocess.PIPE, text=True)
    assert launcher.stdout.readline().strip() == "started"
    return launcher


def test_killing_the_launcher_marks_the_attempt_killed(lab, repo):
    launcher = start_sleepy_launch(lab, repo, "dia_014")
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
    attempt = attempt_record(repo, "dia_014", 1)
    assert attempt["status"] == "killed" and attempt["ended"]


def test_a_vanished_launcher_shows_as_crashed(lab, repo):
    launcher = start_sleepy_launch(lab, repo, "dia_015")
    child_pid = attempt_record(repo, "dia_015", 1)["child_pid"]
    launcher.kill()
    launcher.wait()
    os.kill(child_pid, signal.SIGKILL)
    time.sleep(0.2)
    assert re.search(r"dia_015\s+crashed", lab("runs").stdout)
    assert attempt_record(repo, "dia_015", 1)["status"] == "crashed"


def test_family_runs_inherit_and_diff(lab, repo):
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "The original recipe reproduces")
    lab("new-run", "nsd_002", "--from", "nsd_001", "--hypothesis", "LR 0.02 is too high",
        "--set", "optim.lr=0.0015", "--set", "train.grad_clip=1.0")
    assert lab("diff", "nsd_002").stdout.splitlines() == [
        "nsd_002 vs nsd_001 (parent)", "[schedule]", "  optim.lr: 0.02 -> 0.0015",
        "[clipping]", "  train.grad_clip: 0.0 -> 1.0",
    ]
    assert lab("diff", "nsd_001", "nsd_002").stdout.splitlines()[0] == "nsd_001 -> nsd_002"  # in the order given
    assert lab("diff", "nsd_001").stdout.strip() == "nsd_001 vs cffan_baseline (baseline): no differences"
    run = read(repo / "logs/runs/nsd_002/run.json")
    assert (run["family"], run["parent"], run["baseline"]) == ("neural_decoder", "nsd_001", "cffan_baseline")
    snapshot = read(repo / "logs/baselines/cffan_baseline.json")
    assert snapshot["provenance"]["repository"] == "https://github.com/cffan/neural_seq_decoder"
    lab("new-run", "nsd", "--next", "--hypothesis", "prefix maps to the family")
    assert read(repo / "logs/runs/nsd_003/run.json")["family"] == "neural_decoder"
    lab("new-run", "nsd_004", "--preset", "tiny", "--hypothesis", "tiny preset")
    assert read(repo / "logs/runs/nsd_004/config.json")["model"]["n_units"] == 64


def test_wrapped_run_stores_its_config_file(lab, repo):
    (repo / "cfg.json").write_text('{"lr": 0.001, "batch": 4}')
    lab("new-run", "dia_016", "--config", "cfg.json", "--set", "batch=8", "--hypothesis", "h")
    assert read(repo / "logs/runs/dia_016/config.json") == {"lr": 0.001, "batch": 8}
    one_line_error(lab("diff", "dia_016", check=False), "no baseline or parent")


@pytest.mark.parametrize("args, fragments", [
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--set", "optim.lrr=1"],
     ["unknown override key 'optim.lrr'", "valid keys:", "optim.lr"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--set", "optim.lr=fast"],
     ["expected a number"]),
    (["new-run", "nsd_001", "--family", "nope", "--hypothesis", "h"], ["unknown family 'nope'"]),
    (["new-run", "../../x_001", "--hypothesis", "h"], ["invalid run id"]),
    (["new-run", "dia_001", "--config", "missing.json", "--hypothesis", "h"], ["does not exist"]),
    (["new-run", "dia_001", "--config", "broken.json", "--hypothesis", "h"], ["not valid JSON"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--preset", "huge", "--hypothesis", "h"], ["unknown preset"]),
    (["launch", "dia_404", "--", "true"], ["no run dia_404"]),
    (["launch", "dia_001"], ["no family"]),
    (["show", "dia_404"], ["no run dia_404"]),
    (["note", "dia_001"], ["nothing to note"]),
    (["note", "--findings", "x"], ["need a run id"]),
    (["log", "22-11-2026"], ["invalid date"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--set", "model.n_units=0"],
     ["model.n_units=0 must be at least 1"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--config", "typed.json"],
     ["'train.batch_size' has 'x'"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--set", "train.batch_size=0"],
     ["train.batch_size=0 must be at least 1"]),
    (["new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h", "--set", 'train.stop_on=["nope"]'],
     ["unknown health rules"]),
    (["new-run", "dia_002", "--from", "dia_001", "--preset", "tiny", "--hypothesis", "h"], ["--preset and --from"]),
    (["doctor", "dia_001", "--attempt", "9"], ["has no attempt 9"]),
    (["init", "--prefix", "NSD=neural_decoder"], ["lowercase prefix"]),
])
def test_bad_input_gets_a_one_line_error(lab, repo, args, fragments):
    (repo / "broken.json").write_text("{not json")
    (repo / "typed.json").write_text('{"train": {"batch_size": "x"}}')
    if "dia_001" in args and args[:2] != ["new-run", "dia_001"]:
        lab("new-run", "dia_001", "--hypothesis", "h")
    one_line_error(lab(*args, check=False), *fragments)
    if args[0] == "new-run" and args[1] != "dia_001":
        assert not (repo / "logs" / "runs" / args[1]).exists(), "a refused run leaves nothing behind"


def test_a_partial_config_file_is_merged_into_the_family_preset(lab, repo):
    (repo / "short.json").write_text('{"train": {"max_steps": 5}}')
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--config", "short.json",
        "--hypothesis", "h")
    config = read(repo / "logs/runs/nsd_001/config.json")
    assert config["train"]["max_steps"] == 5 and config["train"]["batch_size"] == 16
    assert config["optim"]["lr"] == 3e-3


def test_a_bad_launch_override_is_refused_before_anything_is_committed(lab, repo):
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h")
    head_before = git(repo, "rev-list", "--all", "--count")
    one_line_error(lab("launch", "nsd_001", "--set", "train.precision=fp8", check=False), "train.precision='fp8'")
    assert git(repo, "rev-list", "--all", "--count") == head_before
    assert not (repo / "logs/runs/nsd_001/attempts").exists()


def test_damaged_records_give_a_one_line_error(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "h")
    (repo / "logs/runs/dia_001/run.json").write_text("{half")
    one_line_error(lab("show", "dia_001", check=False), "run.json is not valid JSON")


def test_init_keeps_an_unterminated_gitignore_intact(repo):
    (repo / ".gitignore").write_text("*.tmp")
    subprocess.run([sys.executable, "-m", "lab", "init"], cwd=repo, check=True, env=lab_env())
    assert (repo / ".gitignore").read_text().splitlines() == [
        "*.tmp", "artefacts/", ".env", "wandb/", "logs/daily/", "logs/reports/", "logs/changelogs/", "logs/ablations/*",
        "!logs/ablations/index.json*"]


def test_existing_run_is_refused_without_losing_its_records(lab, repo):
    lab("new-run", "dia_001", "--hypothesis", "first")
    one_line_error(lab("new-run", "dia_001", "--hypothesis", "second", check=False), "already exists")
    assert read(repo / "logs/runs/dia_001/run.json")["hypothesis"] == "first"


def test_commands_outside_a_lab_say_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lab", "runs"], cwd=tmp_path, capture_output=True, text=True,
                            env=lab_env())
    one_line_error(result, "lab init")


def test_help_and_record_only_commands_do_not_import_torch(lab, train_script):
    lab("new-run", "dia_009", "--hypothesis", "h")
    lab("launch", "dia_009", "--", sys.executable, "my_train.py")
    probe = (
        "import sys\n"
        "from lab.cli import main\n"
        "for argv in (['runs'], ['show', 'dia_009', '--json'], ['diff', 'nsd_001'], ['log'],"
        " ['note', '--insight', 'x']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--hypothesis", "h")
    result = subprocess.run([sys.executable, "-c", probe], cwd=lab.repo, capture_output=True, text=True, env=lab_env())
    assert "TORCH False" in result.stdout, result.stdout + result.stderr


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
