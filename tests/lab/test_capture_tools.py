"""Scripts as researchers write them, recorded without an edit: a Hydra app, a Lightning module under its W&B and
TensorBoard loggers, a TensorBoard-only script, a notebook (an IPython kernel, nbclient), several W&B runs in one
script, and SLURM's ranks. Each script is a real process under a real `lab launch` in a fresh git repository."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lab_testing import git, lab_env, run_lab

from lab.records.store import Store


def attempt(repo: Path, run_id: str, number: int = 1) -> tuple[dict, list[dict], dict]:
    """(attempt.json, metric rows, config.json) of an attempt."""
    folder = Store(repo).attempt_dir(run_id, number)
    metrics = folder / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    config = folder / "config.json"
    return json.loads((folder / "attempt.json").read_text()), rows, json.loads(config.read_text()) \
        if config.exists() else {}


HYDRA_APP = """import hydra
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config")
def train(cfg: DictConfig) -> None:
    print("optimizer", cfg.optim.name, cfg.optim.lr, "model" in cfg)


if __name__ == "__main__":
    train()
"""
HYDRA_CONFIGS = {
    "config.yaml": "defaults:\n  - optim: adam\n  - data: small\n  - _self_\nseed: 0\nsteps: ${data.batches}\n",
    "optim/adam.yaml": "name: adam\nlr: 0.001\n",
    "optim/sgd.yaml": "name: sgd\nlr: 0.01\n",
    "data/small.yaml": "batches: 8\n",
    "model/big.yaml": "layers: 12\nwidth: 512\n",
}


def test_a_hydra_app_records_the_config_it_composed_and_its_outputs_stay_out_of_git(lab, repo):
    (repo / "train.py").write_text(HYDRA_APP)
    for name, text in HYDRA_CONFIGS.items():
        (repo / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "conf" / name).write_text(text)
    lab("new-run", "exp_001", "--hypothesis", "adam trains")
    lab("launch", "exp_001", "--", sys.executable, "train.py")
    lab("new-run", "exp_002", "--from", "exp_001", "--hypothesis", "sgd on a big model trains faster")
    out = lab("launch", "exp_002", "--", sys.executable, "train.py", "optim=sgd", "optim.lr=0.1", "+model=big")
    assert "optimizer sgd 0.1 True" in out.stdout
    assert attempt(repo, "exp_001")[2] == {"optim": {"name": "adam", "lr": 0.001}, "data": {"batches": 8},
                                            "seed": 0, "steps": 8}
    assert lab("diff", "exp_002").stdout.splitlines() == [
        "exp_002 vs exp_001 (parent)", "[schedule]", "  optim.lr: 0.001 -> 0.1", "[optimizer]",
        "  optim.name: adam -> sgd", "[model]", "  model.layers: (absent) -> 12", "  model.width: (absent) -> 512"]
    assert list(repo.glob("outputs/*/*/.hydra/config.yaml"))  # Hydra wrote its run folders ...
    tracked = git(repo, "ls-files").split()
    assert not [path for path in tracked if path.startswith(("outputs/", "multirun/"))]  # ... which git ignores
    assert "conf/model/big.yaml" in tracked


LIGHTNING = """import sys
import torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset


class Tiny(L.LightningModule):
    def __init__(self, lr=0.05, hidden=2):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, index):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


torch.manual_seed(0)
x = torch.linspace(-1, 1, 64).unsqueeze(1)
data = DataLoader(TensorDataset(x, 3 * x), batch_size=4)  # 16 steps an epoch
if sys.argv[1] == "wandb":
    logger = L.pytorch.loggers.WandbLogger(project="tiny")
else:
    logger = L.pytorch.loggers.TensorBoardLogger("tb")
