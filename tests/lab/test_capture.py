"""Any training script, recorded as it is: real scripts under a real `lab launch` in a temporary git repository,
logging through wandb (offline), argparse, TensorBoard and Hugging Face's Trainer, with no line of lab code (the
autolog hooks and `sitecustomize` in the script's own process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lab_testing import lab_env

from lab.tracking import autolog
from lab.records.store import Store


NANOGPT = """import sys
from ast import literal_eval
import wandb
# nanoGPT's train.py: module-level defaults, overridden by --key=value (its configurator.py)
out_dir = 'out'
eval_interval = 2
learning_rate = 6e-4
dropout = 0.0
warmup_iters = 2
min_lr = 6e-5
compile = True
wandb_project = 'shakespeare-char'
wandb_run_name = 'mini-gpt'
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
for arg in sys.argv[1:]:
    key, val = arg[2:].split('=', 1)
    try:
        val = literal_eval(val)
    except (SyntaxError, ValueError):
        pass
    globals()[key] = val
config = {k: globals()[k] for k in config_keys}
run = wandb.init(project=wandb_project, name=wandb_run_name, config=config)
for iter_num in range(7):
    loss = 3.0 / (iter_num + 1) * (learning_rate / 6e-4) ** 0.1
    if iter_num % eval_interval == 0:
        wandb.log({'iter': iter_num, 'train/loss': loss, 'val/loss': loss + 0.1, 'lr': learning_rate})
print('compile is', compile, 'run', run.id)
"""


def attempt(repo: Path, run_id: str, number: int = 1) -> tuple[dict, list[dict], dict, dict]:
    """(attempt.json, metric rows, config.json, summary.json) of an attempt."""
    folder = Store(repo).attempt_dir(run_id, number)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()] \
        if (folder / "metrics.jsonl").exists() else []
    read = lambda name: json.loads((folder / name).read_text()) if (folder / name).exists() else {}  # noqa: E731
    return read("attempt.json"), rows, read("config.json"), read("summary.json")


def table(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(row["step"], row[key]) for row in rows if key in row]


@pytest.mark.wandb
def test_a_nanogpt_shaped_script_shows_its_rows_config_and_link_on_every_page(lab, repo):
    (repo / "train.py").write_text(NANOGPT)
    lab("new-run", "ng_001", "--hypothesis", "a char GPT learns shakespeare")
    out = lab("launch", "ng_001", "--", sys.executable, "train.py", "--compile=False", "--learning_rate=1e-3")
    record, rows, config, _ = attempt(repo, "ng_001")
    assert "compile is False" in out.stdout
    assert [step for step, _ in table(rows, "train/loss")] == [0, 1, 2, 3]  # W&B's implicit steps
    assert table(rows, "iter") == [(0, 0), (1, 2), (2, 4), (3, 6)]
    assert config == {"out_dir": "out", "eval_interval": 2, "learning_rate": 0.001, "dropout": 0.0,
                      "warmup_iters": 2, "min_lr": 6e-05, "compile": False, "wandb_project": "shakespeare-char",
                      "wandb_run_name": "mini-gpt"}
    wandb = record["wandb"]
    run_id = out.stdout.split("run ")[-1].strip()
    assert (wandb["project"], wandb["entity"], wandb["name"], wandb["run_id"]) == (
        "shakespeare-char", "my-team", "mini-gpt", run_id)
    assert wandb.get("copy") != "incomplete" and "incomplete" not in out.stderr  # W&B's exit hook finishes it
    link = f"https://wandb.ai/my-team/shakespeare-char/runs/{run_id}"
    assert wandb["url"] == link
    offline = list(repo.glob(f"**/wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))  # the script's run works
    assert offline and offline[0].stat().st_size > 0

    lab("new-run", "ng_002", "--from", "ng_001", "--hypothesis", "a higher LR learns faster")
    lab("launch", "ng_002", "--", sys.executable, "train.py", "--compile=False", "--learning_rate=6e-3")
    assert lab("diff", "ng_002").stdout.splitlines()[:4] == [
        "ng_002 vs ng_001 (parent)", "[training]", "  learning_rate: 0.001 -> 0.006",
        "[metrics at each one's kept step]"]
    report = (repo / lab("report", "ng_001").stdout.strip()).read_text()
    final = f"| train/loss | {rows[-1]['train/loss']:.4g} |"
    assert link in report and final in report
    lab("compare", "ng_001", "ng_002")
    comparison = (repo / "logs/ablations/ng_001_vs_ng_002.md").read_text()
    assert "| `learning_rate` | 0.001 | 0.006 |" in comparison and "| ng_002:1 |" in comparison
    daily = Path(lab("log").stdout.strip()).read_text()
    assert link in daily and "[ng_001 report](../reports/ng_001.md)" in daily  # its rows are on the report
    assert "`learning_rate`: 0.001 → 0.006" in daily


EVAL_ONLY = """import argparse
import wandb
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
parser.add_argument('--layers', type=int, default=4)
args = parser.parse_args()
run = wandb.init(project='cls')
for step, accuracy in enumerate([0.5, 0.7, 0.65], start=1):
    wandb.log({'train/loss_total': 1.0 / step, 'eval/accuracy': accuracy}, step=step)
