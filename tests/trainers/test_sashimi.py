"""The sashimi family: both heads learn, data layouts and chunk sizes, bad files, memory by component, health
advice, and `lab generate` / `lab profile` end to end."""

import json
import math
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from lab_testing import run_lab

from lab.families import registry
from lab.health.diagnosis import rules_for
from lab.health.rules import check
from lab.records.store import Store
from trainers.engine.training import train
from trainers.family.context import Context
from trainers.sashimi import data, family

SPEC = registry.get("sashimi")


def tiny(*overrides: str):
    return SPEC.build_config(SPEC.resolve(preset="tiny", overrides=["train.device=cpu", *overrides]))


@pytest.mark.slow
@pytest.mark.parametrize("head,layer", [("categorical", "s4d"), ("dml", "s4d"), ("categorical", "s4")])
def test_tiny_learns_the_synthetic_audio_with_each_head_and_layer(head, layer, tmp_path):
    """The full S4 (model.ssm=s4, with the SC09 checkpoint's scalar norm and weight-normed pools) learns as S4D."""
    rows = []
    extra = ["model.ssm=s4", "model.norm=scalar", "model.pool_weight_norm=true"] if layer == "s4" else []
    train(SPEC, tiny(f"model.head={head}", "train.max_steps=150", *extra), out_dir=tmp_path,
          on_row=lambda row: rows.append(row) or False)
    start = next(row["train/bits_per_sample"] for row in rows if "train/bits_per_sample" in row)
    final = [row["val/bits_per_sample"] for row in rows if "val/bits_per_sample" in row][-1]
    assert start > 6.0  # about 8 bits: nothing learnt yet
    assert final < start - 1.5, (start, final)
    evaluation = [row for row in rows if "val/loss" in row][-1]
    assert evaluation["val/samples"] > evaluation["val/clips"] > 0


def test_validation_uses_its_own_chunk_size_and_stereo_interleaves():
    bundle = family.build_data(tiny("data.train_length=1024", "data.val_length=2048"))
    assert bundle.train[0].shape == (1024,) and bundle.val[0].shape == (2048,)
    stereo = family.build_data(tiny("data.stereo=true", "data.train_length=512", "data.val_length=1024"))
    assert stereo.train[0].shape == (1024,) and stereo.val[0].shape == (2048,)
    assert bundle.val_batch_size == 4


def test_interleaving_round_trips():
    clip = data.synthetic_clips(1, 0.01, 16000, 2, seed=0)[0]
    assert (data.deinterleave(data.interleave(clip), 2) == clip).all()


def test_a_wav_folder_and_the_musdb_layout_load(tmp_path):
    data.write_synthetic(tmp_path / "clips", 10, 0.2, seed=1)
    bundle = family.build_data(tiny(f"data.source={tmp_path / 'clips'}", "data.train_length=1024",
                                    "data.val_length=1024"))
    assert (bundle.info["train_items"], bundle.info["val_items"]) == (9, 3)  # 1 held-out file of 3 chunks
    for split in ("train", "test"):
        for track in range(2):
            data.write_synthetic(tmp_path / "musdb" / split / f"track{track}", 1, 0.2, channels=2, seed=track)
            (tmp_path / "musdb" / split / f"track{track}" / "clip_000.wav").rename(
                tmp_path / "musdb" / split / f"track{track}" / "mixture.wav")
    musdb = family.build_data(tiny(f"data.source={tmp_path / 'musdb'}", "data.layout=musdb18", "data.stereo=true",
                                   "data.train_length=512", "data.val_length=512"))
    assert musdb.info["train_items"] == 2 and musdb.train[0].shape == (1024,)