trainer = L.Trainer(max_steps=60, log_every_n_steps=4, logger=logger, accelerator="cpu", enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False)
trainer.fit(Tiny(lr=0.05, hidden=3), data)
"""


@pytest.mark.wandb
def test_lightning_reads_the_same_steps_and_config_under_its_wandb_and_tensorboard_loggers(lab, repo):
    (repo / "fit.py").write_text(LIGHTNING)
    best = {}
    for run_id, logger in (("tl_001", "wandb"), ("tl_002", "tensorboard")):
        lab("new-run", run_id, "--hypothesis", f"a line fits under {logger}")
        lab("launch", run_id, "--", sys.executable, "fit.py", logger)
        record, rows, config = attempt(repo, run_id)
        assert config == {"lr": 0.05, "hidden": 3}  # save_hyperparameters(), through W&B's config or hparams
        assert [row["step"] for row in rows if "train/loss" in row] == list(range(3, 60, 4))  # the global step
        assert not [row for row in rows if "hp_metric" in row or "trainer/global_step" in row]
        report = (repo / lab("report", run_id).stdout.strip()).read_text()
        assert "hp_metric" not in report
        best[logger] = [line for line in report.splitlines() if line.startswith("- Best train/loss")]
    assert best["wandb"] == best["tensorboard"] and best["wandb"]
    assert attempt(repo, "tl_001")[0]["metric_axes"] == {"*": "trainer/global_step"}


NO_WANDB = {
    "tensorboard": "from torch.utils.tensorboard import SummaryWriter\n"
                   "writer = SummaryWriter('tb')\n"
                   "for step in range(5):\n    writer.add_scalar('train/loss', 1 / (step + 1), step)\n"
                   "writer.close()\n",
    "tensorboard hparams nan": "from torch.utils.tensorboard import SummaryWriter\n"  # a summary and a health alert
                               "writer = SummaryWriter('tb')\n"
                               "for step in range(5):\n"
                               "    loss = float('nan') if step == 4 else 1 / (step + 1)\n"
                               "    writer.add_scalar('train/loss', loss, step)\n"
                               "writer.add_hparams({'lr': 0.1, 'bs': 8}, {'hparam/acc': 0.9})\n"
                               "writer.close()\n",
    "printed": "for step in range(5):\n    print(f'step {step} loss {1 / (step + 1)}')\n",
    "tracker": "import sys\nsys.modules['wandb'] = None  # no W&B here: the tracker's copy cannot start\n"
               "from lab import tracker\n"
               "for step in range(5):\n    tracker.log(step, **{'train/loss': 1 / (step + 1)})\n",
}


@pytest.mark.wandb
@pytest.mark.parametrize("style", sorted(NO_WANDB))
def test_a_command_that_never_starts_wandb_gets_no_link_and_no_warning(lab, repo, style):
    (repo / "train.py").write_text(NO_WANDB[style])
    lab("new-run", "tb_001", "--hypothesis", f"logged by {style}")
    out = lab("launch", "tb_001", "--metrics-pattern", r"step (?P<step>\d+) loss (?P<loss>\S+)", "--",
              sys.executable, "train.py")
    record, rows, _ = attempt(repo, "tb_001")
    assert len(rows) == 5 and record["wandb"] is None
    assert "incomplete" not in out.stderr and "wandb.ai" not in lab("show", "tb_001").stdout
    report = (repo / lab("report", "tb_001").stdout.strip()).read_text()
    assert "wandb.ai" not in report and "pending sync" not in report


RUN_NOTEBOOK = """import sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": "."}}).execute()
print("ran", len(notebook.cells), "cells")
"""


def notebook(repo: Path, name: str, *cells: str) -> None:
    import nbformat

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells]), repo / name)
    (repo / "run_nb.py").write_text(RUN_NOTEBOOK)


def test_a_notebook_cell_that_raises_ends_the_attempt_as_a_script_would(lab, repo):
    init = "from lab import tracker\ntracker.init('exp_001')"
    notebook(repo, "explore.ipynb", init, "tracker.log(1, loss=0.5)\nraise RuntimeError('CUDA out of memory')",
             init, "tracker.log(1, loss=0.4)\nraise KeyboardInterrupt", init, "tracker.log(1, loss=0.3)")
    lab("new-run", "exp_001", "--hypothesis", "a notebook explores")
    ran = subprocess.run([sys.executable, "run_nb.py", "explore.ipynb"], cwd=repo, env=lab_env(),
                         capture_output=True, text=True, timeout=180)
    assert ran.stdout.strip() == "ran 6 cells", ran.stderr
    tests = [line.split()[:5] for line in lab("show", "exp_001").stdout.splitlines() if "test " in line]
    assert tests == [["test", "1:", "failed", "exit", "1"], ["test", "2:", "killed", "exit", "130"],
                     ["test", "3:", "finished", "exit", "0"]]
    assert [attempt(repo, "exp_001", number)[1][0]["loss"] for number in (1, 2, 3)] == [0.5, 0.4, 0.3]


def test_a_notebook_under_launch_records_no_kernel_arguments_as_config(lab, repo):
    notebook(repo, "train.ipynb", "from lab import tracker", "for step in range(3):\n"
             "    tracker.log(step, **{'train/loss': 1 / (step + 1)})")
    lab("new-run", "nb_001", "--hypothesis", "a notebook trains")
    for _ in range(2):
        out = lab("launch", "nb_001", "--", sys.executable, "run_nb.py", "train.ipynb", timeout=180)
        assert "ran 2 cells" in out.stdout
    for number in (1, 2):
        record, rows, config = attempt(repo, "nb_001", number)
        assert len(rows) == 3 and "connection_file" not in json.dumps(config), config
    assert "[config]" not in lab("diff", "nb_001:1", "nb_001:2").stdout


KFOLD = """import wandb
ids = []
for fold in range(3):
    run = wandb.init(project='cv', name=f'fold{fold}', config={'lr': 0.1})
    for step in range(4):
        run.log({'val/loss': 1.0 / (step + 1) + fold})
    ids.append(run.id)
    run.finish()
