"""The `lab` command as a researcher types it: a whole day's flow, help, everyday commands, bad input as one `lab:
error:` line, and record-only commands that never import torch."""

import json
import re
import subprocess
import sys

import pytest
from lab_testing import git, lab_env, run_lab

from lab.records.store import Store


def read(path):
    return json.loads(path.read_text())


def attempt_record(repo, run_id, number):
    return read(Store(repo).attempt_dir(run_id, number) / "attempt.json")


@pytest.mark.wandb
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


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


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


def test_commands_outside_a_lab_say_so(tmp_path):
    result = run_lab("runs", cwd=tmp_path)
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
    # a fresh interpreter: whether torch is imported is a question about a process of its own
    result = subprocess.run([sys.executable, "-c", probe], cwd=lab.repo, capture_output=True, text=True, env=lab_env())
    assert "TORCH False" in result.stdout, result.stdout + result.stderr


@pytest.mark.light
def test_everyday_commands(lab):
    assert lab().stdout.startswith("usage: lab")
    assert lab("--version").stdout.startswith("lab ")
    lab("new-run", "sin_005", "--hypothesis", "h")
    missing = lab("launch", "sin_005", "python", "train.py", check=False)
    assert missing.returncode == 2 and "put your command after --" in missing.stderr
    assert "ID [-- CMD ...]" in lab("launch", "--help").stdout
    asked = lab("rm", "sin_005", check=False)
    assert asked.returncode == 2 and "--yes" in asked.stderr and (lab.repo / "logs/runs/sin_005").exists()
    lab("rm", "sin_005", "--yes")
    assert "sin_005" not in lab("runs").stdout
    assert list((lab.repo / "logs/archive").glob("sin_005-*/run.json"))


@pytest.mark.light
def test_every_option_has_help():
    from lab.cli import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "name").choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"lab {name} {action.dest} has no help"


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


def test_a_closed_pipe_is_not_a_traceback(two_runs):
    result = subprocess.run(f"{sys.executable} -m lab runs | head -c 1", shell=True, cwd=two_runs.repo,
                            capture_output=True, text=True)
    assert result.stdout == "I" and result.stderr == ""


@pytest.mark.light
def test_titles_keep_what_the_hypothesis_said(lab):
    created = lab("new-run", "sc_001", "--hypothesis", "16 units underfit at lr 3e-2").stdout
    assert "_sc_001_16_units_underfit_lr_3e-2)" in created.splitlines()[0]
    lab("new-run", "sc_002", "--title", "Wider GRU", "--hypothesis", "a wider GRU learns faster")
    long = "A learning rate of 0.5 without clipping makes the CTC loss diverge within a hundred steps"
    lab("new-run", "sc_003", "--hypothesis", long)
    listing = lab("runs").stdout.splitlines()
    titles = {line.split()[0]: line.split("  ")[-1].strip() for line in listing[1:]}
    assert titles == {"sc_001": "16 units underfit at lr 3e-2", "sc_002": "Wider GRU",
                      "sc_003": "A learning rate of 0.5 without clipping makes the…"}


@pytest.mark.light
def test_help_says_what_each_flag_needs(lab):
    def help_of(*command):
        shown = lab(*command, "--help", env=lab_env(COLUMNS="100"))  # a terminal 100 columns wide
        assert shown.returncode == 0
        return shown.stdout

    note = " ".join(help_of("note").split())
    assert "--result TEXT Test N's result (shown on its pages); needs ID and --attempt N" in note
    assert "--component NAME what --change touches: schedule, model, data, ...; needs --change" in note
    runs = help_of("runs")
    assert "  lab runs --status crashed,failed " in runs.split("examples:")[1]
    assert all(len(line) <= 100 for line in runs.splitlines() + help_of("note").splitlines())
    lab("new-run", "sc_001", "--hypothesis", "h")
    refused = lab("note", "sc_001", "--result", "loss 0.5", check=False)
    assert refused.returncode != 0 and refused.stderr.strip() == (
        "lab: error: --result is one Test's result: give it with --attempt N (lab note ID --attempt N --result ...)")