def test_a_corrupt_file_is_a_one_line_error_naming_it(tmp_path):
    folder = data.write_synthetic(tmp_path / "clips", 4, 0.2)
    (folder / "clip_002.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    done = subprocess.run(
        [sys.executable, "-m", "trainers", "sashimi", "--preset", "tiny", "--set", f"data.source={folder}",
         "--set", "data.train_length=1024", "--set", "data.val_length=1024", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "clip_002.wav" in done.stderr and "Traceback" not in done.stderr


def test_the_family_checks_its_config():
    for overrides, message in ((["model.head=mixture"], "model.head='mixture' is not one of"),
                               (["data.train_length=1000"], "must be a positive multiple of the pooling product 16"),
                               (["model.bits=16"], "use model.input_encoder=linear"),
                               (["model.ssm=s5"], "model.ssm='s5' is not one of: s4d, s4"),
                               (["model.norm=batch"], "model.norm='batch' is not one of: layer, scalar"),
                               (["model.ssm=s4", "model.ssm_copies=3"],
                                "model.d_model=16 must be a multiple of model.ssm_copies=3")):
        with pytest.raises(Exception, match=message):
            tiny(*overrides)


def test_dml_head_and_loss_use_a_tenth_of_the_categorical_memory():
    measured = {}
    for head in ("categorical", "dml"):
        config = tiny(f"model.head={head}", "model.bits=16", "model.input_encoder=linear",
                      "data.quantization=linear", "data.train_length=4096", "data.val_length=4096",
                      "model.loss_chunk=1024", "train.batch_size=1")
        bundle = family.build_data(config)
        model = family.build_model(config)
        context = Context(config=config, max_steps=1, artefacts=Path("unused"))
        measured[head] = family.profile(model, bundle.collate([bundle.train[0]]), context)
    head_and_loss = "head + loss (forward and backward)"
    assert measured["dml"][head_and_loss] <= 0.1 * measured["categorical"][head_and_loss], measured
    assert measured["categorical"][head_and_loss] < 4 * 4096 * 65536 * 4 / 2**20  # never all logits at once, x4


def test_a_flat_dml_loss_gets_the_analysis_advice():
    rows = [{"step": step, "train/loss": 5.5 + 0.01 * math.sin(step)} for step in range(1, 101)]
    config = SPEC.resolve(preset="tiny", overrides=["model.head=dml", "train.grad_clip=0.0", "optim.lr=0.004"])
    finding = next(f for f in check(rows, config, rules_for(SPEC)) if f.rule == "loss_not_decreasing")
    assert "0.004" in finding.suggestion and "grad_clip=1.0" in finding.suggestion
    assert "log-scales in [-1, -0.5]" in finding.suggestion


def test_generate_and_profile_from_a_lab_run(tmp_path, family_lab, lab_environment):
    lab = family_lab("sash", "sashimi")
    repo = lab.repo
    lab("new-run", "sash_001", "--preset", "tiny", "--hypothesis", "DML learns the tones", "--set", "model.head=dml",
        "--set", "train.max_steps=4", "--set", "train.eval_every=2", "--set", "data.sample_every=4")
    lab("launch", "sash_001", "--no-commit")
    done = run_lab("generate", "sash_001", "--seconds", "0.05", "--out", str(tmp_path / "sample.wav"), cwd=repo,
                   env=lab_environment)
    assert done.returncode == 0 and "wrote" in done.stdout and "best.pt" in done.stdout, done.stderr
    # progress goes to stderr; without a terminal a line every few seconds, and one at the end (800 codes)
    end = re.search(r"^generate: 800/800 steps in ([\d.]+) s$", done.stderr, re.M)
    lines = [line for line in done.stderr.splitlines() if line.startswith("generate: ")]
    assert end and len(lines) <= 2 + float(end[1]) / 5, done.stderr  # not a line per step
    assert "EOS" not in done.stderr
    with wave.open(str(tmp_path / "sample.wav")) as sound:
        assert sound.getframerate() == 16000 and sound.getnframes() == 800
    attempt = Store(repo).attempt_dir("sash_001", 1)
    samples = [json.loads(line) for line in (attempt / "samples.jsonl").read_text().splitlines()]
    training, generated = samples[:2], samples[2:]
    assert [(entry["source"], entry["step"]) for entry in training] == [("training", 2), ("training", 4)]
    assert [(entry["source"], entry["step"], entry["checkpoint"]) for entry in generated] == [("generate", 4, "best")]
    made = generated[0]
    assert made["settings"] == {"seconds": 0.05, "temperature": 1.0, "seed": 0} and made["seed"] == 0
    assert made["seconds"] == 0.05 and made["sample_rate"] == 16000 and 0 <= made["silence"] <= 1
    assert made["stored"] == "records" and (attempt / made["file"]).is_file() and made["file"].endswith(".flac")
    profile = lab("profile", "sash_001")
    assert "backbone forward" in profile and "head + loss" in profile and "MiB" in profile
    lab("report", "sash_001")  # the profile is recorded on the run, so its report shows it
    report = (repo / "logs/reports/sash_001.md").read_text()
    assert re.search(r"- Peak tensor memory of one training step \(`lab profile`\): .*backbone forward [\d.]+ MiB",
                     report)


def test_generate_num_makes_a_batch_and_large_samples_stay_local(family_lab, lab_environment):
    lab = family_lab("sash", "sashimi")
    lab("new-run", "sash_001", "--preset", "tiny", "--hypothesis", "tones", "--set", "train.max_steps=2",
        "--set", "train.eval_every=2")
    lab("launch", "sash_001", "--no-commit")
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "samples": {"max_mb": 0.001}}))  # 1 kB
    done = run_lab("generate", "sash_001", "--seconds", "0.01", "--num", "2", "--seed", "7", "--temperature", "0.9",
                   cwd=lab.repo, env=lab_environment)
    assert done.returncode == 0, done.stderr
    wrote = [line for line in done.stdout.splitlines() if line.startswith("wrote ")]
    assert not list(lab.repo.glob("*.wav"))  # nothing lands in the working folder unless --out asks
    assert len(wrote) == 2 and all("(0.01 s, step 2, in the records) from " in line for line in wrote), done.stdout
    store = Store(lab.repo)
    lines = [json.loads(line) for line in (store.attempt_dir("sash_001", 1) / "samples.jsonl").read_text().splitlines()]
    assert [(line["index"], line["seed"], line["settings"]["temperature"]) for line in lines] == [(0, 7, 0.9),
                                                                                                   (1, 7, 0.9)]
    for line in lines:  # 160 samples of 16 bits: a few hundred bytes of FLAC
        assert line["stored"] == "records" and line["bytes"] < 1000 and len(line["sha256"]) == 64
        assert (store.attempt_dir("sash_001", 1) / line["file"]).stat().st_size == line["bytes"]
    lab("generate", "sash_001", "--seconds", "0.5")
    last = json.loads((store.attempt_dir("sash_001", 1) / "samples.jsonl").read_text().splitlines()[-1])
    assert last["stored"] == "local" and last["file"].startswith("artefacts/sash_001/")  # 8,000 samples: several kB
    assert (lab.repo / last["file"]).is_file()
    bad = run_lab("generate", "sash_001", "--num", "0", cwd=lab.repo, env=lab_environment)
    assert bad.returncode == 2 and bad.stderr.strip() == "lab: error: --num must be 1 or more, not 0"
    assert len((store.attempt_dir("sash_001", 1) / "samples.jsonl").read_text().splitlines()) == 3
