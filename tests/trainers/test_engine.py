"""Tests of the shared training engine, on the toy family of toy_family.py (and neural_decoder for the CLI).

In-process runs use CPU; the XLA path (PJRT_DEVICE=CPU) and the two-process accelerate launch run in
subprocesses, as the lab runs them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # toy_family is imported by name, here and in subprocesses

import toy_family  # noqa: E402

from lab import tracker  # noqa: E402
from lab.errors import ConfigError  # noqa: E402
from lab.families import registry  # noqa: E402
from lab.records.config import apply_overrides, from_dict, to_dict  # noqa: E402
from lab.records.store import Store  # noqa: E402
from trainers.__main__ import main  # noqa: E402
from trainers.family.config import OptimConfig  # noqa: E402
from trainers.engine import console  # noqa: E402
from trainers.engine.training import train  # noqa: E402
from trainers.family.launch import launch_command  # noqa: E402
from trainers.engine.optim import LearningRateSchedule, build_optimizer, parameter_groups  # noqa: E402


def reset_tracker() -> None:
    tracker.finish()


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    """The toy family registered, no lab attempt in the environment, and a fresh tracker."""
    registry.register(toy_family.SPEC)
    for name in ("LAB_ATTEMPT_DIR", "LAB_ARTEFACTS_DIR", "LAB_WANDB"):
        monkeypatch.delenv(name, raising=False)
    reset_tracker()
    yield
    reset_tracker()
    registry.unregister("toy")


def toy_config(*overrides: str) -> toy_family.Config:
    """The toy family's tiny preset with `key=value` overrides."""
    return from_dict(toy_family.Config, apply_overrides(to_dict(toy_family.tiny()), list(overrides)))


def run_toy(config, tmp_path: Path, name: str = "run", **options) -> tuple[dict, list[dict]]:
    """Train the toy family; returns the summary and every row handed to on_row."""
    rows = []
    stop_at = options.pop("stop_at", None)

    def on_row(row: dict) -> bool:
        rows.append(row)
        return row["step"] == stop_at

    summary = train("toy", config, out_dir=tmp_path / name, on_row=on_row, **options)
    return summary, rows


def train_rows(rows: list[dict]) -> list[dict]:
    return [row for row in rows if "train/loss" in row]


def load_checkpoint(tmp_path: Path, name: str, kind: str = "last") -> dict:
    return torch.load(tmp_path / name / "checkpoints" / f"{kind}.pt", weights_only=False)


# Schedules and parameter groups -------------------------------------------------------------------------------


def factors(schedule: str, max_steps: int = 20, **options) -> list[float]:
    optim = OptimConfig(lr=1.0, schedule=schedule, warmup_steps=4, lr_end=0.1, **options)
    plan = LearningRateSchedule(optim, max_steps)
    return [plan.factor(update) for update in range(max_steps)]


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine", "plateau"])
def test_warmup_is_linear_then_the_schedule_takes_over(schedule):
    values = factors(schedule)
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4] == pytest.approx(1.0)


def test_linear_and_cosine_decay_to_lr_end_at_the_last_step():
    linear, cosine = factors("linear"), factors("cosine")
    assert linear[-1] == pytest.approx(0.1) and cosine[-1] == pytest.approx(0.1)
    steps = [a - b for a, b in zip(linear[4:], linear[5:])]
    assert steps == pytest.approx([0.9 / 15] * 15)
    assert all(a >= b for a, b in zip(cosine[4:], cosine[5:]))
    assert cosine[4 + 15 // 2] > linear[4 + 15 // 2]  # cosine stays high longer than linear
    assert factors("constant")[-1] == 1.0


def test_plateau_cuts_after_patience_and_stops_at_lr_end():
    plan = LearningRateSchedule(
        OptimConfig(lr=1.0, schedule="plateau", plateau_factor=0.5, plateau_patience=2, lr_end=0.2), 100
    )
    history = []
    for improved in [True, False, False, False, True, False, False, False, False, False, False, False, False, False]:
        plan.observe(improved)
        history.append(plan.factor(50))
    assert history == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]


