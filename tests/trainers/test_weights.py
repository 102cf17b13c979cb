"""Weights published with the original repositories load into this project's models and give the originals'
outputs: the fixtures under tests/fixtures/ were made with the original code (tests/fixtures/make_*.py)."""

import gzip
import json
import subprocess
from pathlib import Path

import pytest
import torch
from lab_testing import run_lab
from tolerances import assert_equal_up_to_rounding

from lab.errors import ConfigError
from lab.families import registry
from lab.records import config as config_tools
from trainers.formats import weights
from trainers.engine.initial_weights import load_initial_weights

FIXTURES = Path(__file__).parents[1] / "fixtures"
ND = FIXTURES / "neural_decoder"
DIA = FIXTURES / "dia"
# The fixtures' logits and embeddings are float32, made on one CPU by the original code; this code's float32 result
# on another CPU differs in the last bits, so each comparison allows tests/tolerances.py's rounding bound for its
# depth, and each says by how much that clears the fixture's own rounding (its distance from this code run in
# float64) and by how much a wrong implementation exceeds it.
ND_DEPTH = 5  # the smoothing, the day layer, 2 GRU layers, the output layer
# Tolerance 3.8e-5 (logits up to 0.5): 440x the fixture's own rounding (8.6e-8); the smoothing padded on the wrong
# side gives 5.6e-2.
DIA_DEPTH = 5  # 2 encoder and 2 decoder layers, the head
# Tolerance 4e-4 (logits up to 5.6): 11x the 0626 fixture's own rounding (3.6e-5; 1.5e-5 for v1) and 39x the 1.05e-5
# that another CPU showed; ten times the norms' epsilon gives 3.6e-2, cross-attention RoPE on above 1e-2.


def model_for(family: str, path: Path, *overrides: str, skip: tuple[str, ...] = ()):
    """The family's tiny model resized to the file's (its config as the converter reads it; unchecked, as a small
    original may lie outside the family's limits, e.g. a 40-token Dia vocabulary)."""
    spec = registry.get(family)
    converted = weights.convert(weights.read(path))
    settings = [setting for setting in weights.assignments(converted) if setting.split("=")[0] not in skip]
    values = config_tools.apply_overrides(spec.preset("tiny"), [*settings, *overrides])
    return spec.build_model(config_tools.from_dict(spec.config.Config, values)).eval()