print('ids', *ids)
"""
CONCURRENT = """import wandb
first = wandb.init(project='cv', name='teacher', reinit='create_new')
second = wandb.init(project='cv', name='student', reinit='create_new')
for step in range(3):
    first.log({'loss': 1.0 / (step + 1)})
    second.log({'loss': 2.0 / (step + 1)})
first.finish()
second.finish()
print('ids', first.id, second.id)
"""


@pytest.mark.wandb
@pytest.mark.parametrize("script, names", [(KFOLD, ["fold0", "fold1", "fold2"]), (CONCURRENT, ["teacher", "student"])])
def test_every_wandb_run_of_a_script_is_its_own_run_listed_on_the_attempt(lab, repo, script, names):
    (repo / "cv.py").write_text(script)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    out = lab("launch", "cv_001", "--", sys.executable, "cv.py", timeout=90)
    ids = out.stdout.split("ids")[-1].split()
    record, rows, _ = attempt(repo, "cv_001")
    assert len(set(ids)) == len(names) and record["wandb"]["run_id"] == ids[0]  # the lab's id, the first run's
    others = record["wandb"]["others"]
    assert [(other["run_id"], other["name"], other["prefix"]) for other in others] == [
        (run_id, name, f"{name}/") for run_id, name in zip(ids[1:], names[1:])]
    for run_id in ids:  # each is a run of its own in W&B's folder
        assert list(repo.glob(f"**/wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    metric = "val/loss" if script is KFOLD else "loss"
    assert [row[metric] for row in rows if metric in row][:1] and all(
        [row[f"{name}/{metric}"] for row in rows if f"{name}/{metric}" in row] for name in names[1:])
    shown = lab("show", "cv_001").stdout
    for other in others:
        assert f"also W&B run {other['name']} (metrics as {other['name']}/...): {other['url']}" in shown
    report = (repo / lab("report", "cv_001").stdout.strip()).read_text()
    assert f"the script's other W&B runs: `{names[1]}` {others[0]['url']}" in report
    assert f"| {names[1]}/{metric} |" in report


RANKED = """import argparse, os
from lab import tracker
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
args = parser.parse_args()
rank = int(os.environ[os.environ['RANK_VARIABLE']])
for step in range(4):
    tracker.log(step, **{'train/loss': 1.0 / (step + 1) + rank})
print('rank', rank, 'done')
"""
FAKE_SRUN = """import os, subprocess, sys
# what `srun -n 2` (or mpirun -n 2) does: the same command twice, each task with its rank in the environment
variable = os.environ['RANK_VARIABLE']
local = {'SLURM_PROCID': 'SLURM_LOCALID', 'OMPI_COMM_WORLD_RANK': 'OMPI_COMM_WORLD_LOCAL_RANK',
         'PMI_RANK': 'MPI_LOCALRANKID'}[variable]
tasks = [subprocess.Popen(sys.argv[1:], env={**os.environ, variable: str(rank), local: str(rank)})
         for rank in range(2)]
