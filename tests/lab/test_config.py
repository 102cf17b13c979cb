import re

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