def lab(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_lab(*args, cwd=cwd)


def test_neural_decoder_checkpoint_gives_the_originals_logits():
    model = model_for("neural_decoder", ND / "modelWeights", "model.dropout=0.0")
    report = load_initial_weights(model, str(ND / "modelWeights"))
    assert report.format == "cffan/neural_seq_decoder GRUDecoder state dict" and report.clean
    assert report.loaded == report.total and len(report.dropped) == 6  # 3 days of unused inpLayer weight + bias
    assert "(cffan/neural_seq_decoder GRUDecoder state dict): loaded 21 of 21" in report.describe()
    expected = torch.load(ND / "expected.pt")
    with torch.no_grad():
        logits = model(expected["features"], expected["day"])  # (B, T', n_classes + 1)
    assert_equal_up_to_rounding(logits, expected["logits"], ND_DEPTH)


def test_neural_decoder_config_comes_from_the_shapes_and_the_args_file():
    converted = weights.convert(weights.read(ND / "modelWeights"), "neural_decoder")
    assert converted.config == {"model.n_input_features": 8, "model.n_days": 3, "model.n_units": 16,
                                "model.n_layers": 2, "model.bidirectional": True, "model.kernel_len": 4,
                                "model.n_classes": 40, "model.stride_len": 2, "model.gaussian_smooth_width": 2.0}


def dia_logits(model, expected: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(expected["text"], expected["tokens"], expected["text_mask"])  # (B, T, C, V)


def test_dia_first_release_gives_the_originals_logits_and_unconditional_input():
    from models.dia import unconditional

    path = DIA / "v1" / "dia-v0_1.pth"
    model = model_for("dia", path)
    report = load_initial_weights(model, str(path))
    assert report.format == "nari-labs/dia Dia-1.6B first release" and report.clean and not report.settings
    expected = torch.load(DIA / "v1" / "expected.pt")
    assert_equal_up_to_rounding(dia_logits(model, expected), expected["logits"], DIA_DEPTH)
    # row 1 is the original's unconditional input for row 0's condition
    empty, mask = unconditional(expected["text"][:1], expected["text_mask"][:1])
    with torch.no_grad():
        logits = model(empty, expected["tokens"][:1], mask)
    assert_equal_up_to_rounding(logits[0], expected["logits"][1], DIA_DEPTH)
    assert not torch.allclose(logits[0], expected["logits"][0], atol=1e-2)


def test_dia_0626_weights_turn_cross_attention_rope_off_on_import():
    path = DIA / "0626" / "model.safetensors"
    expected = torch.load(DIA / "0626" / "expected.pt")
    assert weights.file_settings(str(path)) == {"model.cross_rope": "false"}  # what lab new-run --init-from sets
    model = model_for("dia", path)
    report = load_initial_weights(model, str(path))
    assert report.format == "nari-labs/dia Dia-1.6B-0626" and report.clean and not report.settings
    assert not model.config.cross_rope
    assert_equal_up_to_rounding(dia_logits(model, expected), expected["logits"], DIA_DEPTH)
    rope = model_for("dia", path, skip=("model.cross_rope",))  # built with the default: RoPE on
    report = load_initial_weights(rope, str(path))  # the run's own setting is kept, and said to differ
    assert rope.config.cross_rope and report.settings == {"model.cross_rope": False}
    assert "the run's own settings kept (they carry no weights); the file's model has: model.cross_rope=False" \
        in report.describe()
    assert (dia_logits(rope, expected) - expected["logits"]).abs().max() > 1e-2


def test_full_size_dia_key_set_converts_with_no_key_left_over():
    """Every key and shape of the full Dia-1.6B (from the original's config, on the meta device) maps onto the
    baseline preset's model."""
    shapes = json.loads((DIA / "v1" / "full_keys.json").read_text())
    with torch.device("meta"):
        original = weights.Original(Path("dia-v0_1.pth"), "torch.save",
                                    {name: torch.empty(shape) for name, shape in shapes.items()})
        converted = weights.convert(original, "dia")
        spec = registry.get("dia")
        expected = spec.build_model(spec.build_config(spec.preset("baseline"))).state_dict()
    got = {name: tuple(value.shape) for name, value in converted.weights.items()}
    assert got == {name: tuple(value.shape) for name, value in expected.items()}
    assert converted.config["model.dec_layers"] == 18 and converted.config["model.vocab"] == 1028


def test_weights_inspect_and_convert_commands(tmp_path):
    inspected = lab(tmp_path, "weights", "inspect", str(DIA / "0626" / "model.safetensors"))
    assert inspected.returncode == 0, inspected.stderr
    assert "family: dia" in inspected.stdout and "format: nari-labs/dia Dia-1.6B-0626" in inspected.stdout
    assert "model.cross_rope=false" in inspected.stdout and "safetensors, 49 tensors" in inspected.stdout

    out = tmp_path / "nd.safetensors"
    converted = lab(tmp_path, "weights", "convert", str(ND / "modelWeights"), "--family", "neural_decoder",
                    "--out", str(out))
    assert converted.returncode == 0, converted.stderr
    assert "--set model.n_units=16" in converted.stdout and out.is_file()
    again = lab(tmp_path, "weights", "inspect", str(out))
    assert "family: neural_decoder" in again.stdout and "format: this project's keys, converted from " \
        "cffan/neural_seq_decoder GRUDecoder state dict" in again.stdout
    model = model_for("neural_decoder", ND / "modelWeights", "model.dropout=0.0")
    report = load_initial_weights(model, str(out))
    assert report.format == "lab" and report.clean
    expected = torch.load(ND / "expected.pt")
    with torch.no_grad():
        assert_equal_up_to_rounding(model(expected["features"], expected["day"]), expected["logits"], ND_DEPTH)

    wrong = lab(tmp_path, "weights", "convert", str(ND / "modelWeights"), "--family", "dia", "--out",
                str(tmp_path / "x.pt"))
    assert wrong.returncode != 0 and not (tmp_path / "x.pt").exists()
    assert wrong.stderr.strip().splitlines() == [
        f"lab: error: {ND / 'modelWeights'} is cffan/neural_seq_decoder GRUDecoder state dict, a neural_decoder "
        "file, not dia"]
    missing = lab(tmp_path, "weights", "inspect", str(tmp_path / "none.pth"))
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [
        f"lab: error: weights file not found: {tmp_path / 'none.pth'}"]


def test_a_directory_or_a_file_that_is_no_checkpoint_is_one_error_line(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    for name, error in [("weights", f"{tmp_path / 'weights'} is a directory: name the weights file in it"),
                        ("notes.pt", f"{tmp_path / 'notes.pt'}: cannot read it (invalid load key, 'n'.)"),
                        ("list.pt", f"{tmp_path / 'list.pt'}: the file holds no state dict of tensors; name one "
                                    "with PATH:KEY")]:
        result = lab(tmp_path, "weights", "inspect", str(tmp_path / name))
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"lab: error: {error}"], name
    out = lab(tmp_path, "weights", "convert", str(ND / "modelWeights"), "--family", "neural_decoder", "--out",
              str(tmp_path / "weights"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"lab: error: --out {tmp_path / 'weights'} is a directory: name the file to write"]
    assert not list((tmp_path / "weights").iterdir()) and sorted(path.name for path in tmp_path.iterdir()) == \
        ["list.pt", "notes.pt", "weights"]


def test_a_model_of_other_sizes_refuses_the_file_and_names_the_sizes_it_needs():
    spec = registry.get("neural_decoder")
    model = spec.build_model(spec.build_config(spec.preset("tiny")))
    with pytest.raises(ConfigError, match=r"\(cffan/neural_seq_decoder GRUDecoder state dict\): loaded .*"
                                          r"--set model.n_input_features=8 .*init_strict=false"):
        load_initial_weights(model, str(ND / "modelWeights"))


def test_new_run_init_from_an_original_checkpoint_trains_from_it(family_lab):
    lab_run = family_lab("nsd", "neural_decoder")
    converted = weights.convert(weights.read(ND / "modelWeights"))
    sizes = [option for setting in weights.assignments(converted) for option in ("--set", setting)]
    lab_run("new-run", "nsd_001", "--preset", "tiny", "--hypothesis", "fine-tune the original's weights", *sizes,
            "--set", "data.synthetic_days=3", "--set", "data.synthetic_sentences_per_day=4",
            "--set", "train.batch_size=4", "--set", "train.max_steps=1", "--set", "train.eval_every=1",
            "--init-from", str(ND / "modelWeights"))
    launched = lab_run("launch", "nsd_001")
    assert f"init_from {ND / 'modelWeights'} (cffan/neural_seq_decoder GRUDecoder state dict): loaded 21 of 21" \
        in launched
    events = [json.loads(line) for line in (lab_run.repo / "logs/runs/nsd_001/events.jsonl").read_text().splitlines()]
    report = next(event for event in events if event["kind"] == "init_from")
    assert report["format"] == "cffan/neural_seq_decoder GRUDecoder state dict" and report["loaded"] == 21


MEL_DEPTH = 15  # pre-emphasis, the window, 9 FFT stages (512 points), the power, the mel filters, the log, the mean
# Tolerance 1.2e-3 nats (features up to 5.4): 9x the fixture's own rounding (1.4e-4) and 7.8x the 1.6e-4 that another
# CPU showed; a Hann window gives 1.9 nats, a pre-emphasis of 0.96 1.4, a floor of 1e-5 0.5.


def redimnet_depth(model) -> int:
    """The steps of a redimnet embedding: its front end's and one for each Conv and Linear layer (an upper bound
    on the longest chain through the stages' branches). Tolerances 2.4e-4 to 5.8e-4 for the fixtures' embeddings
    (up to 0.95): 40x the largest difference this code shows (8.7e-6, hub-conv.pt's 2-D convolutions; the
    fixtures' own rounding is 4e-6 at most); a Hann window in the front end gives 6.7e-3 to 2e-2, wespeaker's
    Kaldi features with the Povey window 3.3e-3."""
    layers = sum(isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))
                 for module in model.backbone.modules())
    return MEL_DEPTH + layers


def test_redimnet_front_end_and_pooling_compute_as_the_original():
    from models.redimnet import AttentiveStatsPooling, MelFrontEnd

    original = torch.load(FIXTURES / "redimnet" / "features.pt")
    with torch.no_grad():
        features = MelFrontEnd(72)(original["waveform"])  # (B, 72, frames)
    assert_equal_up_to_rounding(features, original["features"], MEL_DEPTH)  # log-mel, in nats
    pooling = torch.load(FIXTURES / "redimnet" / "pooling.pt")
    pool = AttentiveStatsPooling(24)
    pool.load_state_dict({name.replace("linear1", "attention.0").replace("linear2", "attention.2"): value
                          for name, value in pooling["state_dict"].items()})
    with torch.no_grad():
        # depth 4: 2 attention layers, the softmax, the weighted statistics; tolerance 7.9e-5 (outputs up to 1.3):
        # 140x the fixture's own rounding (5.8e-7)
        assert_equal_up_to_rounding(pool(pooling["input"]), pooling["output"], 4)


REDIMNET = FIXTURES / "redimnet"
HUB_FILES = ("hub-small.pt", "hub-options.pt", "hub-conv.pt", "hub-fc.pt")


def redimnet_model(path: Path):
    """The redimnet model the file's stored config describes (Matryoshka dims: the embedding's own width)."""
    converted = weights.convert(weights.read(path))
    return model_for("redimnet", path, f"model.mrl_dims=[{converted.config['model.embed_dim']}]")


@pytest.mark.parametrize("name", HUB_FILES)
def test_idrnd_hub_checkpoints_give_the_originals_embeddings_from_waveform(name):
    """IDRnD's ReDimNetWrap, small configurations of each option (tests/fixtures/make_redimnet.py), imported with
    the config stored in the file: the embedding of a waveform is the original's up to float32 rounding."""
    model = redimnet_model(REDIMNET / name)
    report = load_initial_weights(model, str(REDIMNET / name))
    assert report.format == "IDRnD/ReDimNet torch.hub checkpoint" and report.clean
    assert report.fresh == ["head.weight"] and "backbone.stage0.0.w" in report.dropped
    waveform = torch.load(REDIMNET / "features.pt")["waveform"]  # (B, samples)
    expected = torch.load(REDIMNET / "expected.pt")[name]  # (B, embed_dim)
    with torch.no_grad():
        embeddings = model.eval()(waveform)
    assert_equal_up_to_rounding(embeddings, expected, redimnet_depth(model))


def test_an_idrnd_hub_checkpoint_names_its_config_and_its_settings(tmp_path):
    path = REDIMNET / "hub-small.pt"
    result = lab(tmp_path, "weights", "inspect", str(path))
    assert result.returncode == 0, result.stderr
    assert "family: redimnet" in result.stdout and "format: IDRnD/ReDimNet torch.hub checkpoint" in result.stdout
    assert "model.block_type=basic_resnet_fwse model.block_1d_type=conv+att model.group_divisor=2 " \
        "model.stages=[[1,1,2,0],[2,2,1,2],[3,1,2,2]] model.embed_dim=16 model.hop_length=240" in result.stdout
    options = weights.convert(weights.read(REDIMNET / "hub-options.pt"))
    assert {name: options.config[name] for name in ("model.block_1d_type", "model.out_channels",
                                                     "model.global_context", "model.embedding_norm")} == \
        {"model.block_1d_type": "att", "model.out_channels": 20, "model.global_context": False,
         "model.embedding_norm": True}
    assert "cls_head.2.weight" in options.dropped  # the original's classifier; the lab trains its own head
    shown = lab(tmp_path, "weights", "inspect", str(REDIMNET / "hub-options.pt")).stdout
    assert "left out: 4 tensors (constants, unused layers, the original's training head): backbone.stage0.0.w, " \
        "cls_head.2.bias, cls_head.2.weight ...\n" in shown

    # a model built at another hop keeps its own (the hop carries no weights) and the report names the file's
    other = model_for("redimnet", path, "model.mrl_dims=[16]", skip=("model.hop_length",))
    report = load_initial_weights(other, str(path))
    assert report.settings == {"model.hop_length": 240} and other.config.hop_length == 160
    assert "the file's model has: model.hop_length=240" in report.describe()
    model = model_for("redimnet", path, "model.mrl_dims=[16]")
    assert not load_initial_weights(model, str(path)).settings
    waveform = torch.load(REDIMNET / "features.pt")["waveform"]
    with torch.no_grad():
        embeddings = model.eval()(waveform)
    assert_equal_up_to_rounding(embeddings, torch.load(REDIMNET / "expected.pt")["hub-small.pt"],
                                redimnet_depth(model))

    out = tmp_path / "small.safetensors"
    converted = lab(tmp_path, "weights", "convert", str(path), "--family", "redimnet", "--out", str(out))
    assert converted.returncode == 0, converted.stderr
    assert "--set model.hop_length=240" in converted.stdout
    report = load_initial_weights(redimnet_model(path), str(out))
    assert report.format == "lab" and report.clean and report.fresh == ["head.weight"]


def test_an_idrnd_config_this_lab_cannot_build_is_one_error_line(tmp_path):
    stored = torch.load(REDIMNET / "hub-fc.pt")
    path = tmp_path / "b6-new.pt"
    torch.save({"model_config": {**stored["model_config"], "feat_type": "tf", "agg_gnorm": True},
                "state_dict": stored["state_dict"]}, path)
    result = lab(tmp_path, "weights", "inspect", str(path))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"lab: error: {path} is an IDRnD/ReDimNet torch.hub checkpoint whose stored config this lab does not "
        "build: feat_type='tf', agg_gnorm (unknown)"]
    spec = registry.get("redimnet")
    with pytest.raises(ConfigError, match="agg_gnorm"):
        load_initial_weights(spec.build_model(spec.build_config(spec.preset("tiny"))), str(path))
    extra = weights.read(REDIMNET / "hub-fc.pt")  # a stage its stored config does not have
    extra.tensors["backbone.stage2.2.weight"] = torch.zeros(4, 4, 1, 1)
    with pytest.raises(ConfigError, match=r"\(IDRnD/ReDimNet torch.hub checkpoint\) has tensors its config does "
                                          r"not build: backbone.stage2.2.weight$"):
        weights.convert(extra)