run.finish()
"""


def test_a_script_logging_only_eval_accuracy_is_judged_on_it_and_its_options_are_on_the_report(lab, repo):
    (repo / "classify.py").write_text(EVAL_ONLY)
    lab("new-run", "cls_001", "--hypothesis", "a wider head classifies better")
    lab("launch", "cls_001", "--", sys.executable, "classify.py", "--lr", "0.3")
    report = (repo / lab("report", "cls_001").stdout.strip()).read_text()
    assert "**Verdict**" not in report  # a first run with no parent and no expectation: its result is the page
    assert "- Best eval/accuracy: **0.7** at step 2" in report
    assert "### Options\n- `layers`: 4\n- `lr`: 0.3\n" in report
    assert "| 2 | - | - | - | 0.7 | best so far |" in report  # the script recorded no checkpoint
    assert "| 3 | - | - | - | 0.65 | degrading |" in report


WANDB_STEPS = """import wandb
run = wandb.init(id='steps42', config={'lr': 0.1, 'optim': {'lr': 0.5}})
wandb.define_metric('epoch')
wandb.define_metric('val/*', step_metric='epoch')
for step in range(3):
    wandb.log({'train/loss': 1.0 / (step + 1)})          # implicit steps 0, 1, 2
wandb.log({'train/acc': 0.5}, commit=False)               # merged into the next row, as W&B merges it
wandb.log({'train/loss': 0.2})                            # step 3
wandb.log({'val/loss': 0.4, 'epoch': 1}, step=10)         # at W&B's step: 'epoch' covers val/* only ...
wandb.log({'val/acc': 0.9}, step=10)                      # ... so every row keeps one axis
wandb.log({'train/loss': 0.1, 'bad': 'text'}, step=11, commit=True)
wandb.config.update({'batch': 32})
wandb.config.warmup = 5
run.summary['best/val_loss'] = 0.4
run.summary.update({'epochs': 1})
run.finish()
"""


@pytest.mark.wandb
def test_wandb_rows_steps_config_summary_and_axes(lab, repo):
    (repo / "log_wandb.py").write_text(WANDB_STEPS)
    lab("new-run", "wb_001", "--hypothesis", "h")
    out = lab("launch", "wb_001", "--no-commit", "--", sys.executable, "log_wandb.py")
    record, rows, config, summary = attempt(repo, "wb_001")
    assert table(rows, "train/loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.2), (11, 0.1)]
    assert table(rows, "train/acc") == [(3, 0.5)]
    assert [{**row, "time": 0} for row in rows if "val/loss" in row] == [  # beside train/loss on W&B's steps
        {"step": 10, "time": 0, "val/loss": 0.4, "epoch": 1, "val/acc": 0.9}]
    assert "skips values that are not single numbers: bad" in out.stderr + out.stdout
    assert config == {"lr": 0.1, "optim": {"lr": 0.5}, "batch": 32, "warmup": 5}
    assert summary == {"best/val_loss": 0.4, "epochs": 1}
    assert record["metric_axes"] == {"val/*": "epoch"}
    assert record["wandb"]["run_id"] == "steps42" and record["wandb"]["project"] == "dia-music-finetuning"
    assert record["wandb"]["copy"] == "complete"  # run.finish() was seen: W&B's copy is whole
    folder = Path(record["wandb"]["folder"])  # what `lab sync` sends
    assert folder.name.startswith("offline-run-") and folder.name.endswith("-steps42") and folder.is_dir()


def test_a_metric_logged_through_tracker_and_wandb_is_recorded_once(lab, repo):
    (repo / "both.py").write_text(
        "import wandb\nfrom lab import tracker\nwandb.init()\n"
        "for step in range(1, 4):\n"
        "    tracker.log(step, **{'train/loss': 1.0 / step})\n"
        "    wandb.log({'train/loss': 1.0 / step, 'train/lr': 0.1}, step=step)\n")
    lab("new-run", "wb_003", "--hypothesis", "h")
    lab("launch", "wb_003", "--no-commit", "--", sys.executable, "both.py")
    rows = attempt(repo, "wb_003")[1]
    assert table(rows, "train/loss") == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert table(rows, "train/lr") == [(1, 0.1), (2, 0.1), (3, 0.1)]


ARGPARSE = """import argparse
def boolean(text):
    return text.lower() in ('1', 'true', 'yes')
