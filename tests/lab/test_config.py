"""Configs: dotted overrides typed by the current value, diffs grouped by component, a run's config from its family
preset, a file, its parent or the script's own report, and bad values refused before anything is written."""

import json
import re
import sys
import subprocess
import time
from pathlib import Path

import pytest

from lab.errors import ConfigError
from lab.records.config import apply_overrides, component_of, diff, flatten, from_dict, to_dict
from trainers.neural_decoder.config import Config, baseline, tiny


BASE = {"optim": {"lr": 0.02, "betas": [0.9, 0.999], "name": "adam"}, "train": {"grad_clip": 0.0, "steps": 10,
        "bf16": False}, "model": {"note": None}}


def test_overrides_are_parsed_to_the_type_of_the_current_value():
    result = apply_overrides(BASE, ["optim.lr=1e-3", "train.steps=20", "train.bf16=true", "optim.betas=[0.8, 0.9]",
                                    "optim.name=adamw", "model.note=anything"])
    assert result["optim"] == {"lr": 1e-3, "betas": [0.8, 0.9], "name": "adamw"}
    assert result["train"] == {"grad_clip": 0.0, "steps": 20, "bf16": True}
    assert result["model"]["note"] == "anything"
    assert BASE["optim"]["lr"] == 0.02, "the input is not modified"


@pytest.mark.parametrize("assignment, message", [
    ("train.steps=1.5", "expected an integer"),
    ("optim.lr=fast", "expected a number"),
    ("train.bf16=maybe", "expected a boolean"),
    ("optim.betas=0.9", "expected list"),
    ("optim.lrr=1", "unknown override key 'optim.lrr' (did you mean 'optim.lr'?); valid keys: model.note, optim.betas"),
    ("optim.lr", "not of the form key=value"),
])
def test_bad_overrides_are_refused_with_one_line(assignment, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        apply_overrides(BASE, [assignment])
    assert "\n" not in str(error.value)


def test_diff_is_key_level_and_grouped_by_component():
    after = apply_overrides(BASE, ["optim.lr=0.0015", "train.grad_clip=1.0", "optim.name=adamw"])
    changes = diff(BASE, after)
    assert [(c.component, c.key) for c in changes] == [
        ("schedule", "optim.lr"), ("optimizer", "optim.name"), ("clipping", "train.grad_clip"),
    ]
    assert changes[2].describe() == "train.grad_clip: 0.0 -> 1.0"
    assert diff(BASE, BASE) == []


def test_diff_reports_added_and_removed_keys():
    changes = diff({"a": 1}, {"b": 2})
    assert {(c.key, c.before, c.after) for c in changes} == {("a", 1, "(absent)"), ("b", "(absent)", 2)}


@pytest.mark.parametrize("key, component", [
    ("optim.lr", "schedule"), ("optim.warmup_steps", "schedule"), ("optim.weight_decay", "regularisation"),
    ("model.dropout", "regularisation"), ("data.white_noise_sd", "augmentation"), ("train.precision", "precision"),
    ("optim.eps", "optimizer"), ("model.n_units", "model"), ("data.source", "data"), ("train.max_steps", "bookkeeping"),
    ("train.eval_every", "bookkeeping"), ("train.batch_size", "training"),
])
def test_components(key, component):
    assert component_of(key) == component


def test_family_configs_round_trip_and_reject_unknown_keys():
    assert from_dict(Config, to_dict(tiny())) == tiny()
    values = to_dict(baseline())
    values["model"]["n_unit"] = 3
    with pytest.raises(ConfigError, match="unknown config key 'model.n_unit'"):
        from_dict(Config, values)
    assert flatten(to_dict(baseline()))["optim.eps"] == 0.1


def read(path):
    return json.loads(path.read_text())


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


def one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_wrapped_run_stores_its_config_file(lab, repo):
    (repo / "cfg.json").write_text('{"lr": 0.001, "batch": 4}')
    lab("new-run", "dia_016", "--config", "cfg.json", "--set", "batch=8", "--hypothesis", "h")
    assert read(repo / "logs/runs/dia_016/config.json") == {"lr": 0.001, "batch": 8}
    one_line_error(lab("diff", "dia_016", check=False), "no baseline or parent")


def test_a_partial_config_file_is_merged_into_the_family_preset(lab, repo):
    (repo / "short.json").write_text('{"train": {"max_steps": 5}}')
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--config", "short.json",
        "--hypothesis", "h")
    config = read(repo / "logs/runs/nsd_001/config.json")
    assert config["train"]["max_steps"] == 5 and config["train"]["batch_size"] == 16
    assert config["optim"]["lr"] == 3e-3