def test_a_redimnet_trained_on_other_speakers_starts_a_run_with_a_fresh_head(tmp_path):
    """The AAM head is over the training speakers: a checkpoint of another speaker count gives its backbone, the
    head stays as initialised (README's fine-tune of a b2 onto new data), under strict init as well."""
    spec = registry.get("redimnet")
    trained = spec.build_model(spec.build_config(spec.preset("tiny")))  # 24 speakers
    torch.save(trained.state_dict(), tmp_path / "tiny.pt")
    values = config_tools.apply_overrides(spec.preset("tiny"), ["model.speakers=30"])
    model = spec.build_model(spec.build_config(values))
    head = model.head.weight.detach().clone()
    report = load_initial_weights(model, str(tmp_path / "tiny.pt"))
    assert report.clean and report.loaded == report.total - 1
    assert report.fresh == ["head.weight ((24, 64) -> (30, 64))"]
    assert "kept as initialised (1): the training-only head.weight ((24, 64) -> (30, 64)), of another size in the " \
           "file" in report.describe()
    assert torch.equal(model.head.weight, head)
    assert all(torch.equal(value, trained.state_dict()[name]) for name, value in model.state_dict().items()
               if name != "head.weight")
    same = spec.build_model(spec.build_config(spec.preset("tiny")))  # the same speakers: the head loads too
    assert load_initial_weights(same, str(tmp_path / "tiny.pt")).fresh == []
    assert torch.equal(same.head.weight, trained.head.weight)


