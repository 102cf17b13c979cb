"""Scaling out: sharded training (train.parallel=fsdp) and the memory plan.

The sharded path runs in-process on one process (the toy family), and for real on two processes with gloo
(dia tiny), as `lab launch --processes 2` runs it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lab_testing import run_lab

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # toy_family is imported by name

import toy_family  # noqa: E402

from lab import tracker  # noqa: E402
from lab.families import registry  # noqa: E402
from lab.records.config import apply_overrides, from_dict, to_dict  # noqa: E402
from lab.records.store import Store  # noqa: E402
from trainers.engine.training import train  # noqa: E402
from trainers.family.context import Context  # noqa: E402
from trainers.family.launch import free_port, launch_command  # noqa: E402


@pytest.fixture
def toy(monkeypatch):
    registry.register(toy_family.SPEC)
    for name in ("LAB_ATTEMPT_DIR", "LAB_ARTEFACTS_DIR", "LAB_WANDB"):
        monkeypatch.delenv(name, raising=False)
    tracker.finish()
    yield
    tracker.finish()
    registry.unregister("toy")


def run_toy(tmp_path: Path, name: str, *overrides: str) -> tuple[dict, list[dict]]:
    config = from_dict(toy_family.Config, apply_overrides(to_dict(toy_family.tiny()), list(overrides)))
    rows = []
    summary = train("toy", config, out_dir=tmp_path / name, on_row=lambda row: rows.append(row) and False)
    return summary, [row for row in rows if "train/loss" in row]


def test_one_sharded_process_trains_as_the_unsharded_one_with_bf16_clipping_and_skips(tmp_path, toy):
    common = ("model.dropout=0", "data.poison_index=5", "train.max_steps=12", "train.eval_every=6",
              "train.grad_clip=0.05", "train.precision=bf16")
    plain, plain_rows = run_toy(tmp_path, "plain", *common)
    sharded, sharded_rows = run_toy(tmp_path, "sharded", *common, "train.parallel=fsdp")
    assert sharded["skipped_steps"] == plain["skipped_steps"] >= 1
    assert [row["train/skipped_steps"] for row in sharded_rows] == [row["train/skipped_steps"] for row in plain_rows]
    for mine, theirs in zip(sharded_rows, plain_rows):
        for key in ("train/loss", "train/grad_norm"):
            assert (math.isnan(mine[key]) and math.isnan(theirs[key])) or mine[key] == pytest.approx(theirs[key],
                                                                                                     rel=1e-5)
    assert all(row["train/grad_norm"] > 0.05 for row in sharded_rows if math.isfinite(row["train/grad_norm"]))
    state = torch.load(tmp_path / "sharded" / "checkpoints" / "last.pt", weights_only=False)
    assert state["parallel"] == "fsdp" and all(type(tensor) is torch.Tensor for tensor in state["model"].values())
    assert not torch.distributed.is_initialized()  # the one-process group is ended with the run


DIA_TINY = ("data.synthetic_clips=20", "data.sliding_window=false", "data.tag_shuffle=false",
            "train.unconditional_frac=0", "train.eval_every=2")  # no per-process randomness in the data


def train_dia(tmp_path: Path, name: str, processes: int, *overrides: str, resume: Path | None = None,
              variables: dict | None = None):
    """dia tiny trained as the lab launches it, into an attempt of its own; returns (training rows, summary,
    checkpoint folder)."""
    store = Store.init(tmp_path / name / "lab")
    store.runs.create("dia_001", hypothesis="sharding changes nothing but memory")
    attempt = store.attempts.begin("dia_001", command=["python", "-m", "trainers"], pid=os.getpid())
    values = apply_overrides(registry.get("dia").preset("tiny"), [*DIA_TINY, *overrides])
    config = tmp_path / name / "config.json"
    config.write_text(json.dumps(values))
    artefacts = tmp_path / name / "artefacts"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "WANDB_"))}
    env.update(LAB_ATTEMPT_DIR=str(attempt), LAB_ARTEFACTS_DIR=str(artefacts), WANDB_MODE="offline",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), **(variables or {}))
    done = subprocess.run(launch_command("dia", config, processes=processes, resume=resume), env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((attempt / "summary.json").read_text())
    return [row for row in rows if "train/loss" in row], summary, artefacts / "checkpoints"


@pytest.mark.slow
def test_two_sharded_processes_match_one_resume_exactly_and_consolidate(tmp_path):
    one, _, _ = train_dia(tmp_path, "one", 1, "train.batch_size=16", "train.max_steps=4")
    two, summary, _ = train_dia(tmp_path, "two", 2, "train.batch_size=8", "train.max_steps=4", "train.parallel=fsdp")
    assert summary["processes"] == 2 and [row["step"] for row in two] == [1, 2, 3, 4]
    for sharded, single in zip(two, one):  # the same global batch of 16, split over two processes
        assert sharded["train/loss"] == pytest.approx(single["train/loss"], rel=1e-4)
        assert sharded["train/grad_norm"] == pytest.approx(single["train/grad_norm"], rel=1e-3)  # the full norm

    _, _, halfway = train_dia(tmp_path, "half", 2, "train.batch_size=8", "train.max_steps=2", "train.parallel=fsdp")
    resumed, _, folder = train_dia(tmp_path, "resumed", 2, "train.batch_size=8", "train.max_steps=4",
                                   "train.parallel=fsdp", resume=halfway / "last.pt")
    assert [(row["step"], row["train/loss"], row["train/grad_norm"]) for row in resumed] == \
        [(row["step"], row["train/loss"], row["train/grad_norm"]) for row in two[2:]]

    state = torch.load(folder / "last.pt", weights_only=False)  # one file, the whole model
    spec = registry.get("dia")
    config = spec.build_config(state["config"])
    model = spec.build_model(config)
    model.load_state_dict(state["model"])  # strict: every key, full shapes, into the unsharded model
    data = spec.build_data(config)
    batches = [data.val_collate([data.val[index] for index in range(len(data.val))])]
    metrics = spec.evaluate(model.eval(), batches, Context(config=config, max_steps=4, artefacts=tmp_path))
    assert metrics["val/loss"] == pytest.approx(summary["final/val/loss"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch_xla") is None, reason="torch_xla is not installed")
def test_xla_spmd_on_a_four_device_mesh_matches_one_device_and_consolidates(tmp_path):
    xla = {"PJRT_DEVICE": "CPU"}
    one, _, _ = train_dia(tmp_path, "one", 1, "train.batch_size=16", "train.max_steps=2", "train.device=xla",
                          variables=xla)
    four, summary, folder = train_dia(tmp_path, "four", 1, "train.batch_size=16", "train.max_steps=2",
                                      "train.device=xla", "train.parallel=fsdp",
                                      variables={**xla, "CPU_NUM_DEVICES": "4"})
    for sharded, single in zip(four, one):  # one process drives four devices, the global batch split over them
        assert sharded["train/loss"] == pytest.approx(single["train/loss"], rel=1e-4)
        assert sharded["train/grad_norm"] == pytest.approx(single["train/grad_norm"], rel=1e-3)
    state = torch.load(folder / "last.pt", weights_only=False)
    spec = registry.get("dia")
    model = spec.build_model(spec.build_config(state["config"]))
    model.load_state_dict(state["model"])  # whole tensors, gathered from the mesh
    assert state["parallel"] == "fsdp" and summary["device"].startswith("xla")


# The memory plan ----------------------------------------------------------------------------------------------


def dia_config(*overrides: str, preset: str = "baseline"):
    spec = registry.get("dia")
    return spec, spec.build_config(apply_overrides(spec.preset(preset), list(overrides)))


def test_the_plan_of_the_1_6b_baseline_follows_the_exact_meta_count():
    spec, config = dia_config("optim.name=adamw", "train.precision=bf16", "train.device=cpu")
    with torch.device("meta"):
        model = spec.build_model(config)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert 1.5e9 < count < 1.7e9  # "1.6B"
    plan = spec.memory_plan(spec, config, processes=1, device_gb=16)
    assert plan["parameters"] == count
    assert (plan["weights"], plan["gradients"], plan["optimizer"]) == (4 * count, 4 * count, 8 * count)
    assert 25 < (plan["weights"] + plan["gradients"] + plan["optimizer"]) / 1e9 < 27  # "about 26 GB"
    assert plan["total"] == 16 * count + plan["activations"] and plan["activations"] > 0
    assert plan["device_bytes"] == 16e9 and plan["lines"][1].startswith("warning: the plan needs")

    config.train.parallel = "fsdp"
    sharded = spec.memory_plan(spec, config, processes=8, device_gb=16)
    layer = model.decoder_layers[0]
    largest = sum(parameter.numel() for parameter in layer.parameters())  # the decoder layer is the largest block
    assert sharded["weights"] == 4 * count / 8 + 2 * 4 * largest
    assert sharded["optimizer"] == 8 * count / 8 and sharded["activations"] == plan["activations"]
    assert len(sharded["lines"]) == 1  # fits: no warning

    config.optim.name = "adamw8bit"
    assert spec.memory_plan(spec, config, processes=8)["optimizer"] == 2 * count / 8


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_the_plan_of_tiny_is_near_the_measured_peak_of_a_step(precision):
    from trainers.sizing.tensor_memory import TensorMemory
    from trainers.engine.optim import build_optimizer, parameter_groups

    spec, config = dia_config("data.synthetic_clips=12", f"train.precision={precision}", preset="tiny")
    torch.manual_seed(0)
    model = spec.build_model(config)
    data = spec.build_data(config)
    batch = data.collate([data.train[index] for index in range(config.train.batch_size)])
    optimizer = build_optimizer(parameter_groups(model, config.optim), config.optim)
    with TensorMemory() as memory:  # what the step creates: activations, gradients, optimizer state
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = spec.training_loss(model, batch, Context(config=config, max_steps=1, artefacts=None))
        loss.backward()
        optimizer.step()
    plan = spec.memory_plan(spec, config)
    planned = plan["gradients"] + plan["optimizer"] + plan["activations"]  # the weights were there before
    assert 0.8 < memory.peak / planned < 1.25


# The lab: the plan at new-run and launch, two nodes making one attempt ----------------------------------------


def test_two_nodes_make_one_attempt_with_its_plan_and_one_metric_stream(tmp_path, family_lab, lab_environment):
    lab = family_lab("dia", "dia")
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "device_memory_gb": 16}))
    created = lab("new-run", "dia_001", "--hypothesis", "the 1.6B model fits one 16 GB chip")
    assert "memory plan per device (ddp x1, adamw8bit)" in created and "of 15,259 MiB (" in created
    assert "warning: the plan needs" in created and created.count("warning") == 1
    lab("new-run", "dia_002", "--preset", "tiny", "--hypothesis", "two nodes train as one",
        *(f"--set={value}" for value in (*DIA_TINY, "train.max_steps=2", "train.batch_size=4")))

    address = f"127.0.0.1:{free_port()}"
    outputs = [tmp_path / f"node{rank}.txt" for rank in (0, 1)]
    nodes = [subprocess.Popen(  # two launchers at once, as on two machines: a process each
        [sys.executable, "-m", "lab", "launch", "dia_002", "--nodes", "2", "--node-rank", str(rank),
         "--main-address", address], cwd=lab.repo, env=lab_environment, stdout=subprocess.DEVNULL,
        stderr=output.open("w")) for rank, output in zip((0, 1), outputs)]
    try:
        codes = [node.wait(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            node.kill()  # a node left waiting for a failed peer
    first, second = (output.read_text() for output in outputs)
    assert codes == [0, 0], first[-2000:] + second[-2000:]
    assert "lab: memory plan per device (ddp x2, adamw)" in first and "node 1 of 2: output in" in second

    attempts = lab.repo / "logs" / "runs" / "dia_002" / "attempts"
    folders = list(attempts.iterdir())
    assert len(folders) == 1  # node 1 wrote no records
    attempt = json.loads((folders[0] / "attempt.json").read_text())
    assert attempt["status"] == "finished" and attempt["nodes"]["count"] == 2
    assert attempt["memory_plan"]["processes"] == 2 and attempt["memory_plan"]["total"] > 0
    rows = [json.loads(line) for line in (folders[0] / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "train/loss" in row] == [1, 2]  # one stream, from global rank 0
    assert json.loads((folders[0] / "summary.json").read_text())["processes"] == 2
    logs = list(Path(attempt["nodes"]["logs"]).glob("node1_*.log"))
    assert len(logs) == 1 and "Rank 1" in logs[0].read_text()

    report = Path(lab("report", "dia_002").strip().splitlines()[-1]).read_text()
    assert "- Memory plan: " in report and "(ddp x2, adamw)" in report


@pytest.mark.parametrize("options, message", [
    (["--nodes", "2", "--node-rank", "2", "--main-address", "127.0.0.1:29500"], "--node-rank must lie in 0..1"),
    (["--nodes", "2"], "--nodes needs --main-address HOST:PORT"),
    (["--nodes", "0"], "--nodes must be at least 1"),
])
def test_bad_node_options_are_one_line_and_record_nothing(family_lab, options, message, lab_environment):
    lab = family_lab("dia", "dia")
    lab("new-run", "dia_001", "--preset", "tiny", "--hypothesis", "nodes")
    done = run_lab("launch", "dia_001", *options, cwd=lab.repo, env=lab_environment, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith(f"lab: error: {message}")
    assert done.stderr.count("\n") == 1
    assert not (lab.repo / "logs" / "runs" / "dia_001" / "attempts").exists()