sys.exit(max(task.wait() for task in tasks))
"""


@pytest.mark.light
@pytest.mark.parametrize("variable, batch_step", [
    ("SLURM_PROCID", {}), ("OMPI_COMM_WORLD_RANK", {}), ("PMI_RANK", {}),
    # mpirun inside an sbatch allocation: every rank inherits the batch step's SLURM_PROCID=0, SLURM_LOCALID=0
    ("OMPI_COMM_WORLD_RANK", {"SLURM_PROCID": "0", "SLURM_LOCALID": "0"}),
    ("PMI_RANK", {"SLURM_PROCID": "0", "SLURM_LOCALID": "0"})])
def test_only_rank_0_of_an_srun_or_mpirun_job_records_and_the_job_is_on_the_attempt(lab, repo, variable,
                                                                                     batch_step):
    (repo / "train.py").write_text(RANKED)
    (repo / "srun.py").write_text(FAKE_SRUN)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240", "SLURM_ARRAY_TASK_ID": "2",
             "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_NTASKS": "2", **batch_step}
    lab("new-run", "sl_001", "--hypothesis", "two tasks train as one")
    out = lab("launch", "sl_001", "--", sys.executable, "srun.py", sys.executable, "train.py", "--lr", "0.3",
              env=lab_env(RANK_VARIABLE=variable, **slurm))
    assert "rank 0 done" in out.stdout and "rank 1 done" in out.stdout
    record, rows, config = attempt(repo, "sl_001")
    assert [(row["step"], row["train/loss"]) for row in rows] == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25)]
    assert config == {"lr": 0.3}
    assert record["scheduler"] == {"slurm_job_id": "4242", "slurm_array_job_id": "4240", "slurm_array_task_id": "2",
                                   "slurm_nodelist": "gpu[01-02]", "slurm_ntasks": "2"}
    report = (repo / lab("report", "sl_001").stdout.strip()).read_text()
    assert "| train/loss | 0.25 |" in report  # rank 0's final, not rank 1's 1.25


def test_the_folds_of_a_script_whose_wandb_is_disabled_keep_their_rows_apart(lab, repo):
    (repo / "cv.py").write_text(KFOLD)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    lab("launch", "cv_001", "--", sys.executable, "cv.py")  # WANDB_MODE=disabled: no W&B run, no link
    record, rows, _ = attempt(repo, "cv_001")
    assert record["wandb"] is None
    finals = {key: value for row in rows for key, value in row.items() if key.endswith("val/loss")}
    assert finals == {"val/loss": 0.25, "fold1/val/loss": 1.25, "fold2/val/loss": 2.25}


HYDRA_UNRESOLVED = """import hydra
import wandb


@hydra.main(config_path="conf", config_name="config", version_base=None)
def train(cfg) -> None:
    run = wandb.init(project="hydra")
    for step in range(cfg.steps):
        run.log({"train/loss": 1.0 / (step + 1)})
    run.finish()


if __name__ == "__main__":
    train()
"""


def test_a_hydra_interpolation_that_does_not_resolve_is_kept_as_written_and_capture_goes_on(lab, repo):
    (repo / "train.py").write_text(HYDRA_UNRESOLVED)
    (repo / "conf").mkdir()
    (repo / "conf" / "config.yaml").write_text("data_dir: ${oc.env:LAB_TEST_UNSET_DATA_DIR}\nsteps: 3\n"
                                               "paths:\n  cache: ${data_dir}/cache\n  logs: logs\n")
    lab("new-run", "exp_001", "--hypothesis", "an unset variable the script never reads")
    out = lab("launch", "exp_001", "--", sys.executable, "train.py")
    assert "capture is off" not in out.stderr
    record, rows, config = attempt(repo, "exp_001")
    assert config == {"data_dir": "${oc.env:LAB_TEST_UNSET_DATA_DIR}", "steps": 3,
                      "paths": {"cache": "${data_dir}/cache", "logs": "logs"}}
    assert [row["train/loss"] for row in rows] == [1.0, 0.5, 1 / 3]


ONE_METRIC_ON_EPOCHS = """import wandb
run = wandb.init(project='cv', config={'lr': 0.1})
run.define_metric('val/acc', step_metric='epoch')
for epoch in range(3):
    for batch in range(2):
        run.log({'train/loss': 1.0 / (2 * epoch + batch + 1)})
    run.log({'val/acc': 0.5 + 0.1 * epoch, 'epoch': epoch})
run.finish()
"""


@pytest.mark.wandb
def test_an_axis_declared_for_one_metric_moves_no_rows_so_the_tables_read_every_metric_at_one_time(lab, repo):
    (repo / "cv.py").write_text(ONE_METRIC_ON_EPOCHS)
    lab("new-run", "cv_001", "--hypothesis", "accuracy climbs each epoch")
    lab("launch", "cv_001", "--", sys.executable, "cv.py")
    record, rows, _ = attempt(repo, "cv_001")
    assert [row["step"] for row in rows if "val/acc" in row] == [2, 5, 8]  # W&B's steps, as train/loss's
    assert [row["step"] for row in rows if "train/loss" in row] == [0, 1, 3, 4, 6, 7]
    assert record["metric_axes"] == {"val/acc": "epoch"}
    report = (repo / lab("report", "cv_001").stdout.strip()).read_text()
    assert "Best val/acc: **0.7** at step 8" in report


KFOLD_CONFIG_SUMMARY = """import wandb
for fold in range(3):
    run = wandb.init(project='cv', name=f'fold{fold}', config={'lr': 0.1, 'fold': fold})
    run.log({'val/acc': 0.7 + 0.01 * fold})
    run.config.update({'seen': fold})
    run.summary['best_acc'] = 0.7 + 0.01 * fold
    run.finish()