def published_sizes() -> dict:
    with gzip.open(REDIMNET / "published.json.gz", "rt") as stream:
        return json.load(stream)


@pytest.mark.parametrize("size", ["b0", "b1", "b2", "b3", "b4", "b5", "b6"])
def test_full_size_idrnd_key_sets_convert_onto_the_presets_with_no_key_left_over(size):
    """Every key and shape of IDRnD's ReDimNetWrap for the published sizes (made with the original code, meta
    device) converts onto this project's preset of that size; only the training head is the lab's own."""
    published = published_sizes()[size]
    spec = registry.get("redimnet")
    with torch.device("meta"):
        original = weights.Original(Path(f"{size}-vox2-ft_lm.pt"), "torch.save",
                                    {name: torch.empty(shape) for name, shape in published["keys"].items()},
                                    extras={"model_config": published["model_config"]})
        converted = weights.convert(original, "redimnet")
        model = spec.build_model(spec.build_config(spec.preset(size)))
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items() if name != "head.weight"}
    assert {name: tuple(value.shape) for name, value in converted.weights.items()} == expected
    assert converted.dropped == ["backbone.stage0.0.w", "spec.torchfbank.1.flipped_filter"]
    preset = spec.preset(size)["model"]
    assert {name: preset[name.removeprefix("model.")] for name in converted.config if name != "model.size"} == \
        {name: value for name, value in converted.config.items() if name != "model.size"}
    assert sum(parameter.numel() for parameter in model.backbone.parameters()) == published["parameters"]