@pytest.mark.light
def test_a_scripts_run_continues_from_its_reported_config(script_lab):
    lab = script_lab
    lab("new-run", "sin_007", "--hypothesis", "h")
    lab("launch", "sin_007", "--no-commit", "--", sys.executable, "train.py", "--hidden", "32")
    lab("new-run", "sin_008", "--from", "sin_007", "--hypothesis", "wider", "--set", "hidden=64")
    assert json.loads((lab.repo / "logs/runs/sin_008/config.json").read_text()) == {"hidden": 64, "lr": 0.1}
    typo = lab("new-run", "sin_009", "--from", "sin_007", "--hypothesis", "h", "--set", "hiden=64", check=False)
    assert typo.returncode == 2 and "did you mean 'hidden'" in typo.stderr


def is_one_line_error(result) -> bool:
    return result.returncode == 2 and result.stderr.startswith("lab: error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("override", ["optim.lr=inf", "train.grad_clip=nan", "model.stride_len=0",
                                      "model.n_input_features=0", "model.stride_len=64"])
def test_a_bad_value_is_refused_before_anything_is_written(lab, override):
    result = lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h",
                 "--set", override, check=False)
    assert is_one_line_error(result) and override.split("=")[0] in result.stderr
    assert not (lab.repo / "logs/runs/nsd_001").exists()


def test_an_absurd_model_size_is_refused_in_bounded_time():
    from lab.runs import sizing
    from lab.errors import ConfigError
    from lab.families import registry

    values = registry.get("neural_decoder").resolve(preset="tiny", overrides=["model.n_layers=100000"])
    started = time.monotonic()
    with pytest.raises(ConfigError, match="took over 2 s to build"):
        sizing.parameter_counts("neural_decoder", [values], seconds=2)
    assert time.monotonic() - started < 30
    tiny = registry.get("neural_decoder").resolve(preset="tiny")
    assert sizing.parameter_counts("neural_decoder", [tiny]) == [sizing.parameter_count("neural_decoder", tiny)]


def test_a_size_is_computed_once_while_the_code_it_came_from_is_unchanged(tmp_path, monkeypatch):
    """`lab new-run` and `lab launch` size the model in a child that imports torch (seconds); the answer is kept
    per config and plan, and asked again only once a source file it came from has changed."""
    from lab.families import registry
    from lab.runs import sizing

    spec = registry.get("neural_decoder")
    tiny, wider = spec.resolve(preset="tiny"), spec.resolve(preset="tiny", overrides=["model.n_units=96"])
    two = {"processes": 2, "device_gb": None}
    counts, plan = sizing.sizes("neural_decoder", [tiny, wider], plan=two, cache=tmp_path)
    assert counts[0] < counts[1] and plan["processes"] == 2
    children = []
    real = sizing._in_child
    monkeypatch.setattr(sizing, "_in_child", lambda *args: children.append(args) or real(*args))
    assert sizing.sizes("neural_decoder", [wider], cache=tmp_path) == ([counts[1]], None)
    assert sizing.sizes("neural_decoder", [tiny], plan=two, cache=tmp_path) == ([counts[0]], plan)
    assert children == []
    one = sizing.sizes("neural_decoder", [tiny], plan={"processes": 1, "device_gb": None}, cache=tmp_path)[1]
    assert one["processes"] == 1 and len(children) == 1  # another number of devices is another plan
    entries = sorted(tmp_path.glob("*.json"))
    model_file = str(Path(__file__).parents[2] / "models" / "neural_decoder.py")
    for entry in entries:  # the model's file edited since: each answer is asked again
        record = json.loads(entry.read_text())
        assert model_file in record["sources"]
        record["sources"][model_file][0] -= 1
        entry.write_text(json.dumps(record))
    entries[0].write_text("{not json")
    assert sizing.sizes("neural_decoder", [tiny, wider], plan=two, cache=tmp_path) == (counts, plan)
    assert len(children) == 2


def test_a_second_lab_on_the_machine_reuses_the_size_and_a_family_from_another_file_is_sized_anew(
        lab, tmp_path, monkeypatch):
    from lab.families import registry
    from lab.runs import sizing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h")
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=other, check=True)
    lab("init", cwd=other)
    children = []
    real = sizing._in_child
    monkeypatch.setattr(sizing, "_in_child", lambda *args: children.append(args) or real(*args))
    created = lab("new-run", "nsd_001", "--family", "neural_decoder", "--preset", "tiny", "--hypothesis", "h",
                  cwd=other).stdout
    assert "parameters: " in created and children == []  # the first lab's answer, kept in the machine's cache
    assert registry.origin("neural_decoder").endswith("trainers/neural_decoder/spec.py")
    values = registry.get("neural_decoder").resolve(preset="tiny")
    kept = sizing._cache_key("neural_decoder", values)
    monkeypatch.setitem(registry._origins, "neural_decoder", str(tmp_path / "elsewhere" / "spec.py"))
    assert sizing._cache_key("neural_decoder", values) != kept  # a family of that name from another file