parser = argparse.ArgumentParser()
parser.add_argument('--learning_rate', type=float, default=6e-4)
parser.add_argument('--dropout', type=float, default=0.1)
parser.add_argument('--layers', type=int, nargs='+', default=[2, 2])
parser.add_argument('--compile', type=boolean, default=True)
parser.add_argument('--name', default='base')
args = parser.parse_args()
print('parsed', vars(args))
if args.name == 'logged':
    from lab import tracker
    tracker.log(1, loss=args.learning_rate)
"""


def test_argparse_namespace_with_defaults_is_the_config(lab, repo):
    (repo / "args.py").write_text(ARGPARSE)
    lab("new-run", "ap_001", "--hypothesis", "h")
    lab("launch", "ap_001", "--no-commit", "--", sys.executable, "args.py", "--compile=False", "--learning_rate",
        "1e-2", "--layers", "4", "8")
    assert attempt(repo, "ap_001")[2] == {"learning_rate": 0.01, "dropout": 0.1, "layers": [4, 8],
                                          "compile": False, "name": "base"}


def test_launcher_options_are_not_config(lab, repo):
    package = repo / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(ARGPARSE)
    (repo / "args.py").write_text(ARGPARSE)
    lab("new-run", "ap_002", "--hypothesis", "h")
    lab("launch", "ap_002", "--no-commit", "--", sys.executable, "-m", "pkg.train", "--dropout", "0.3")
    assert attempt(repo, "ap_002")[2]["dropout"] == 0.3
    lab("new-run", "ap_003", "--hypothesis", "h")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29517"]
    lab("launch", "ap_003", "--no-commit", "--", *torchrun, "args.py", "--name", "ddp", timeout=240)
    assert attempt(repo, "ap_003")[2] == {"learning_rate": 0.0006, "dropout": 0.1, "layers": [2, 2],
                                          "compile": True, "name": "ddp"}
    lab("new-run", "ap_005", "--hypothesis", "h")
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1"]
    lab("launch", "ap_005", "--no-commit", "--", *accelerate, "args.py", "--name", "acc", timeout=240)
    assert attempt(repo, "ap_005")[2] == {"learning_rate": 0.0006, "dropout": 0.1, "layers": [2, 2],
                                          "compile": True, "name": "acc"}


def test_a_disagreement_with_the_runs_config_is_named_on_the_launch_and_the_pages(lab, repo):
    (repo / "args.py").write_text(ARGPARSE)
    (repo / "planned.json").write_text('{"learning_rate": 6e-3}')  # a config file's value is not handed over
    lab("new-run", "ap_004", "--hypothesis", "h", "--config", "planned.json")
    out = lab("launch", "ap_004", "--no-commit", "--", sys.executable, "args.py", "--learning_rate=1e-2",
              "--name", "logged")
    assert "the script reports learning_rate=0.01 but the lab recorded 0.006" in out.stderr + out.stdout
    record, _, config, _ = attempt(repo, "ap_004")
    assert config["learning_rate"] == 0.01
    assert record["config_disagreements"] == {"learning_rate": {"lab": 0.006, "script": 0.01}}
    line = "- `learning_rate`: the run's config 0.006, the script ran 0.01"
    assert line in (repo / lab("report", "ap_004").stdout.strip()).read_text()
    assert line in Path(lab("log").stdout.strip()).read_text()


TENSORBOARD = """import sys
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter(sys.argv[1])
for step in range(1, 4):
    writer.add_scalar('train/loss', 1.0 / step, step)
    writer.add_scalar('train/lr', 0.01, step)