def test_a_wespeaker_redimnet_gives_the_originals_embedding_from_waveform():
    """wespeaker's ReDimNet (tests/fixtures/make_redimnet_wespeaker.py), sizes read from the shapes: Kaldi fbank
    features as its recipe computes them, and its embedding, up to float32 rounding."""
    path = REDIMNET / "wespeaker-small.pt"
    converted = weights.convert(weights.read(path))
    assert converted.format == "wenet-e2e/wespeaker ReDimNet state dict"
    assert converted.config["model.stages"] == [[1, 1, 2, 2], [2, 1, 1, 0], [1, 1, 1, 2]]
    assert converted.dropped == ["backbone.inputs_weights.0", "projection.weight"]
    model = redimnet_model(path)
    report = load_initial_weights(model, str(path))
    assert report.clean and report.fresh == ["head.weight"]
    expected = torch.load(REDIMNET / "wespeaker-expected.pt")
    waveform = torch.load(REDIMNET / "features.pt")["waveform"]
    with torch.no_grad():
        features = model.backbone.front_end(waveform)  # (B, n_mels, frames)
        embeddings = model.eval()(waveform)
    # tolerance 3.1e-4 (features up to 1.3): 66x the fixture's own rounding (4.7e-6); the Povey window gives 5.1e-2
    assert_equal_up_to_rounding(features.transpose(1, 2), expected["features"], MEL_DEPTH)
    assert_equal_up_to_rounding(embeddings, expected["embeddings"], redimnet_depth(model))

    spec = registry.get("redimnet")  # the default front-end and pooled BatchNorm do not take the file
    with pytest.raises(ConfigError, match=r"missing \(\d+\): backbone.front_end.mel.*--set model.front_end="
                                          r"kaldi_fbank --set model.pooled_norm=false"):
        load_initial_weights(spec.build_model(spec.build_config(spec.preset("tiny"))), str(path))


