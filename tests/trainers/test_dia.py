"""The dia family: tiny learns the synthetic tagged music, conditioning changes what it generates, the codec
cache resumes and skips bad files, `lab generate` writes the asked length, and the family checks its config."""

import json
import re
import subprocess
import sys
import wave

import numpy as np
import pytest
from lab_testing import run_lab
import torch

from lab.errors import ConfigError
from lab.families import registry
from lab.health.rules import structural_findings
from lab.records.store import Store
from trainers.dia import codec, data, family
from trainers.engine.training import train
from trainers.formats.audio import wav_bytes

SPEC = registry.get("dia")


def tiny(*overrides: str):
    return SPEC.build_config(SPEC.resolve(preset="tiny", overrides=list(overrides)))


def train_tiny(folder, steps: int):
    """The tiny preset trained for `steps` steps in `folder`: (config, its best model in eval mode, every row)."""
    config = tiny(f"train.max_steps={steps}")
    rows = []
    train(SPEC, config, out_dir=folder, on_row=lambda row: rows.append(row) or False)
    model = family.build_model(config)
    model.load_state_dict(torch.load(folder / "checkpoints" / "best.pt", weights_only=False)["model"])
    return config, model.eval(), rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny preset trained for 150 steps, long enough to learn the synthetic clips."""
    return train_tiny(tmp_path_factory.mktemp("dia"), 150)


@pytest.fixture(scope="module")
def briefly_trained(tmp_path_factory):
    """The tiny preset after 10 steps: a model that runs end to end, for what does not need it to have learnt."""
    return train_tiny(tmp_path_factory.mktemp("dia"), 10)


@pytest.mark.slow
def test_per_codebook_validation_loss_falls_well_below_its_start(trained):
    _, _, rows = trained
    start = rows[0]["train/loss_c0"]
    assert start > 6.0  # about ln(1028): nothing learnt
    final = [row for row in rows if "val/loss" in row][-1]
    for channel in range(9):
        assert final[f"val/loss_c{channel}"] < start - 3.0, (channel, final[f"val/loss_c{channel}"])
    assert final["val/acc_c0"] > 0.3
    assert final["val/tokens"] > final["val/clips"] > 0  # the evaluation's size, stated beside every verdict


def test_tag_conditional_samples_differ_from_unconditional_ones(briefly_trained):
    config, model, _ = briefly_trained
    torch.manual_seed(0)
    conditional = family.generate_codes(model, config, 20, "drums, 150 bpm", cfg_scale=3.0, temperature=0.8)
    torch.manual_seed(0)
    unconditional = family.generate_codes(model, config, 20, "", cfg_scale=3.0, temperature=0.8)
    assert conditional.shape[0] == 9 and 0 < conditional.shape[1] <= 20
    assert conditional.max() < 1024
    assert not np.array_equal(conditional, unconditional)


def test_generate_writes_audio_of_the_asked_length(briefly_trained):
    config, model, _ = briefly_trained
    audio, rate = family.generate(model, config, seconds=0.2, tags="sine, 90 bpm")
    assert rate == 44100 and audio.shape[0] == 1 and 0 < audio.shape[1] <= round(0.2 * 44100 / 512) * 512


def test_top_k_and_top_p_act_on_the_guided_logits():
    logits = torch.tensor([[0.0, -1.0, 0.5, -5.0]])
    assert {int(family.guided_sample(logits, 1.0, 1.0, 2)) for _ in range(30)} == {0, 2}
    assert {int(family.guided_sample(logits, 1.0, 0.3, 0)) for _ in range(30)} == {2}


def test_the_codec_cache_resumes_and_skips_a_bad_file(tmp_path, capsys):
    model = codec.random_codec(8)
    source = tmp_path / "music"
    source.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        (source / f"song{index}.wav").write_bytes(wav_bytes(rng.normal(0, 0.1, 8000), 22050))
    (source / "song0.txt").write_text("drums, bass\n")
    (source / "broken.wav").write_bytes(b"RIFF....WAVEnot audio")
    first = codec.encode_folder(source, model, tmp_path / "codes", progress=False)
    assert (first.encoded, first.skipped, len(first.failed)) == (3, 0, 1) and "broken.wav" in first.failed[0]
    (source / "song3.wav").write_bytes(wav_bytes(rng.normal(0, 0.1, 8000), 44100))
    again = codec.encode_folder(source, model, tmp_path / "codes")
    assert (again.encoded, again.skipped) == (1, 3)
    assert re.search(r"^codec encode: 5/5 files in [\d.]+ s$", capsys.readouterr().err, re.M)  # not a terminal
    entries = codec.read_cache(tmp_path / "codes")
    assert len(entries) == 4 and entries[0]["codes"].shape[0] == 9 and entries[0]["codes"].dtype == np.int16
    assert next(entry for entry in entries if entry["file"] == "song0.wav")["tags"] == ["drums", "bass"]
    assert codec.decode(model, entries[0]["codes"]).shape[0] == 1


def test_codes_beyond_the_codebook_are_refused_before_training(tmp_path):
    codes = np.full((9, 300), 7, dtype=np.int16)
    codes[3, 100] = 1500  # a cache written by another codec (or corrupted)
    np.save(tmp_path / "clip.npy", codes)
    (tmp_path / codec.INDEX).write_text(json.dumps({"file": "clip.wav", "codes": "clip.npy", "frames": 300}) + "\n")
    with pytest.raises(ValueError, match="the codes span 7 to 1500 but DAC codes are 0 to 1023"):
        family.build_data(tiny(f"data.codes={tmp_path}"))
    codes[3, 100] = -3  # an int16 cache that wrapped around
    np.save(tmp_path / "clip.npy", codes)
    with pytest.raises(ValueError, match="the codes span -3 to 7 but DAC codes are 0 to 1023"):
        family.build_data(tiny(f"data.codes={tmp_path}"))


def test_the_family_checks_its_config_and_smells():
    for overrides, message in ((["model.channels=4", "model.delay_pattern=dia"], "is for 9 codebooks"),
                               (["model.dec_kv_heads=3"], "must be a multiple of model.dec_kv_heads"),
                               (["data.audio_length=500"], "more than model.dec_max_positions"),
                               (["model.delay_pattern=0,1,2"], "has 3 delays for 9 codebooks")):
        with pytest.raises(ConfigError, match=message):
            tiny(*overrides)
    smelly = SPEC.resolve(preset="small", overrides=["model.dec_head_dim=32"])  # the seed's 1024 -> 512 bottleneck
    assert "attention_width" in {finding.rule for finding in structural_findings(smelly)}


def test_training_sequences_have_one_fixed_shape():
    config = tiny()
    bundle = family.build_data(config)
    batch = bundle.collate([bundle.train[index] for index in range(3)])
    assert batch["tokens"].shape == (3, 1 + 32 + 1 + 8, 9) and batch["text"].shape == (3, 32)
    assert data.tag_text(["a", "b"], config, augment=False) == "a, b"


def test_unconditional_batches_are_zero_bytes_under_the_conditions_mask():
    """As nari-labs/dia builds its classifier-free-guidance input, not an empty (all-padding) text."""
    items = [(torch.zeros(40, 9, dtype=torch.long), ["drums", "bass"]), (torch.zeros(40, 9, dtype=torch.long),
                                                                         ["pad"])]
    fixed = ("data.tag_shuffle=false", "data.tag_dropout=0.0")
    conditional = data.collate(items, tiny(*fixed, "train.unconditional_frac=0.0"), augment=True)
    unconditional = data.collate(items, tiny(*fixed, "train.unconditional_frac=1.0"), augment=True)
    assert (unconditional["text"] == 0).all() and conditional["text"].any()
    assert torch.equal(unconditional["text_mask"], conditional["text_mask"])
    assert conditional["text_mask"].sum(1).tolist() == [len("drums, bass"), len("pad")]


def test_lab_generate_from_a_run(tmp_path, family_lab, lab_environment):
    lab = family_lab("dia", "dia")
    created = lab("new-run", "dia_009", "--preset", "tiny", "--hypothesis", "MusicGen delay learns the tags",
                  "--set", "train.max_steps=10", "--set", "train.eval_every=10", "--group", "musicgen_delay")
    assert "parameters: 1,289,248" in created
    lab("launch", "dia_009", "--no-commit", "--set", "train.unconditional_frac=0.4")
    done = run_lab("generate", "dia_009", "--tags", "drums, bass, 120 bpm", "--seconds", "1", "--cfg-scale", "3.0",
                   "--out", str(tmp_path / "sample.wav"), cwd=lab.repo, env=lab_environment)
    assert done.returncode == 0 and "wrote" in done.stdout, done.stderr
    with wave.open(str(tmp_path / "sample.wav")) as sound:
        assert sound.getframerate() == 44100 and sound.getnframes() <= 86 * 512
        seconds = sound.getnframes() / 44100
    # progress on stderr, one line at the end without a terminal; decoding steps: 86 frames + the longest delay
    # (8, musicgen's over 9 codebooks) + 1
    assert re.search(r"^generate: \d+/(\d+) steps in [\d.]+ s$", done.stderr, re.M)[1] == str(86 + 8 + 1)
    stopped = f"lab: generate: stopped at EOS after {seconds:.2f} s of the 1 s asked"
    assert (stopped in done.stderr) == (seconds < 1 - 0.05), done.stderr  # a sample cut at EOS says so
    lab("generate", "dia_009", "--tags", "drums", "--seconds", "0.1", "--num", "2", "--seed", "5")
    lines = [json.loads(line) for line in (Store(lab.repo).attempt_dir("dia_009", 1) / "samples.jsonl").open()]
    generated = [line for line in lines if line["source"] == "generate"]
    assert [(line["seed"], line["settings"]["tags"]) for line in generated] == [
        (0, "drums, bass, 120 bpm"), (5, "drums"), (6, "drums")]  # one after another: seed, seed + 1
    assert generated[0]["settings"]["cfg_scale"] == 3.0 and generated[0]["sample_rate"] == 44100


def test_lab_generate_checks_the_conditioning_against_what_the_model_was_trained_on(tmp_path, family_lab,
                                                                                     lab_environment):
    """Tags the training data never had are a warning naming them and the known ones: CFG on an unseen tag is a
    fair experiment, but the researcher should know the tag means nothing to the model. `--text` for a model
    trained on tags is an error: tags and text go through the same byte encoder, so the model would sample
    from bytes it never saw in that form and the wav would look like a TTS result it cannot give."""
    lab = family_lab("dia", "dia")
    lab("new-run", "dia_001", "--preset", "tiny", "--hypothesis", "tags", "--set", "train.max_steps=2",
        "--set", "train.eval_every=2", "--set", "data.sample_every=2")  # its samples condition on tags too
    lab("launch", "dia_001", "--no-commit")
    known = json.loads((Store(lab.repo).attempt_dir("dia_001", 1) / "summary.json").read_text())["data"]["tags"]
    assert "drums" in known and "kazoo" not in known
    media = (Store(lab.repo).attempt_dir("dia_001", 1) / "samples.jsonl").read_text()
    assert "samples/conditional" in media and "samples/unconditional" in media

    def generate(*args: str) -> subprocess.CompletedProcess:
        return run_lab("generate", "dia_001", "--seconds", "0.05", *args, cwd=lab.repo, env=lab_environment)

    unknown = generate("--tags", "drums, kazoo, 120 bpm", "--out", str(tmp_path / "kazoo.wav"))
    warnings = [line for line in unknown.stderr.splitlines() if line.startswith("lab: warning:")]
    assert unknown.returncode == 0 and (tmp_path / "kazoo.wav").is_file(), unknown.stderr
    assert warnings == [f"lab: warning: tags the model never saw in training: kazoo (it knows: {', '.join(known)})"]
    text = generate("--text", "hello there", "--out", str(tmp_path / "text.wav"))
    assert text.returncode == 2 and not (tmp_path / "text.wav").exists()
    assert text.stderr.splitlines() == ["lab: error: the model was trained on tags (data.condition=tags), not text: "
                                        "pass --tags instead of --text"]


def test_lab_codec_encode_with_local_weights(tmp_path, lab_environment):
    weights = tmp_path / "dac.pth"
    model = codec.random_codec(8)
    torch.save({"state_dict": model.state_dict(), "metadata": {"kwargs": {"encoder_dim": 8, "decoder_dim": 32}}},
               weights)
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "a.wav").write_bytes(wav_bytes(np.zeros(4410), 44100))
    done = run_lab("codec", "encode", "--audio", str(tmp_path / "music"), "--weights", str(weights), "--out",
                   str(tmp_path / "codes"), env=lab_environment, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and "encoded 1" in done.stdout, done.stderr
    missing = run_lab("codec", "encode", "--audio", str(tmp_path / "music"), "--weights", str(tmp_path / "none.pth"),
                      "--out", str(tmp_path / "codes"), env=lab_environment, timeout=120, cwd=tmp_path)
    assert missing.returncode == 2 and "codec weights not found" in missing.stderr
    assert missing.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_xla_path_trains_tiny_on_the_cpu(tmp_path, lab_environment):
    done = subprocess.run(
        [sys.executable, "-m", "trainers", "dia", "--preset", "tiny", "--set", "train.device=xla",
         "--set", "train.max_steps=2", "--set", "train.eval_every=2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**lab_environment, "PJRT_DEVICE": "CPU"},
    )
    if done.returncode != 0 and "torch_xla" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["progress"]["step"] == 2 and "val/loss" in done.stdout


def test_the_synthetic_set_is_encoded_once_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    made = data.encode_synthetic_set(2, 0.1, 5, 4)
    first = data.synthetic_set.__wrapped__(2, 0.1, 5, 4)
    cache = data.synthetic_cache(2, 0.1, 5, 4)
    assert cache.parent == tmp_path / "lab" / "dia-synthetic" and cache.is_file()
    monkeypatch.setattr(data, "encode_synthetic_set", lambda *args: pytest.fail("encoded again"))
    again = data.synthetic_set.__wrapped__(2, 0.1, 5, 4)
    for (codes, tags), (fresh, fresh_tags), (read, read_tags) in zip(made, first, again):
        assert tags == fresh_tags == read_tags and np.array_equal(codes, fresh) and np.array_equal(codes, read)
    assert read.dtype == np.int16 and read.shape[0] == 9
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache.write_bytes(b"not an npz")  # a damaged cache is made again, not an error
    rebuilt = data.synthetic_set.__wrapped__(2, 0.1, 5, 4)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(made, rebuilt)) and np.load(cache)["tags"]