def test_apply_sets_every_group_and_skipped_updates_do_not_advance():
    model = toy_family.build_model(toy_family.tiny())
    settings = OptimConfig(lr=2.0, schedule="linear", warmup_steps=2, weight_decay=0.1)
    optimizer = build_optimizer(parameter_groups(model, settings), settings)
    plan = LearningRateSchedule(OptimConfig(lr=2.0, schedule="linear", warmup_steps=2), 10)
    assert plan.apply(optimizer) == pytest.approx(1.0)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([1.0, 1.0])
    plan.advance()
    assert plan.apply(optimizer) == pytest.approx(2.0)
    assert plan.apply(optimizer) == pytest.approx(2.0)


def test_biases_and_norms_never_decay_and_embeddings_only_when_asked():
    model = toy_family.build_model(toy_family.tiny())

    def decayed(**options) -> set[str]:
        groups = parameter_groups(model, OptimConfig(weight_decay=0.1, **options))
        assert sum(len(group["params"]) for group in groups) == len(list(model.parameters()))
        return {name for group in groups if group["weight_decay"] > 0 for name in group["param_names"]}

    assert decayed() == {"embed.weight", "body.weight", "head.weight"}
    assert decayed(no_decay_embed=True) == {"body.weight", "head.weight"}
    groups = parameter_groups(model, OptimConfig(weight_decay=0.1))
    assert {name for group in groups if group["weight_decay"] == 0 for name in group["param_names"]} == {
        "body.bias", "norm.weight", "norm.bias", "head.bias"
    }


def test_optimizers_and_a_clear_error_without_bitsandbytes():
    model = toy_family.build_model(toy_family.tiny())
    def optimizer(name: str):
        return build_optimizer(parameter_groups(model, OptimConfig(name=name)), OptimConfig(name=name))

    assert isinstance(optimizer("adam"), torch.optim.Adam)
    assert isinstance(optimizer("adamw"), torch.optim.AdamW)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="adamw8bit needs bitsandbytes: pip install bitsandbytes"):
            optimizer("adamw8bit")


# The loop -----------------------------------------------------------------------------------------------------


def adam_first_moment_norm(state: dict) -> float:
    """Global norm of Adam's exp_avg after one update: (1 - beta1) times the norm of the gradient it applied."""
    moments = [entry["exp_avg"] for entry in state["optimizer"]["state"].values()]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(m) for m in moments])).item()


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_grad_norm_is_logged_before_clipping_and_clipping_applies(tmp_path, clip):
    config = toy_config("train.max_steps=1", "train.eval_every=1", f"train.grad_clip={clip}", "optim.name=adam",
                         "optim.weight_decay=0")  # Adam couples weight decay into its moments
    _, rows = run_toy(config, tmp_path)
    logged = train_rows(rows)[0]["train/grad_norm"]
    applied = adam_first_moment_norm(load_checkpoint(tmp_path, "run")) / (1 - config.optim.betas[0])
    assert logged > 10 * 1e-3  # the logged norm is the one before clipping
    assert applied == pytest.approx(min(logged, clip) if clip else logged, rel=1e-3)


def test_a_non_finite_loss_skips_the_update_and_training_goes_on(tmp_path):
    config = toy_config(
        "data.poison_index=5", "train.max_steps=15", "train.eval_every=5", "optim.schedule=linear", "optim.lr_end=0.001"
    )
    summary, rows = run_toy(config, tmp_path)
    steps = train_rows(rows)
    skipped = [row for row in steps if not math.isfinite(row["train/loss"])]
    assert 1 <= len(skipped) == summary["skipped_steps"] and summary["steps"] == 15
    assert [row["train/skipped_steps"] for row in steps] == [
        sum(not math.isfinite(r["train/loss"]) for r in steps[: index + 1]) for index in range(len(steps))
    ]
    for row in skipped:  # the schedule did not advance on the skipped update
        following = steps[row["step"]]
        assert following["train/lr"] == pytest.approx(row["train/lr"])
    state = load_checkpoint(tmp_path, "run")
    assert all(torch.isfinite(tensor).all() for tensor in state["model"].values())
    adam_steps = {int(entry["step"]) for entry in state["optimizer"]["state"].values()}
    assert adam_steps == {15 - len(skipped)}
    assert math.isfinite(summary["final/train/loss"]) and math.isfinite(summary["final/val/loss"])