@pytest.mark.parametrize("size", ["b0", "b1", "b2", "b3", "b4", "b5", "b6"])
def test_full_size_wespeaker_key_sets_convert_onto_the_presets(size):
    """wespeaker's ReDimNetB0..B6 state dicts (meta device) convert onto this project's presets with wespeaker's
    front-end and no pooled BatchNorm, no key left over."""
    with gzip.open(REDIMNET / "wespeaker-keys.json.gz", "rt") as stream:
        shapes = json.load(stream)[size]
    spec = registry.get("redimnet")
    with torch.device("meta"):
        original = weights.Original(Path("avg_model.pt"), "torch.save",
                                    {name: torch.empty(shape) for name, shape in shapes.items()})
        converted = weights.convert(original, "redimnet")
        values = config_tools.apply_overrides(spec.preset(size), weights.assignments(converted))
        model = spec.build_model(spec.build_config(values))
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items() if name != "head.weight"}
    assert {name: tuple(value.shape) for name, value in converted.weights.items()} == expected
    preset = spec.preset(size)["model"]
    assert all(preset[name.removeprefix("model.")] == value for name, value in converted.config.items()
               if name not in ("model.size", "model.front_end", "model.pooled_norm"))


def test_new_run_prints_idrnd_b5_at_the_original_codes_size(family_lab):
    """7,659,760: IDRnD's ReDimNetWrap for b5, counted by make_redimnet.py (its trainable parameters; the paper's
    table says 9.2M, which no published config builds)."""
    assert published_sizes()["b5"]["parameters"] == 7_659_760
    created = family_lab("rdn", "redimnet")("new-run", "rdn_001", "--preset", "b5", "--hypothesis", "IDRnD's b5")
    assert "parameters: 7,659,760 model + 1,150,848 training head" in created