"""


@pytest.mark.wandb
def test_several_wandb_runs_keep_the_config_and_summary_the_readme_names(lab, repo):
    (repo / "cv.py").write_text(KFOLD_CONFIG_SUMMARY)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    lab("launch", "cv_001", "--", sys.executable, "cv.py", timeout=90)
    _, _, config = attempt(repo, "cv_001")
    summary = json.loads((Store(repo).attempt_dir("cv_001", 1) / "summary.json").read_text())
    assert config == {"lr": 0.1, "fold": 2, "seen": 2}  # fold 0's init config, then each run's updates, the last
    assert summary == {"best_acc": 0.72}  # one summary under plain keys: the last run's value
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "the first run's `wandb.init` config, then every later `run.config` update of any run" in " ".join(
        readme.split())


@pytest.mark.wandb
def test_several_wandb_runs_show_no_none_link_where_the_lab_knows_no_entity(repo, tmp_path):
    (repo / "cv.py").write_text(KFOLD)
    (tmp_path / "wandb-config").mkdir()
    env = lab_env(WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"))  # no W&B settings file: no entity

    def lab(*args: str) -> str:
        result = run_lab(*args, cwd=repo, env=env, timeout=90)
        assert result.returncode == 0, result.stderr
        return result.stdout

    lab("init", "--wandb-project", "cv")
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    lab("launch", "cv_001", "--", sys.executable, "cv.py")
    others = attempt(repo, "cv_001")[0]["wandb"]["others"]
    shown = lab("show", "cv_001")
    assert "None" not in shown
    assert (f"also W&B run fold1 (metrics as fold1/...), id {others[0]['run_id']} (no link: no W&B entity known)"
            in shown)
    report = (repo / lab("report", "cv_001").strip()).read_text()
    assert "None" not in report
    assert f"the script's other W&B runs: `fold1` run `{others[0]['run_id']}` (no link)" in report


TOOL_FOLDERS = """from pathlib import Path
for folder in ("outputs/2026-01-01/12-00-00", "multirun/2026-01-01/12-00-00", "lightning_logs/version_0"):
    Path(folder).mkdir(parents=True)
    (Path(folder) / "events.out.tfevents.1").write_text("written by a tool")
"""


@pytest.mark.light
def test_the_tools_run_folders_at_the_root_stay_out_of_launch_commits_but_code_folders_of_those_names_do_not(
        lab, repo):
    (repo / "train.py").write_text(TOOL_FOLDERS)
    for code in ("src/model/outputs/head.py", "runs/sweep.py"):
        (repo / code).parent.mkdir(parents=True, exist_ok=True)
        (repo / code).write_text("HEAD = 1\n")
    lab("new-run", "exp_001", "--hypothesis", "tools write their folders")
    lab("launch", "exp_001", "--", sys.executable, "train.py")
    tracked = git(repo, "ls-files").split()
    assert not [path for path in tracked if path.startswith(("outputs/", "multirun/", "lightning_logs/"))]
    assert "src/model/outputs/head.py" in tracked and "runs/sweep.py" in tracked


def test_a_notebook_log_after_a_failed_cell_says_once_that_the_attempt_ended(lab, repo):
    init = "from lab import tracker\ntracker.init('exp_001')"
    notebook(repo, "explore.ipynb", init, "tracker.log(1, loss=0.5)\nraise ValueError('bad batch')",
             "tracker.log(2, loss=0.3)", "tracker.log(3, loss=0.2)", init, "tracker.log(1, loss=0.1)")
    (repo / "run_nb.py").write_text(RUN_NOTEBOOK.replace(
        'print("ran", len(notebook.cells), "cells")',
        'print(json.dumps([[out.get("text", "") for out in cell.outputs if out.get("name") == "stderr"]'
        ' for cell in notebook.cells]))').replace("import sys", "import json, sys"))
    lab("new-run", "exp_001", "--hypothesis", "a notebook explores")
    ran = subprocess.run([sys.executable, "run_nb.py", "explore.ipynb"], cwd=repo, env=lab_env(),
                         capture_output=True, text=True, timeout=180)
    said = ["".join(texts) for texts in json.loads(ran.stdout.strip().splitlines()[-1])]
    ended = ("lab: warning: this row is not recorded: attempt 1 of exp_001 ended failed when a cell raised; "
             "run tracker.init again to open the next attempt\n")
    assert said[2] == ended and said[3] == "" and said[5] == ""
    assert [row["loss"] for row in attempt(repo, "exp_001", 2)[1]] == [0.1]


OTHER_WANDB_SETUP = """import sys
from wandb.sdk import wandb_setup
real = wandb_setup.singleton