def test_best_checkpoint_follows_the_actual_metric_and_early_stopping(tmp_path):
    config = toy_config(
        "data.scripted=[5, 3, 4, 1, 2, 2, 2, 0]", "train.best_metric=val/scripted", "train.eval_every=2",
        "train.max_steps=40", "train.early_stop_patience=3",
    )
    summary, rows = run_toy(config, tmp_path)
    assert [row["val/scripted"] for row in rows if "val/scripted" in row] == [5, 3, 4, 1, 2, 2, 2]
    assert (summary["best_value"], summary["best_step"]) == (1, 8)
    assert summary["stopped_early"] and summary["stop_reason"] == "early_stop" and summary["steps"] == 14
    assert load_checkpoint(tmp_path, "run", "best")["progress"]["step"] == 8
    assert load_checkpoint(tmp_path, "run", "last")["progress"]["step"] == 14


def test_best_mode_max(tmp_path):
    config = toy_config(
        "data.scripted=[1, 3, 2]", "train.best_metric=val/scripted", "train.best_mode=max",
        "train.eval_every=2", "train.max_steps=6",
    )
    summary, _ = run_toy(config, tmp_path)
    assert (summary["best_value"], summary["best_step"], summary["stopped_early"]) == (3, 4, False)


def initial_weights(config) -> dict:
    torch.manual_seed(config.train.seed)  # what the engine does before build_model
    return {name: value.clone() for name, value in toy_family.build_model(config).state_dict().items()}


def test_frozen_prefixes_are_held_until_unfreeze_step(tmp_path):
    config = toy_config("train.frozen=[\"head\"]", "train.unfreeze_step=3", "train.eval_every=100")
    start = initial_weights(config)
    head_count = sum(start[name].numel() for name in ("head.weight", "head.bias"))
    config.train.max_steps = 2
    summary, _ = run_toy(config, tmp_path, "frozen")
    frozen = load_checkpoint(tmp_path, "frozen")["model"]
    assert all(torch.equal(frozen[name], start[name]) for name in ("head.weight", "head.bias"))
    assert not torch.equal(frozen["body.weight"], start["body.weight"])
    assert summary["trainable_param_count"] == summary["param_count"] - head_count  # still frozen at the end
    config.train.max_steps = 4
    summary, _ = run_toy(config, tmp_path, "released")
    assert not torch.equal(load_checkpoint(tmp_path, "released")["model"]["head.weight"], start["head.weight"])
    assert summary["trainable_param_count"] == summary["param_count"]


def test_a_frozen_prefix_matching_nothing_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="train.frozen prefix 'encoder' matches no parameter"):
        run_toy(toy_config("train.frozen=[\"encoder\"]"), tmp_path)


def test_resume_replays_the_straight_run_exactly(tmp_path):
    overrides = (
        "train.max_steps=12", "train.eval_every=4", "train.grad_accum=2", "optim.schedule=cosine",
        "optim.warmup_steps=3", "optim.lr_end=0.001", "model.dropout=0.3", "data.train_items=42",
    )
    _, straight = run_toy(toy_config(*overrides), tmp_path, "straight")
    first, head = run_toy(toy_config(*overrides), tmp_path, "interrupted", stop_at=6)
    assert first["steps"] == 6 and first["stop_reason"] == "on_row"
    resumed, tail = run_toy(
        toy_config(*overrides), tmp_path, "resumed", resume=tmp_path / "interrupted" / "checkpoints" / "last.pt"
    )
    assert resumed["steps"] == 12
    replayed = train_rows(head) + train_rows(tail)
    assert [row["step"] for row in replayed] == list(range(1, 13))
    for expected, actual in zip(train_rows(straight), replayed):
        for key in ("train/loss", "train/grad_norm", "train/lr"):
            assert actual[key] == pytest.approx(expected[key], abs=1e-6), (expected["step"], key)
    straight_state = load_checkpoint(tmp_path, "straight")["model"]
    resumed_state = load_checkpoint(tmp_path, "resumed")["model"]
    assert all(torch.allclose(straight_state[name], resumed_state[name], atol=1e-6) for name in straight_state)