def test_new_run_init_from_an_idrnd_hub_checkpoint_trains_from_it(family_lab):
    lab_run = family_lab("rdn", "redimnet")
    converted = weights.convert(weights.read(REDIMNET / "hub-small.pt"))
    sizes = [option for setting in weights.assignments(converted) for option in ("--set", setting)
             if not setting.startswith("model.hop_length=")]  # a setting without weights: new-run reads it
    lab_run("new-run", "rdn_001", "--preset", "tiny", "--hypothesis", "fine-tune IDRnD's weights", *sizes,
            "--set", "model.mrl_dims=[8,16]", "--set", "train.max_steps=1", "--set", "train.eval_every=1",
            "--set", "data.eer_every=0", "--set", "train.best_metric=val/loss",
            "--init-from", str(REDIMNET / "hub-small.pt"))
    config = json.loads((lab_run.repo / "logs/runs/rdn_001/config.json").read_text())
    assert config["model"]["hop_length"] == 240  # the file's, written into the run's records
    launched = lab_run("launch", "rdn_001")
    assert f"init_from {REDIMNET / 'hub-small.pt'} (IDRnD/ReDimNet torch.hub checkpoint): loaded 232 of 233" \
        in launched and "settings kept" not in launched
    assert "kept as initialised (1): the training-only head.weight, not in the file" in launched


def test_a_file_of_no_known_format_is_reported_as_unrecognised(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    spec = registry.get("neural_decoder")
    model = spec.build_model(spec.build_config(spec.preset("tiny")))
    report = load_initial_weights(model, str(path), strict=False)
    assert report.format == "unrecognised" and report.loaded == 0 and report.unexpected == ["encoder.weight"]
    with pytest.raises(ConfigError, match=r"\(unrecognised\): loaded 0 of"):
        load_initial_weights(model, str(path))


SASHIMI = FIXTURES / "sashimi"
SASHIMI_DEPTH = 14  # its Conv and Linear layers, in sequence down and up the U-Net
# Tolerance 4.8e-4 to 5.2e-4 (logits up to 2.4): 320x the largest difference this code shows (1.5e-6, stepping;
# the fixture's own rounding is 5.9e-7); dt = exp(inv_dt) in place of softplus gives 1.2e-2.


def test_sashimi_sc09_checkpoint_gives_the_originals_logits_with_the_full_s4():
    """A small SaShiMi built by state-spaces/s4's training code with the SC09 settings (full S4), its kernels
    attuned to 32 samples; at 64 samples both double their kernel length from the saved state."""
    path = SASHIMI / "sc09-small.pt"
    model = model_for("sashimi", path)
    assert model.config.ssm == "s4" and model.config.norm == "scalar" and model.config.pool == [2, 2]
    report = load_initial_weights(model, str(path))
    assert report.format == "state-spaces/s4 SaShiMi (training code, full S4)" and report.clean
    assert report.loaded == report.total == len(model.state_dict())
    expected = torch.load(SASHIMI / "expected.pt")
    with torch.no_grad():
        logits = model(expected["codes"])  # (B, 32, 256)
        assert_equal_up_to_rounding(logits, expected["logits"], SASHIMI_DEPTH)
        assert_equal_up_to_rounding(model(expected["longer"]), expected["longer_logits"], SASHIMI_DEPTH)
        state = model.initial_state(2)
        stepped = []
        for t in range(expected["longer"].shape[1]):  # generation's recurrence, from the same weights
            out, state = model.step(expected["longer"][:, t], state)
            stepped.append(out)
    assert_equal_up_to_rounding(torch.stack(stepped, dim=1), expected["longer_logits"], SASHIMI_DEPTH)
    converted = weights.convert(weights.read(path), "sashimi")
    assert converted.config["model.state_size"] == 8 and converted.config["model.ssm_copies"] == 1


def test_weights_inspect_names_a_sashimi_checkpoint_and_its_settings_as_shell_words(tmp_path):
    result = lab(tmp_path, "weights", "inspect", str(SASHIMI / "sc09-small.pt"))
    assert result.returncode == 0, result.stderr
    assert "family: sashimi" in result.stdout
    assert "format: state-spaces/s4 SaShiMi (training code, full S4)" in result.stdout
    assert "model.pool=[2,2] model.expand=2 model.ff=2 model.state_size=8 model.ssm=s4" in result.stdout


def test_sashimi_sc09_preset_has_the_original_training_codes_parameter_count():
    """4,751,072: state-spaces/s4's training code for configs/experiment/audio/sashimi-sc09.yaml (backbone,
    embedding and head), counted on the meta device."""
    spec = registry.get("sashimi")
    with torch.device("meta"):
        model = spec.build_model(spec.build_config(spec.preset("sc09")))
    assert sum(parameter.numel() for parameter in model.parameters()) == 4_751_072
    assert model.config.ssm == "s4" and spec.build_config(spec.preset("baseline")).model.ssm == "s4d"