def singleton(*args, **kwargs):  # a wandb whose process-wide settings are not where wandb 0.25 keeps them
    if sys._getframe(1).f_code.co_name == "forget_lab_identity":
        raise AttributeError("'_WandbSetup' object has no attribute 'settings'")
    return real(*args, **kwargs)


wandb_setup.singleton = singleton
"""


def test_a_wandb_without_the_settings_the_lab_clears_keeps_capture_on(lab, repo):
    (repo / "cv.py").write_text(OTHER_WANDB_SETUP + KFOLD)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    out = lab("launch", "cv_001", "--", sys.executable, "cv.py")
    said = out.stdout + out.stderr  # the script's own stderr
    assert "capture is off" not in said and "further W&B runs of this script may take the lab's W&B id" in said
    rows = attempt(repo, "cv_001")[1]
    finals = {key: value for row in rows for key, value in row.items() if key.endswith("val/loss")}
    assert finals == {"val/loss": 0.25, "fold1/val/loss": 1.25, "fold2/val/loss": 2.25}


UNNAMED_FOLDS = """import wandb
for fold in range(3):
    run = wandb.init(project='cv', group='cv', job_type=f'fold{fold}', name='fold' if fold else None)
    run.log({'val/acc': 0.7 + 0.01 * fold})
    run.finish()
"""


@pytest.mark.wandb
def test_further_wandb_runs_without_a_name_of_their_own_get_the_same_prefix_every_attempt(lab, repo):
    (repo / "cv.py").write_text(UNNAMED_FOLDS.replace("name='fold' if fold else None", "name=None"))
    (repo / "cv_named.py").write_text(UNNAMED_FOLDS)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    names = []
    for script in ("cv.py", "cv.py", "cv_named.py"):
        lab("launch", "cv_001", "--", sys.executable, script, timeout=90)
        names.append(sorted({key for row in attempt(repo, "cv_001", len(names) + 1)[1] for key in row} - {"step",
                                                                                                         "time"}))
    assert names[0] == names[1] == ["run2/val/acc", "run3/val/acc", "val/acc"]
    assert names[2] == ["fold-run3/val/acc", "fold/val/acc", "val/acc"]  # the second 'fold' by its order too


FOLD_PROCESS = """import sys
import wandb
fold = int(sys.argv[1])
run = wandb.init(project='cv', name=f'fold{fold}')
for step in range(3):
    run.log({'val/loss': 1.0 / (step + 1) + fold})
print('fold', fold, run.id)
run.finish()
"""
FOLD_DRIVER = """import subprocess, sys
for fold in range(3):  # a process per fold frees its GPU memory
    subprocess.run([sys.executable, 'fold.py', str(fold)], check=True)
"""


@pytest.mark.wandb
def test_folds_run_as_child_processes_take_the_lab_wandb_id_once(lab, repo):
    (repo / "fold.py").write_text(FOLD_PROCESS)
    (repo / "driver.py").write_text(FOLD_DRIVER)
    lab("new-run", "cv_001", "--hypothesis", "every fold agrees")
    out = lab("launch", "cv_001", "--", sys.executable, "driver.py", timeout=120)
    ids = [line.split()[2] for line in out.stdout.splitlines() if line.startswith("fold ")]
    record, rows, _ = attempt(repo, "cv_001")
    assert len(set(ids)) == 3 and record["wandb"]["run_id"] == ids[0] and record["wandb"]["name"] == "fold0"
    assert [(other["run_id"], other["prefix"]) for other in record["wandb"]["others"]] == [
        (ids[1], "fold1/"), (ids[2], "fold2/")]
    finals = {key: value for row in rows for key, value in row.items() if key.endswith("val/loss")}
    assert finals == {"val/loss": 1 / 3, "fold1/val/loss": 1 + 1 / 3, "fold2/val/loss": 2 + 1 / 3}