writer.add_scalars('loss', {'train': 0.3, 'val': 0.4}, 3)
writer.add_hparams({'lr': 0.01, 'layers': 2}, {'hparam/best': 0.4})
writer.close()
"""


def test_tensorboard_scalars_and_hparams(lab, repo, tmp_path):
    (repo / "tb.py").write_text(TENSORBOARD)
    lab("new-run", "tb_001", "--hypothesis", "h")
    lab("launch", "tb_001", "--no-commit", "--", sys.executable, "tb.py", str(tmp_path / "events"), timeout=240)
    _, rows, config, summary = attempt(repo, "tb_001")
    assert table(rows, "train/loss") == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert table(rows, "loss/val") == [(3, 0.4)] and table(rows, "train/lr")[-1] == (3, 0.01)
    assert not [row for row in rows if "hparam/best" in row]
    assert config == {"lr": 0.01, "layers": 2} and summary == {"hparam/best": 0.4}
    assert list((tmp_path / "events").glob("events.out.tfevents.*"))  # TensorBoard's own files are written


HF_TRAINER = """import sys, torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
config = BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16, max_position_embeddings=16, num_labels=2)
model = BertForSequenceClassification(config)
data = [{'input_ids': torch.randint(0, 32, (8,)), 'labels': torch.tensor(i % 2)} for i in range(16)]
args = TrainingArguments(output_dir=sys.argv[1], per_device_train_batch_size=4, num_train_epochs=2,
                         logging_steps=2, learning_rate=1e-3, report_to=['wandb', 'tensorboard'],
                         save_strategy='no', use_cpu=True, disable_tqdm=True)