def lab_attempt(tmp_path):
    """An open attempt of a run in a real lab at tmp_path/lab, and an artefacts folder."""
    store = Store.init(tmp_path / "lab")
    store.runs.create("toy_001", hypothesis="the engine records into the lab")
    attempt = store.attempts.begin("toy_001", command=["python", "-m", "trainers"], pid=os.getpid())
    return attempt, tmp_path / "artefacts"


def test_records_go_to_the_lab_attempt(tmp_path, monkeypatch):
    attempt, artefacts = lab_attempt(tmp_path)
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(attempt))
    monkeypatch.setenv("LAB_ARTEFACTS_DIR", str(artefacts))
    config = toy_config("train.max_steps=6", "train.eval_every=3", "train.log_every=2",
                        "optim.schedule=cosine", "optim.warmup_steps=2", "optim.lr_end=0.002")
    train("toy", config)
    reset_tracker()
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if "train/loss" in row]
    assert [row["step"] for row in steps] == list(range(1, 7))
    assert {"train/grad_norm", "train/lr", "train/skipped_steps", "train/abs_error"} <= set(steps[0])
    assert {"train/samples_per_s", "train/peak_mem_mb"} <= set(steps[1])
    assert steps[-1]["train/lr"] == pytest.approx(0.002) and steps[0]["train/lr"] == pytest.approx(0.005)
    assert [row["step"] for row in rows if "val/loss" in row] == [3, 6]
    summary = json.loads((attempt / "summary.json").read_text())
    for key in ("steps", "wall_s", "param_count", "samples_per_s", "peak_mem_mb", "skipped_steps", "best_metric",
                "best_value", "best_step", "stopped_early", "final/val/loss", "final/train/loss"):
        assert key in summary, key
    assert summary["param_count"] == sum(p.numel() for p in toy_family.build_model(config).parameters())
    recorded = json.loads((attempt / "attempt.json").read_text())["checkpoints"]
    assert recorded["last"]["path"] == str(artefacts / "checkpoints" / "last.pt") and recorded["last"]["step"] == 6
    assert recorded["best"]["step"] == summary["best_step"] and recorded["best"]["metric"] == "val/loss"
    assert (artefacts / "checkpoints" / "best.pt").is_file()


# Devices and processes (subprocesses) ------------------------------------------------------------------------


