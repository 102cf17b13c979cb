"""The family contract, checked on every registered family (a new family is covered by being registered).

For each family's `tiny` preset, shortened: the spec reads without torch and resolves its presets, the model
builds, a few steps train with finite losses, each evaluation stage returns its declared metrics, a resumed run
ends with the same weights as a straight one, and `train.init_from` loads the weights with a clean key report.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import toy_family  # noqa: E402

from lab import tracker  # noqa: E402
from lab.errors import ConfigError  # noqa: E402
from lab.families import registry  # noqa: E402
from lab.families.spec import FamilySpec  # noqa: E402
from lab.records.config import to_dict  # noqa: E402
from trainers.engine import checkpoints  # noqa: E402
from trainers.engine.initial_weights import load_initial_weights  # noqa: E402
from trainers.engine.training import train  # noqa: E402
from trainers.family.spec import stage_interval  # noqa: E402

FAMILIES = sorted({*registry.known(), toy_family.SPEC.name})
STEPS = 4  # two evaluations: at step 2 and at the end


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    for name in ("LAB_ATTEMPT_DIR", "LAB_ARTEFACTS_DIR", "LAB_WANDB"):
        monkeypatch.delenv(name, raising=False)
    registry.register(toy_family.SPEC)
    tracker.finish()
    yield
    tracker.finish()
    registry.unregister(toy_family.SPEC.name)


def short_config(spec: FamilySpec, *overrides: str):
    """The family's tiny preset on the CPU, cut to STEPS steps with an evaluation every 2."""
    values = spec.resolve(preset="tiny", overrides=[
        "train.device=cpu", f"train.max_steps={STEPS}", "train.eval_every=2", "train.log_every=1",
        "train.early_stop_patience=0", *overrides,
    ])
    return spec.build_config(values)


def run(spec, config, folder: Path, **options) -> tuple[dict, list[dict]]:
    rows: list[dict] = []
    stop_at = options.pop("stop_at", None)
    summary = train(spec, config, out_dir=folder, on_row=lambda row: rows.append(row) or row["step"] == stop_at,
                    **options)
    return summary, rows


@pytest.mark.parametrize("name", FAMILIES)
def test_spec_presets_and_validation(name):
    spec = registry.get(name)
    assert {"baseline", "tiny"} <= set(spec.presets())
    assert spec.provenance["baseline"]
    for preset in spec.presets():
        assert spec.resolve(preset=preset) == to_dict(spec.build_config(spec.preset(preset)))
    assert spec.stages()[0].name == "val" and spec.stages()[0].metrics == spec.eval_metrics
    with pytest.raises(ConfigError, match="unknown override key 'train.nope'"):
        spec.resolve(preset="tiny", overrides=["train.nope=1"])


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_trains_evaluates_resumes_and_initialises(name, tmp_path):
    spec = registry.get(name)
    config = short_config(spec)
    model = spec.build_model(config)
    assert sum(parameter.numel() for parameter in model.parameters()) > 0

    summary, rows = run(spec, config, tmp_path / "straight")
    losses = [row["train/loss"] for row in rows if "train/loss" in row]
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses)
    evaluated = {}
    for row in rows:
        if any(key.startswith("val/") for key in row):
            evaluated.setdefault(row["step"], set()).update(key for key in row if key != "step")
    assert sorted(evaluated) == [2, STEPS]
    for stage in spec.stages():
        if stage_interval(stage, config) > 0:
            assert set(stage.metrics) <= evaluated[STEPS], (stage.name, evaluated[STEPS])
    assert summary["best_metric"] in evaluated[STEPS]

    run(spec, short_config(spec), tmp_path / "interrupted", stop_at=2)
    run(spec, short_config(spec), tmp_path / "resumed", resume=tmp_path / "interrupted" / "checkpoints" / "last.pt")
    straight = checkpoints.load(tmp_path / "straight" / "checkpoints" / "last.pt")["model"]
    resumed = checkpoints.load(tmp_path / "resumed" / "checkpoints" / "last.pt")["model"]
    halfway = checkpoints.load(tmp_path / "interrupted" / "checkpoints" / "last.pt")["model"]
    assert straight.keys() == resumed.keys()

    def distance(a: dict, b: dict) -> float:
        return max((a[key].float() - b[key].float()).abs().max().item() for key in a)

    # Exact up to the float rounding of multithreaded CPU kernels: far closer than the last two steps moved.
    assert distance(straight, resumed) <= 1e-2 * distance(straight, halfway), (distance(straight, resumed),
                                                                               distance(straight, halfway))

    fresh = spec.build_model(config)
    report = load_initial_weights(fresh, str(tmp_path / "straight" / "checkpoints" / "best.pt"))
    assert report.clean and report.loaded == report.total == len(fresh.state_dict())
    best = checkpoints.load(tmp_path / "straight" / "checkpoints" / "best.pt")["model"]
    assert all(torch.equal(fresh.state_dict()[key], best[key]) for key in best)


def test_reading_every_spec_imports_no_torch():
    code = (
        "import sys; from lab.families import registry; from lab.health.diagnosis import rules_for; "
        "[registry.get(n).resolve(preset='tiny') for n in registry.known()]; "
        "[rules_for(registry.get(n)) for n in registry.known()]; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
