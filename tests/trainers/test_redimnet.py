"""The redimnet family: sizes, the margin schedule, Matryoshka AAM, tiny's EER, two stages, overlap warnings,
the report's verification table and `lab embed`."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import lab_testing

from lab.errors import ConfigError
from lab.families import registry
from lab.health.diagnosis import rules_for, run_stages
from lab.health.rules import check
from models.delay import DIA_DELAYS
from models.redimnet import MatryoshkaAAM, margin_at
from trainers.engine.training import train
from trainers.dia import data as dia_data
from trainers.formats.audio import wav_bytes
from trainers.redimnet import data, family

SPEC = registry.get("redimnet")


def tiny(*overrides: str):
    return SPEC.build_config(SPEC.resolve(preset="tiny", overrides=list(overrides)))


def test_b2_has_the_published_size():
    model = family.build_model(SPEC.build_config(SPEC.preset("b2")))
    assert 4.7e6 <= sum(p.numel() for p in model.backbone.parameters()) <= 5.0e6  # paper 4.7M, wespeaker ~4.9M


def test_new_run_prints_the_model_and_its_training_head_apart(family_lab):
    lab = family_lab("rdn", "redimnet")
    created = lab("new-run", "rdn_001", "--preset", "b0", "--hypothesis", "the published b0 size")
    # b0 as published is 1.0M; the AAM head over VoxCeleb2's 5,994 training speakers (192 x 5,994 + ...) is apart
    assert "parameters: 1,004,250 model + 1,150,848 training head (preset b0: 1,004,250 model + 1,150,848 " \
        "training head)" in created


def test_the_margin_ramps_as_wespeaker():
    assert margin_at(19 * 100, 100) == 0.0
    assert margin_at(40 * 100, 100) == pytest.approx(0.2)
    middle = margin_at(30 * 100, 100)
    assert 0.19 < middle < 0.2 and margin_at(25 * 100, 100) < middle  # 1 - 1e-3^0.5 = 0.968 of the way


def test_each_matryoshka_dim_normalises_its_own_slice():
    torch.manual_seed(0)
    head = MatryoshkaAAM(8, 3, [4, 8])
    z = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    losses = head(z, labels, margin=0.0)
    scaled = z.clone()
    scaled[:, 4:] *= 100  # the tail never touches the 4-d prefix
    assert torch.allclose(head(scaled, labels, 0.0)[4], losses[4])
    assert not torch.allclose(head(scaled, labels, 0.0)[8], losses[8])
    assert head(z, labels, margin=0.2)[4] > losses[4]  # a margin makes the target harder


@pytest.mark.slow
def test_tiny_reaches_a_low_eer_with_lower_dims_no_better(tmp_path):
    rows = []
    summary = train(SPEC, tiny("train.max_steps=120"), out_dir=tmp_path, on_row=lambda row: rows.append(row) or False)
    assert summary["best_metric"] == "val/eer_64" and summary["best_value"] < 0.10, summary["best_value"]
    best = next(row for row in rows if row["step"] == summary["best_step"] and "val/eer_64" in row)
    assert best["val/eer_16"] >= best["val/eer_64"] - 0.02
    assert best["val/trials"] > 0 and 0 < best["val/eer_64_se"] < 0.2  # bootstrap over the trials
    assert any(row.get("train/margin", 0) > 0 for row in rows)  # the ramp started (epoch 2 of a tiny set)


def test_the_family_checks_its_config():
    with pytest.raises(ConfigError, match="model.mrl_dims=.* at most model.embed_dim=64"):
        tiny("model.mrl_dims=[32,64,128]")
    with pytest.raises(ConfigError, match="does not divide the 24 frequency rows"):
        tiny("model.stages=[[5,1,1,8]]")


def test_new_run_refuses_a_judged_metric_the_run_would_never_log(family_lab):
    """tiny judges val/eer_64: a smaller embedding (as an imported file's) must name its own dim at new-run, not
    fail at the first evaluation."""
    lab_run = family_lab("rdn", "redimnet")

    def refused(*settings: str) -> list[str]:
        result = lab_testing.run_lab("new-run", "rdn_001", "--preset", "tiny", "--hypothesis", "h", "--set",
                                     "model.embed_dim=16", "--set", "model.mrl_dims=[8,16]",
                                     *(part for setting in settings for part in ("--set", setting)), cwd=lab_run.repo)
        assert result.returncode == 2 and not (lab_run.repo / "logs" / "runs" / "rdn_001").exists()
        return result.stderr.strip().splitlines()

    assert refused() == ["lab: error: train.best_metric=val/eer_64 is of dim 64, not one of model.mrl_dims=[8, 16]: "
                         "choose val/eer_16"]
    assert refused("train.best_metric=val/mindcf_16", "data.eer_every=0") == [
        "lab: error: train.best_metric=val/mindcf_16 is never computed with data.eer_every=0: set data.eer_every or "
        "choose val/loss"]
    assert "created rdn_001" in lab_run("new-run", "rdn_001", "--preset", "tiny", "--hypothesis", "h", "--set",
                                        "model.embed_dim=16", "--set", "model.mrl_dims=[8,16]", "--set",
                                        "train.best_metric=val/loss_16")


def test_overlapping_verification_speakers_are_flagged(tmp_path, capsys):
    root = tmp_path / "vox"
    for speaker, utterances in data.synthetic_speakers(3, 3, 0.5, 16000, 5):
        for index, clip in enumerate(utterances):
            path = root / speaker / "video1" / f"{index:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wav_bytes(clip, 16000))
    trials = tmp_path / "trials.txt"
    names = sorted(p.parent.parent.name + "/video1/" + p.name for p in root.rglob("*.wav"))
    trials.write_text("".join(f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}\n" for a in names for b in names
                              if a < b))
    config = tiny(f"data.train={root}", f"data.val={root}", f"data.trials={trials}", "model.speakers=3",
                  "data.speakers_per_batch=0")
    bundle = family.build_data(config)
    assert bundle.info["speaker_overlap"] == 3
    assert "verification speaker(s) are also training speakers" in capsys.readouterr().err
    utterances, parsed, _ = data.verification_set(config.data)
    assert len(utterances) == 9 and len(parsed) == 36


def test_speaker_balanced_batches_replay_by_epoch():
    bundle = family.build_data(tiny())
    sampler = bundle.batch_sampler
    first = sampler(bundle.train, 16, 0, 0, 0, 1)
    assert first == sampler(bundle.train, 16, 0, 0, 0, 1) and first != sampler(bundle.train, 16, 0, 1, 0, 1)
    labels = [bundle.train.labels[index] for index in first[0]]
    assert len(set(labels)) == 8 and all(labels.count(label) == 2 for label in labels)


def test_overfitting_after_the_unfreeze_gets_stage_advice():
    rows = []
    for step in range(1, 201):
        rows.append({"step": step, "train/loss": 10 - step * 0.04})
        if step % 20 == 0:
            rows.append({"step": step, "val/loss": 9 - step * 0.03 if step <= 100 else 6 + (step - 100) * 0.04})
    config = SPEC.resolve(preset="tiny", overrides=['train.frozen=["backbone"]', "train.unfreeze_step=100"])
    finding = next(f for f in check(rows, config, rules_for(SPEC)) if f.rule == "gap_widening")
    assert finding.step == 120 and "train.unfreeze_step is 100" in finding.suggestion


def margin_stream(steps: int, diverge_after: int | None = None, per_epoch: int = 30) -> list[dict]:
    """The rows an init_from run logs every 10 steps (`per_epoch` updates an epoch, tiny's margin epochs 2 to 6): the
    loss of trained weights falls a little at margin 0, rises with wespeaker's restarted margin (AAM at scale 32
    moves the target logit by about 32 * margin) and falls again as the weights adapt to it; it scatters from
    batch to batch, and past `diverge_after` climbs for real."""
    rows = []
    for step in range(10, steps + 1, 10):
        margin = float(np.mean([margin_at(s, per_epoch, 0.2, 2, 6) for s in range(step - 9, step + 1)]))
        adapted = math.exp(-max(0, step - 6 * per_epoch - 10) / 400)
        loss = 0.3 + 0.5 * math.exp(-step / 40) + 12 * margin * adapted + 0.05 * math.sin(step * 1.7)
        if diverge_after is not None and step > diverge_after:
            loss += 0.02 * (step - diverge_after)
        rows.append({"step": step, "train/loss": loss, "train/margin": margin})
    return rows


def test_the_margin_schedule_restarting_after_init_from_is_a_stage_not_a_divergence():
    """The issue's case: an init_from run's loss rises as its restarted margin ramps up, and the health page
    said `divergence_after_warmup`, "lower the LR"."""
    config = SPEC.resolve(preset="tiny", overrides=["train.init_from=artefacts/rdn_001/best.pt",
                                                    "train.max_steps=600"])
    rows = margin_stream(600)
    stages = run_stages(SPEC, config, rows)
    assert stages == [(70, "margin ramp 0 -> 0.2 (restarted: train.init_from)"), (190, "margin at 0.2")]
    # the lab's rules alone, blind to the family's schedule, read the rise as a divergence ...
    assert "divergence_after_warmup" in {finding.rule for finding in check(rows, config)}
    # ... the family's rules know it starts a stage
    assert not {"divergence_after_warmup", "loss_not_decreasing"} & {f.rule for f in check(rows, config,
                                                                                         rules_for(SPEC))}
    ramping = margin_stream(300, per_epoch=60)  # as the live monitor sees a longer epoch's ramp: no judgement yet
    assert run_stages(SPEC, config, ramping)[-1] == (300, f"margin still ramping ({ramping[-1]['train/margin']:.3g} "
                                                          "of 0.2)")
    assert "divergence_after_warmup" in {finding.rule for finding in check(ramping, config)}
    assert not check(ramping, config, rules_for(SPEC))
    diverged = check(margin_stream(600, diverge_after=300), config, rules_for(SPEC))
    assert any(f.rule == "divergence_after_warmup" and f.step > 300 for f in diverged)  # still caught after it


def test_two_stages_report_and_embed(tmp_path, family_lab):
    lab = family_lab("rdn", "redimnet")
    repo = lab.repo
    lab("new-run", "rdn_001", "--preset", "tiny", "--hypothesis", "MRL keeps 16-d EER within 20% of 64-d",
        "--expect", "val/eer_16 <= 1.2 * val/eer_64",
        "--set", 'train.frozen=["backbone"]', "--set", "train.unfreeze_step=10", "--set", "train.max_steps=20",
        "--set", "train.eval_every=10", "--set", "data.eer_every=10")
    lab("launch", "rdn_001", "--no-commit")
    lab("report", "rdn_001")
    page = (repo / "logs" / "reports" / "rdn_001.md").read_text()
    table = page.split("### Verification per Embedding Dimension")[1]
    assert all(f"| {dim} |" in table for dim in (16, 32, 64)) and "%" in table
    assert re.search(r"\*\*Verdict\*\*: (supported|not supported|inconclusive): val/eer_16 <= 1\.2 \* val/eer_64: "
                     r".* \(step \d+ of rdn_001:1\).*; evaluated on [\d,]+ utterances, [\d,]+ trials", page)
    assert re.search(r"^\| 10 \| .*stage: unfroze backbone at step 10 \|$", page, re.M)
    assert "unfroze backbone (step 10)</text>" in (repo / "logs" / "reports" / "rdn_001" / "curves.svg").read_text()
    # a run started from rdn_001's weights restarts the margin schedule: a stage on its table and its plots
    lab("new-run", "rdn_002", "--from", "rdn_001", "--init-from", "best", "--hypothesis", "fine-tune",
        "--set", "train.frozen=[]")
    lab("launch", "rdn_002", "--no-commit")
    lab("report", "rdn_002")
    page = (repo / "logs" / "reports" / "rdn_002.md").read_text()
    # tiny's margin leaves 0 after its 2 epochs of 6 updates: the first logged with a margin is step 14
    ramp = re.search(r"^\| 20 \| .*stage: margin ramp 0 -> 0\.2 \(restarted: train\.init_from\) at step (\d+)\b",
                     page, re.M)
    assert ramp and int(ramp[1]) == 14, page
    curves = (repo / "logs" / "reports" / "rdn_002" / "curves.svg").read_text()
    assert curves.count("margin ramp 0 -&gt; 0.2 (restarted: train.init_from) (step 14)</text>") >= 2  # each panel
    clips = data.synthetic_speakers(2, 1, 0.5, 16000, 9)
    paths = []
    for index, (_, utterances) in enumerate(clips):
        paths.append(tmp_path / f"{index}.wav")
        paths[-1].write_bytes(wav_bytes(utterances[0], 16000))
    result = json.loads(lab("embed", "rdn_001", "--audio", *map(str, paths), "--json"))
    assert len(result["embeddings"]) == 2 and len(result["embeddings"][0]) == 64
    assert result["cosine"][0][0] == pytest.approx(1.0, abs=1e-5)
    (tmp_path / "silence.wav").write_bytes(wav_bytes(np.zeros(16000, dtype=np.float32), 16000))
    (tmp_path / "blip.wav").write_bytes(wav_bytes(clips[0][1][0][:800], 16000))  # 50 ms
    done = lab_testing.run_lab("embed", "rdn_001", "--dim", "16", "--json", "--audio", str(paths[0]),
                               str(tmp_path / "silence.wav"), str(tmp_path / "blip.wav"), cwd=repo)
    assert done.returncode == 0 and len(json.loads(done.stdout)["embeddings"][0]) == 16
    assert f"lab: warning: {tmp_path / 'silence.wav'} is silent" in done.stderr
    assert f"lab: warning: {tmp_path / 'blip.wav'} is 0.05 s long" in done.stderr


def test_the_head_has_its_own_learning_rate():
    config = tiny("train.head_lr=0.05", "optim.lr=0.001")
    model = family.build_model(config)
    groups = family.param_groups(model, config)
    assert [group.get("lr") for group in groups][-1] == 0.05 and groups[-1]["params"] == [model.head.weight]
    backbone = {id(p) for group in groups[:-1] for p in group["params"]}
    assert backbone == {id(p) for p in model.backbone.parameters()}
    assert "lr" not in family.param_groups(model, tiny())[-1]  # 0: the head follows optim.lr


def test_readme_states_the_tiny_presets_as_they_are():
    """README's sentence on the tiny presets, checked against the presets it describes."""
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    dia = registry.get("dia")
    dia_tiny, dia_baseline = (dia.build_config(dia.preset(name)) for name in ("tiny", "baseline"))
    assert dia_data.pattern_of(dia_tiny) == list(range(9)) and dia_data.pattern_of(dia_baseline) == list(DIA_DELAYS)
    assert (dia_tiny.model.dec_layers, dia_tiny.model.dec_d_model, dia_tiny.data.audio_length) == (2, 64, 32)
    assert ("dia's uses MusicGen's delay pattern (codebook k delayed k frames, 0 to 8) where the Dia baseline uses "
            "Dia's (0, 8, 9, ..., 15), with 2 decoder layers 64 wide over 32-frame crops.") in readme
    model, baseline = tiny().model, SPEC.build_config(SPEC.preset("baseline")).model
    assert (model.embed_dim, model.mrl_dims, baseline.embed_dim, baseline.mrl_dims) == (64, [16, 32, 64], 192,
                                                                                          [64, 128, 192])
    assert (model.n_mels, model.channels, len(model.stages), tiny().data.synthetic_speakers) == (24, 4, 2, 24)
    assert ("redimnet's has a 64-d embedding with Matryoshka dims [16, 32, 64] (the baseline: 192-d, [64, 128, "
            "192]) from 24 mel bins, 4 channels and 2 stages, trained on 24 synthetic speakers.") in readme