def subprocess_env(**extra: str) -> dict:
    """The environment of a subprocess that knows the toy family (through LAB_FAMILY_MODULES)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LAB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env[registry.FAMILY_MODULES_VARIABLE] = "toy_family"
    env.update(extra)
    return env


def test_the_xla_path_trains_on_the_cpu(tmp_path):
    script = (
        "import json, toy_family; from trainers.engine.training import train; "
        "config = toy_family.tiny(); config.train.device = 'xla'; config.train.max_steps = 3; "
        "config.train.eval_every = 3; config.train.grad_clip = 1.0; config.train.frozen = ['head']; "
        f"print(json.dumps(train('toy', config, out_dir={str(tmp_path)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(PJRT_DEVICE="CPU"), cwd=ROOT,
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0 and ("torch_xla does not import" in done.stderr or "needs torch_xla" in done.stderr):
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["device"].startswith("xla") and summary["steps"] == 3
    assert math.isfinite(summary["final/train/loss"]) and math.isfinite(summary["final/val/loss"])
    start = initial_weights(toy_family.tiny())
    held = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["model"]["head.weight"]
    assert torch.equal(held, start["head.weight"])  # frozen on XLA too, where prepare replaces the parameters
    head_count = sum(start[name].numel() for name in ("head.weight", "head.bias"))
    assert summary["trainable_param_count"] == summary["param_count"] - head_count


def tiny_decoder_config(path: Path, *overrides: str) -> Path:
    values = apply_overrides(registry.get("neural_decoder").preset("tiny"), [
        "train.device=cpu", "model.n_units=16", "model.n_layers=1", "data.synthetic_sentences_per_day=16",
        "train.batch_size=4", *overrides,
    ])
    path.write_text(json.dumps(values))
    return path


def test_two_processes_train_together_and_only_the_main_one_writes(tmp_path):
    attempt, artefacts = lab_attempt(tmp_path)
    config = tiny_decoder_config(tmp_path / "config.json", "train.max_steps=4", "train.eval_every=2")
    command = launch_command("neural_decoder", config, processes=2)
    done = subprocess.run(
        command, env=subprocess_env(LAB_ATTEMPT_DIR=str(attempt), LAB_ARTEFACTS_DIR=str(artefacts)),
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "train/loss" in row] == [1, 2, 3, 4]  # one writer
    assert [row["step"] for row in rows if "val/per" in row] == [2, 4]
    summary = json.loads((attempt / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert sorted(path.name for path in (artefacts / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


# The command line ---------------------------------------------------------------------------------------------


def test_launch_command_needs_no_torch():
    code = "import sys, trainers.family.launch, trainers.__main__; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
    assert launch_command("toy", "c.json") == [sys.executable, "-m", "trainers", "toy", "--config", "c.json"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nofamily"], "unknown family 'nofamily'"),
        (["toy", "--preset", "huge"], "unknown preset 'huge'"),
        (["toy", "--set", "train.nope=1"], "unknown override key 'train.nope'"),
        (["toy", "--set", "train.max_steps=many"], "expected an integer"),
        (["toy", "--set", "optim.schedule=step"], "optim.schedule='step' is not one of"),
        (["toy", "--set", 'train.stop_on=["nope"]'], "train.stop_on names unknown health rules ['nope']"),
        (["toy", "--config", "/nonexistent/config.json"], "config file /nonexistent/config.json does not exist"),
        (["toy", "--resume", "/nonexistent/last.pt"], "checkpoint not found"),
        (["toy", "--set", "train.precision=fp16", "--set", "train.device=cpu"], "fp16 (loss-scaled) needs CUDA"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_status_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_cli_unknown_key_in_a_config_file(tmp_path, capsys):
    values = to_dict(toy_family.tiny())
    values["train"]["speed"] = 3
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert main(["toy", "--config", str(tmp_path / "config.json")]) == 2
    assert "unknown config key 'train.speed'" in capsys.readouterr().err


def test_cli_mistyped_value_in_a_config_file_in_a_fresh_process(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"train": {"batch_size": "x"}}))
    done = subprocess.run(
        [sys.executable, "-m", "trainers", "neural_decoder", "--config", "bad.json"],
        env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "train.batch_size" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
def test_cli_cuda_without_cuda(capsys, tmp_path):
    assert main(["toy", "--set", "train.device=cuda", "--out", str(tmp_path)]) == 2
    assert "train.device=cuda but torch sees no CUDA device" in capsys.readouterr().err


def test_cli_missing_data_file_in_a_fresh_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainers", "neural_decoder", "--preset", "tiny",
         "--set", "data.source=/nonexistent/competitionData.pkl", "--set", "train.device=cpu", "--out", str(tmp_path)],
        env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "/nonexistent/competitionData.pkl" in done.stderr and "Traceback" not in done.stderr


# The family seam: evaluation stages, media, batching, parameter groups, starting weights ------------------------


def test_evaluation_stages_run_on_their_own_cadence_and_log_media(tmp_path, monkeypatch):
    attempt, artefacts = lab_attempt(tmp_path)
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(attempt))
    monkeypatch.setenv("LAB_ARTEFACTS_DIR", str(artefacts))
    train("toy", toy_config("train.max_steps=10", "train.eval_every=2", "data.probe_every=4"))
    reset_tracker()
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "val/loss" in row] == [2, 4, 6, 8, 10]
    assert [row["step"] for row in rows if "val/probe" in row] == [2, 4, 8, 10]  # first, every 4th, last
    samples = [json.loads(line) for line in (attempt / "samples.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in samples] == [2, 4, 8, 10]
    assert {entry["name"] for entry in samples} == {"probe/tone"} and samples[0]["sample_rate"] == 8000
    last = samples[-1]
    assert last["source"] == "training" and last["stored"] == "records" and last["file"].endswith("_step10.flac")
    assert last["seconds"] == 0.1 and 0.34 < last["rms"] < 0.36 and 0.49 < last["peak"] <= 0.5  # 0.5 sin: 0.5/sqrt 2
    data = (attempt / last["file"]).read_bytes()
    assert last["bytes"] == len(data) and last["sha256"] == hashlib.sha256(data).hexdigest()
    import soundfile

    sound, rate = soundfile.read(attempt / last["file"])
    assert rate == 8000 and sound.shape == (800,) and abs(sound[10] - 0.5 * math.sin(1.0)) < 1e-4


def test_a_stage_turned_off_never_runs(tmp_path):
    _, rows = run_toy(toy_config("train.max_steps=4", "train.eval_every=2"), tmp_path)
    assert not any("val/probe" in row for row in rows)


def test_validation_has_its_own_batch_size_and_collate(tmp_path):
    seen = []

    def val_collate(items):
        seen.append(len(items))
        return toy_family.collate(items)

    def build_data(config):
        bundle = toy_family.build_data(config)
        return dataclasses.replace(bundle, val_collate=val_collate, val_batch_size=5)

    spec = dataclasses.replace(toy_family.SPEC, build_data=build_data)
    train(spec, toy_config("train.max_steps=2", "train.eval_every=2"), out_dir=tmp_path)
    assert seen == [5, 5, 5, 1]  # 16 validation items in batches of 5, training batches of 4 never come here


def test_a_batch_sampler_orders_each_epoch_and_resume_replays_it(tmp_path):
    calls = []

    def in_order(dataset, batch_size, seed, epoch, rank, processes):
        calls.append(epoch)
        count = len(dataset) // batch_size
        order = list(range(len(dataset)))[::-1] if epoch % 2 else list(range(len(dataset)))
        return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]

    def build_data(config):
        return dataclasses.replace(toy_family.build_data(config), batch_sampler=in_order)

    spec = dataclasses.replace(toy_family.SPEC, build_data=build_data)
    overrides = ("train.max_steps=14", "train.eval_every=7", "model.dropout=0.0")
    train(spec, toy_config(*overrides), out_dir=tmp_path / "straight")
    assert set(calls) == {0, 1}  # 40 items in batches of 4: 10 batches an epoch
    train(spec, toy_config(*overrides), out_dir=tmp_path / "cut", on_row=lambda row: row["step"] == 7)
    train(spec, toy_config(*overrides), out_dir=tmp_path / "resumed", resume=tmp_path / "cut/checkpoints/last.pt")
    straight, resumed = load_checkpoint(tmp_path, "straight")["model"], load_checkpoint(tmp_path, "resumed")["model"]
    assert all(torch.allclose(straight[name], resumed[name], atol=1e-6) for name in straight)


def test_a_family_param_groups_hook_sets_its_own_rates(tmp_path):
    def head_apart(model, config):
        head = [p for name, p in model.named_parameters() if name.startswith("head")]
        rest = [p for name, p in model.named_parameters() if not name.startswith("head")]
        return [{"params": rest}, {"params": head, "lr": config.optim.lr * 10}]

    spec = dataclasses.replace(toy_family.SPEC, param_groups=head_apart)
    config = toy_config("train.max_steps=2", "train.eval_every=2", "optim.lr=0.001")
    train(spec, config, out_dir=tmp_path)
    groups = load_checkpoint(tmp_path, "")["optimizer"]["param_groups"]
    assert [group["lr"] for group in groups] == pytest.approx([0.001, 0.01])


def test_init_from_loads_weights_only_with_a_key_report(tmp_path, capsys):
    run_toy(toy_config("train.max_steps=4", "train.eval_every=4"), tmp_path, "first")
    source = tmp_path / "first" / "checkpoints" / "best.pt"
    summary, rows = run_toy(toy_config("train.max_steps=2", "train.eval_every=2", f"train.init_from={source}"),
                            tmp_path, "second")
    assert "init_from" in capsys.readouterr().out and summary["steps"] == 2  # progress starts over
    assert train_rows(rows)[0]["train/loss"] < 0.5 * run_toy(
        toy_config("train.max_steps=1", "train.eval_every=1"), tmp_path, "scratch")[1][0]["train/loss"]


def test_init_from_never_loads_a_mismatch_silently(tmp_path):
    run_toy(toy_config("train.max_steps=2", "train.eval_every=2"), tmp_path, "narrow")
    source = tmp_path / "narrow" / "checkpoints" / "last.pt"
    wide = toy_config("model.width=32", "train.max_steps=1", "train.eval_every=1", f"train.init_from={source}")
    with pytest.raises(ConfigError, match=r"loaded 1 of 7 model tensors shape-mismatched \(6\).*init_strict=false"):
        run_toy(wide, tmp_path, "wide")
    model = toy_family.build_model(wide)
    from trainers.engine.initial_weights import load_initial_weights

    report = load_initial_weights(model, str(source), strict=False)
    assert report.loaded == 1 and len(report.mismatched) == 6 and not report.missing and not report.unexpected
    assert "embed.weight ((4, 16) -> (4, 32))" in report.mismatched
    with pytest.raises(ConfigError, match="no key 'weights' in the file"):
        load_initial_weights(model, f"{source}:weights")
    with pytest.raises(ConfigError, match="weights file not found"):
        load_initial_weights(model, str(tmp_path / "nothing.pt"))


def test_resume_refuses_a_changed_model_in_one_line(tmp_path):
    run_toy(toy_config("train.max_steps=2", "train.eval_every=2"), tmp_path, "narrow")
    with pytest.raises(ConfigError, match="does not fit this config .* --resume continues the same model only"):
        run_toy(toy_config("model.width=32"), tmp_path, "wide", resume=tmp_path / "narrow/checkpoints/last.pt")


def test_loading_a_truncated_checkpoint_is_one_line(tmp_path):
    from trainers.engine import checkpoints

    path = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(ConfigError, match="cannot be read, damaged or truncated"):
        checkpoints.load(path)


def test_a_missing_wandb_costs_one_warning_not_the_run(tmp_path, monkeypatch, capsys):
    attempt, artefacts = lab_attempt(tmp_path)
    monkeypatch.setenv("LAB_ATTEMPT_DIR", str(attempt))
    monkeypatch.setenv("LAB_ARTEFACTS_DIR", str(artefacts))
    monkeypatch.setenv("LAB_WANDB", "1")
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    summary = train("toy", toy_config("train.max_steps=4", "train.eval_every=2"))
    reset_tracker()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "W&B" in line]
    assert len(warnings) == 1 and warnings[0].startswith("lab: warning: W&B is off")
    assert summary["steps"] == 4
    assert len((attempt / "metrics.jsonl").read_text().splitlines()) == 4 + 2


def test_python_m_trainers_resolves_a_partial_file_like_new_run(tmp_path):
    from trainers.__main__ import load_config

    (tmp_path / "partial.json").write_text(json.dumps({"train": {"max_steps": 5}}))
    config = load_config("neural_decoder", None, str(tmp_path / "partial.json"), [])
    expected = registry.get("neural_decoder").resolve(file_values={"train": {"max_steps": 5}})
    assert to_dict(config) == expected
    assert config.optim.name == "adam" and config.optim.lr == 0.02 and config.train.max_steps == 5


def test_without_a_terminal_training_prints_progress_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "PROGRESS_SECONDS", 0.0)  # every logged step, instead of every 10 s
    run_toy(toy_config("train.max_steps=4", "train.eval_every=4", "train.log_every=2"), tmp_path, "run")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("toy: step ")]
    assert [line.split(",")[0] for line in lines] == ["toy: step 2/4", "toy: step 4/4"]
    assert all(re.search(r", loss [\d.e-]+, lr [\d.e-]+, [\d.e+]+ samples/s, ETA (\d+m )?\d+s$", line)
               for line in lines)