Trainer(model=model, args=args, train_dataset=data).train()
"""


@pytest.mark.wandb
def test_a_hugging_face_trainer_reporting_to_wandb_and_tensorboard(lab, repo, tmp_path):
    pytest.importorskip("transformers")
    (repo / "hf.py").write_text(HF_TRAINER)
    lab("new-run", "hf_001", "--hypothesis", "h")
    lab("launch", "hf_001", "--no-commit", "--", sys.executable, "hf.py", str(tmp_path / "out"), timeout=300)
    record, rows, config, _ = attempt(repo, "hf_001")
    losses = table(rows, "train/loss")
    assert len(losses) == 4 and all(isinstance(value, float) for _, value in losses)  # 8 steps, every 2nd
    assert len([row for row in rows if "train/loss" in row]) == 4  # not once per source
    assert config["learning_rate"] == 0.001 and config["num_train_epochs"] == 2
    assert config["per_device_train_batch_size"] == 4
    assert record["wandb"]["started"] is True


def test_printed_lines_become_rows_with_a_pattern(lab, repo):
    (repo / "prints.py").write_text(
        "for step in range(1, 4):\n"
        "    print(f'step {step} loss {1.0 / step:.4f} lr 1e-4', flush=True)\n"
        "print('done; step 9 is not a metric line')\n")
    lab("new-run", "pr_001", "--hypothesis", "h")
    pattern = r"^step (?P<step>\d+) loss (?P<loss>\S+) lr (?P<lr>\S+)$"
    lab("launch", "pr_001", "--no-commit", "--metrics-pattern", pattern, "--", sys.executable, "prints.py")
    rows = attempt(repo, "pr_001")[1]
    assert table(rows, "loss") == [(1, 1.0), (2, 0.5), (3, 0.3333)] and table(rows, "lr")[0] == (1, 1e-4)
    bad = lab("launch", "pr_001", "--no-commit", "--metrics-pattern", "(unclosed", "--", sys.executable,
              "prints.py", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("lab: error: ") and len(bad.stderr.splitlines()) == 1


def test_the_shim_does_nothing_outside_the_lab_and_chains_an_existing_sitecustomize(tmp_path):
    site = Path(autolog.__file__).parent / "site"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS'] = 'ran'\n")
    code = "import argparse, os; print(hasattr(argparse.ArgumentParser.parse_known_args, '__wrapped__'), " \
        "os.environ['THEIRS'])"
    path = os.pathsep.join([str(site), str(theirs), str(Path(autolog.__file__).parents[3])])
    outside = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=lab_env(PYTHONPATH=path))
    assert outside.stdout.split() == ["False", "ran"]
    inside = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=lab_env(PYTHONPATH=path, LAB_ATTEMPT_DIR=str(tmp_path)))
    assert inside.stdout.split() == ["True", "ran"]


def test_nested_and_dotted_keys_are_kept_apart(lab, repo):
    script = ("import sys, wandb\nlr = float(sys.argv[1])\n"
              "wandb.init(config={'optim': {'lr': lr}, 'optim.lr': 0.1})\nwandb.log({'loss': lr})\n")
    (repo / "nested.py").write_text(script)
    lab("new-run", "nk_001", "--hypothesis", "h")
    lab("launch", "nk_001", "--no-commit", "--", sys.executable, "nested.py", "0.05")
    lab("new-run", "nk_002", "--from", "nk_001", "--hypothesis", "h")
    lab("launch", "nk_002", "--no-commit", "--", sys.executable, "nested.py", "0.5")
    assert lab("diff", "nk_002").stdout.splitlines()[:3] == ["nk_002 vs nk_001 (parent)", "[schedule]",
                                                              "  optim.lr: 0.05 -> 0.5"]


def test_steps_that_go_back_keep_every_row_and_draw_two_segments(lab, repo):
    (repo / "restart.py").write_text(
        "import wandb\nwandb.init()\n"
        "for step in [1, 2, 3, 4, 5, 3, 4, 5, 6]:  # restarted from the checkpoint of step 2\n"
        "    wandb.log({'train/loss': 1.0 / step}, step=step)\n")
    lab("new-run", "rr_001", "--hypothesis", "h")
    lab("launch", "rr_001", "--no-commit", "--", sys.executable, "restart.py")
    assert [step for step, _ in table(attempt(repo, "rr_001")[1], "train/loss")] == [1, 2, 3, 4, 5, 3, 4, 5, 6]
    lab("report", "rr_001")
    curves = (repo / "logs/reports/rr_001/curves.svg").read_text()
    assert curves.count("<polyline") == 2


def test_options_of_a_script_that_reports_no_config_are_typed(lab, repo):
    (repo / "plain.py").write_text("print('no argparse, no W&B')\n")
    lab("new-run", "pl_001", "--hypothesis", "h")
    lab("launch", "pl_001", "--no-commit", "--", sys.executable, "plain.py", "--compile=False", "--lr", "0.1",
        "--name", "x")
    assert attempt(repo, "pl_001")[2] == {"compile": False, "lr": 0.1, "name": "x"}


def test_a_script_whose_wandb_is_disabled_is_recorded_all_the_same(lab, repo):
    (repo / "off.py").write_text(
        "import wandb\nwandb.init(config={'lr': 0.1})\n"
        "for step in range(3):\n    wandb.log({'train/loss': 1.0 / (step + 1)})\n"
        "wandb.log({'val/loss': 0.4}, step=5)\n")
    lab("new-run", "ds_001", "--hypothesis", "h")
    env = {**lab_env(), "WANDB_MODE": "disabled"}
    lab("launch", "ds_001", "--no-commit", "--", sys.executable, "off.py", env=env)
    record, rows, config, _ = attempt(repo, "ds_001")
    assert table(rows, "train/loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)] and table(rows, "val/loss") == [(5, 0.4)]
    assert config == {"lr": 0.1} and record["wandb"] is None


def test_the_builtin_trainers_options_are_not_captured_as_config(lab, repo):
    pytest.importorskip("torch")
    lab("new-run", "nsd_001", "--preset", "tiny", "--set", "train.max_steps=4", "--hypothesis", "h")
    lab("launch", "nsd_001", "--no-commit", timeout=300)
    record, rows, config, _ = attempt(repo, "nsd_001")
    assert record["status"] == "finished" and rows
    assert config == json.loads((repo / "logs/runs/nsd_001/config.json").read_text())


def test_captured_rows_feed_the_live_health_checks(lab, repo):
    (repo / "nan.py").write_text(
        "import json, os, pathlib, wandb\nwandb.init()\n"
        "for step in range(3):\n    wandb.log({'train/loss': 1.0})\n"
        "wandb.log({'train/loss': float('nan')})\n"
        "events = pathlib.Path(os.environ['LAB_ROOT'], 'logs/runs/hl_001/events.jsonl')\n"
        "kinds = [json.loads(line)['kind'] for line in events.read_text().splitlines()]\n"
        "print('health events while running:', kinds.count('health'))\n")
    lab("new-run", "hl_001", "--hypothesis", "h")
    out = lab("launch", "hl_001", "--no-commit", "--", sys.executable, "nan.py")
    assert "health events while running: 1" in out.stdout
    assert "lab: health [non_finite] step 3" in out.stdout + out.stderr


@pytest.mark.light
def test_a_script_reports_its_config_and_a_disagreement_is_named(script_lab):
    lab = script_lab
    (lab.repo / "planned.json").write_text('{"hidden": 128}')
    lab("new-run", "sin_003", "--hypothesis", "h", "--config", "planned.json")
    result = lab("launch", "sin_003", "--no-commit", "--", sys.executable, "train.py", "--hidden", "16")
    assert "the script reports hidden=16 but the lab recorded 128" in result.stdout + result.stderr
    config = json.loads((Store(lab.repo).attempt_dir("sin_003", 1) / "config.json").read_text())
    assert config == {"hidden": 16, "lr": 0.1}


@pytest.mark.light
def test_a_scripts_command_line_is_its_config_when_it_reports_none(lab, repo):
    (repo / "plain.py").write_text("import sys\nprint(sys.argv[1:])\n")
    lab("new-run", "arg_001", "--hypothesis", "h")
    lab("launch", "arg_001", "--no-commit", "--", sys.executable, "plain.py", "--lr", "2e-4", "--accum=16", "--fast")
    config = json.loads((Store(repo).attempt_dir("arg_001", 1) / "config.json").read_text())
    assert config == {"lr": 0.0002, "accum": 16, "fast": True}
    lab("new-run", "arg_002", "--from", "arg_001", "--hypothesis", "h", "--set", "accum=32")
    lab("launch", "arg_002", "--no-commit", "--", sys.executable, "plain.py", "--lr", "2e-4", "--accum=32", "--fast")
    lab("log", "--all")
    daily = next((repo / "logs/daily").glob("*.md")).read_text()
    assert "`accum`: 16 → 32" in daily
