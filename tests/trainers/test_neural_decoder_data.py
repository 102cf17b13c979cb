"""neural_decoder data (pickle loader, synthetic writer, dataset, collate, augmentations) and the family glue."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from trainers.family.context import Context
from trainers.neural_decoder import family
from trainers.neural_decoder.config import Config, DataConfig, ModelConfig, tiny
from trainers.neural_decoder.data import (
    PADDED_PHONEME_LENGTH,
    SIL,
    SentenceDataset,
    augment,
    collate_sentences,
    load_competition_data,
    make_synthetic,
    write_synthetic,
)

NO_AUGMENTATION = dict(white_noise_sd=0.0, constant_offset_sd=0.0, time_mask_prob=0.0, freq_mask_prob=0.0)


def small_synthetic(**options) -> dict:
    settings = dict(days=2, sentences_per_day=6, seed=0, test_sentences_per_day=2, n_features=16)
    settings.update(options)
    return make_synthetic(**settings)


def write_pickle(path, content):
    with open(path, "wb") as handle:
        pickle.dump(content, handle)
    return path


def test_synthetic_pickle_round_trips_through_the_loader(tmp_path):
    path = write_synthetic(tmp_path / "synthetic.pkl", days=3, sentences_per_day=5, seed=7, n_features=16)
    loaded = load_competition_data(path)
    expected = make_synthetic(3, 5, 7, n_features=16)
    assert set(loaded) == {"train", "test", "competition"}
    for split in expected:
        assert len(loaded[split]) == 3
        for got, want in zip(loaded[split], expected[split]):
            assert got["transcriptions"] == want["transcriptions"]
            assert np.array_equal(got["phoneLens"], want["phoneLens"])
            assert np.array_equal(got["timeSeriesLens"], want["timeSeriesLens"])
            for a, b in zip(got["sentenceDat"] + got["phonemes"], want["sentenceDat"] + want["phonemes"]):
                assert np.array_equal(a, b)
    assert not list(tmp_path.glob("*.partial"))


def test_synthetic_days_follow_the_competition_format():
    data = small_synthetic()
    for day in data["train"]:
        for sentence, phonemes, length, frames, text in zip(
            day["sentenceDat"], day["phonemes"], day["phoneLens"], day["timeSeriesLens"], day["transcriptions"]
        ):
            assert sentence.dtype == np.float32 and sentence.shape == (frames, 16)
            assert phonemes.dtype == np.int32 and phonemes.shape == (PADDED_PHONEME_LENGTH,)
            assert np.count_nonzero(phonemes) == length and not phonemes[length:].any()
            assert phonemes[:length].min() >= 1 and phonemes[:length].max() == SIL == phonemes[length - 1]
            assert len(text.split()) == np.sum(phonemes == SIL)
        stacked = np.concatenate(day["sentenceDat"])  # z-scored over the day
        assert np.allclose(stacked.mean(0), 0, atol=1e-4) and np.allclose(stacked.std(0), 1, atol=1e-3)


def test_synthetic_data_depends_on_the_seed_only():
    first, again, other = small_synthetic(seed=1), small_synthetic(seed=1), small_synthetic(seed=2)
    assert np.array_equal(first["train"][0]["sentenceDat"][0], again["train"][0]["sentenceDat"][0])
    assert first["train"][0]["transcriptions"] != other["train"][0]["transcriptions"]


def test_missing_pickle_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "competitionData.pkl"
    with pytest.raises(FileNotFoundError) as error:
        load_competition_data(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (["not", "a", "dict"], "dict of splits"),
        ({"train": []}, "missing split"),
        ({"train": [], "test": []}, "no days"),
        ({"train": [{"sentenceDat": []}], "test": [{}]}, "lacks phonemes, phoneLens"),
        (
            {"train": [{"sentenceDat": [np.zeros((4, 8))], "phonemes": [], "phoneLens": []}], "test": []},
            "1 sentences, 0 phoneme rows",
        ),
        (
            {"train": [{"sentenceDat": [np.zeros(4)], "phonemes": [np.zeros(5)], "phoneLens": [2]}], "test": []},
            "shape",
        ),
        ({"train": [{"sentenceDat": 3, "phonemes": [], "phoneLens": []}], "test": []}, "list or array"),
    ],
)
def test_malformed_pickle_is_a_one_line_value_error(tmp_path, content, message):
    path = write_pickle(tmp_path / "bad.pkl", content)
    with pytest.raises(ValueError, match=message) as error:
        load_competition_data(path)
    assert "\n" not in str(error.value)


def test_unreadable_file_is_a_one_line_value_error(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"this is not a pickle\n\x00\x01")
    with pytest.raises(ValueError, match="not a readable pickle") as error:
        load_competition_data(path)
    assert "\n" not in str(error.value)


def test_dataset_and_collate_pad_into_batch_dicts():
    data = small_synthetic()
    dataset = SentenceDataset(data["train"])
    assert len(dataset) == 12 and dataset.n_days == 2
    items = [dataset[0], dataset[7], dataset[11]]
    batch = collate_sentences(items)
    frames = [len(features) for features, _, _ in items]
    phonemes = [len(targets) for _, targets, _ in items]
    assert batch["features"].shape == (3, max(frames), 16) and batch["features"].dtype == torch.float32
    assert batch["feature_lens"].tolist() == frames
    assert batch["targets"].shape == (3, max(phonemes)) and batch["targets"].dtype == torch.long
    assert batch["target_lens"].tolist() == phonemes
    assert batch["day"].tolist() == [0, 1, 1] and batch["day"].dtype == torch.long
    for row, (features, targets, _) in enumerate(items):
        assert torch.equal(batch["features"][row, : len(features)], features)
        assert not batch["features"][row, len(features):].any()
        assert torch.equal(batch["targets"][row, : len(targets)], targets)
        assert not batch["targets"][row, len(targets):].any()


def test_white_noise_is_per_element_with_the_configured_sd():
    torch.manual_seed(0)
    config = DataConfig(**{**NO_AUGMENTATION, "white_noise_sd": 0.8})
    noise = augment(torch.zeros(64, 50, 32), torch.full((64,), 50), config)
    assert noise.std().item() == pytest.approx(0.8, rel=0.02)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.diff(dim=1).abs().min() > 0  # varies over time


def test_constant_offset_is_per_utterance_and_channel_and_constant_in_time():
    torch.manual_seed(0)
    config = DataConfig(**{**NO_AUGMENTATION, "constant_offset_sd": 0.2})
    offsets = augment(torch.zeros(256, 10, 64), torch.full((256,), 10), config)
    assert torch.equal(offsets, offsets[:, :1].expand_as(offsets))
    assert offsets[:, 0].std().item() == pytest.approx(0.2, rel=0.05)


def test_time_mask_zeros_one_span_inside_each_utterance():
    torch.manual_seed(0)
    config = DataConfig(**{**NO_AUGMENTATION, "time_mask_prob": 1.0, "time_mask_width": 6})
    lengths = torch.randint(3, 40, (200,))
    masked = augment(torch.ones(200, 40, 8), lengths, config)
    widths = []
    for row, length in zip(masked, lengths.tolist()):
        zero_frames = (row == 0).all(dim=1).nonzero().flatten()
        assert ((row == 0) | (row == 1)).all() and (row[length:] == 1).all()
        if len(zero_frames):
            assert zero_frames.max() < length
            assert zero_frames.tolist() == list(range(zero_frames[0], zero_frames[-1] + 1))
        widths.append(len(zero_frames))
    assert max(widths) == 6 and min(widths) == 0
    assert np.mean(widths) == pytest.approx(3.0, abs=0.5)  # uniform in [0, 6] where the utterance allows


def test_freq_mask_zeros_contiguous_channels_with_its_probability():
    torch.manual_seed(0)
    config = DataConfig(**{**NO_AUGMENTATION, "freq_mask_prob": 0.5, "freq_mask_width": 10})
    masked = augment(torch.ones(400, 5, 64), torch.full((400,), 5), config)
    zero_channels = (masked == 0).all(dim=1)  # (B, F)
    assert torch.equal((masked == 0), zero_channels[:, None, :].expand_as(masked))
    counts = zero_channels.sum(dim=1)
    assert counts.max() <= 10
    assert (counts > 0).float().mean().item() == pytest.approx(0.5 * 10 / 11, abs=0.07)
    for row in zero_channels[counts > 0]:
        channels = row.nonzero().flatten().tolist()
        assert channels == list(range(channels[0], channels[-1] + 1))


def test_augmentations_replay_from_the_global_seed():
    config = DataConfig(time_mask_prob=0.5, freq_mask_prob=0.5)
    features, lengths = torch.randn(8, 30, 16), torch.tensor([30, 25, 20, 15, 10, 30, 30, 5])
    torch.manual_seed(3)
    first = augment(features, lengths, config)
    torch.manual_seed(3)
    assert torch.equal(augment(features, lengths, config), first)
    assert not torch.equal(augment(features, lengths, config), first)
    assert torch.equal(augment(features, lengths, DataConfig(**NO_AUGMENTATION)), features)


def context(config: Config) -> Context:
    """The training context a family function gets from the engine, for calling it directly."""
    return Context(config=config, max_steps=1, artefacts=Path("artefacts"))


def tiny_family_config(**data_changes) -> Config:
    config = tiny()
    model = dataclasses.replace(config.model, n_input_features=16, n_units=16, n_layers=1, n_days=2)
    data = dataclasses.replace(config.data, **{"synthetic_days": 2, "synthetic_sentences_per_day": 8, **data_changes})
    return dataclasses.replace(config, model=model, data=data)


def test_build_data_refuses_labels_the_output_layer_cannot_hold():
    config = tiny_family_config()
    fewer = dataclasses.replace(config, model=dataclasses.replace(config.model, n_classes=5))
    with pytest.raises(ValueError, match=r"phoneme ids up to 40 but model.n_classes is 5 .* model.n_classes=40"):
        family.build_data(fewer)  # CTC on the CPU would write past the 6 outputs instead of failing


def test_build_data_reports_sizes_and_checks_days():
    bundle = family.build_data(tiny_family_config())
    assert bundle.info["train_items"] == len(bundle.train) == 16
    assert bundle.info["val_items"] == len(bundle.val) == 8
    assert bundle.info["days"] == 2 and bundle.info["feature_dim"] == 16
    assert bundle.collate.func is collate_sentences and bundle.collate.keywords["frame_multiple"] == 0
    too_many_days = tiny_family_config(synthetic_days=3)
    with pytest.raises(ValueError, match="3 days but model.n_days is 2"):
        family.build_data(too_many_days)


def test_build_data_reads_a_pickle_path(tmp_path):
    path = write_synthetic(tmp_path / "data.pkl", days=2, sentences_per_day=4, seed=0, n_features=16)
    bundle = family.build_data(tiny_family_config(source=str(path)))
    assert bundle.info["train_items"] == 8 and bundle.info["source"] == str(path)
    with pytest.raises(FileNotFoundError):
        family.build_data(tiny_family_config(source=str(tmp_path / "missing.pkl")))


def test_training_loss_augments_in_train_mode_only():
    torch.manual_seed(0)
    config = tiny_family_config(time_mask_prob=0.5, freq_mask_prob=0.5)
    bundle = family.build_data(config)
    model = family.build_model(config)
    batch = bundle.collate([bundle.train[index] for index in range(6)])
    loss, metrics = family.training_loss(model, batch, context(config))
    assert loss.ndim == 0 and torch.isfinite(loss) and metrics == {"ctc_infeasible_frac": 0.0}
    loss.backward()
    assert model.day_weights.grad is not None
    assert family.training_loss(model, batch, context(config))[0].item() != loss.item()
    model.eval()
    ctx = context(config)
    assert family.training_loss(model, batch, ctx)[0].item() == family.training_loss(model, batch, ctx)[0].item()


def test_evaluate_reports_loss_per_and_blank_fraction():
    torch.manual_seed(0)
    config = tiny_family_config()
    bundle = family.build_data(config)
    model = family.build_model(config).eval()
    batches = [bundle.collate([bundle.val[index] for index in range(start, start + 4)]) for start in (0, 4)]
    results = family.evaluate(model, batches, context(config))
    assert set(results) == {"val/loss", "val/per", "val/blank_frac", "val/loss_se", "val/per_se", "val/utterances"}
    assert results["val/per"] >= 0 and 0 <= results["val/blank_frac"] <= 1
    single = family.evaluate(model, batches[:1], context(config))["val/loss"]
    assert single == pytest.approx(family.training_loss(model, batches[0], context(config))[0].item(), rel=1e-5)
    beam_config = dataclasses.replace(config, data=dataclasses.replace(config.data, beam_width=3))
    assert family.evaluate(model, batches, context(beam_config))["val/loss"] == results["val/loss"]


def test_infeasible_fraction_flags_utterances_too_short_for_their_targets():
    output_lens = torch.tensor([3, 3, 4, 10])
    targets = torch.tensor([[1, 2, 3, 0], [1, 1, 2, 0], [1, 1, 2, 2], [5, 0, 0, 0]])
    target_lens = torch.tensor([3, 3, 4, 1])
    # needs 3, 4 (a blank between the repeated 1s), 6, 1 frames
    assert family._infeasible_fraction(output_lens, targets, target_lens).item() == pytest.approx(0.5)


def test_a_few_dozen_adam_steps_overfit_a_handful_of_sentences():
    torch.manual_seed(0)
    model_config = ModelConfig(
        n_input_features=16, n_units=16, n_layers=1, dropout=0.0, kernel_len=8, stride_len=4, n_days=2
    )
    config = Config(model=model_config, data=DataConfig(**NO_AUGMENTATION))
    data = make_synthetic(2, 3, seed=0, n_features=16, signal_sd=0.5)
    dataset = SentenceDataset(data["train"])
    batch = collate_sentences([dataset[index] for index in range(len(dataset))])
    model = family.build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(30):
        loss, _ = family.training_loss(model, batch, context(config))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses


def test_xla_batches_are_padded_to_fixed_multiples():
    items = [(torch.ones(70, 4), torch.tensor([1, 2, 3]), 0), (torch.ones(9, 4), torch.tensor([5]), 1)]
    batch = collate_sentences(items, frame_multiple=64, target_multiple=16)
    assert batch["features"].shape == (2, 128, 4) and batch["targets"].shape == (2, 16)
    assert batch["feature_lens"].tolist() == [70, 9] and batch["target_lens"].tolist() == [3, 1]
    assert batch["features"][0, 70:].abs().sum() == 0 and batch["targets"][0, 3:].abs().sum() == 0
    assert collate_sentences(items)["features"].shape == (2, 70, 4)
    config = tiny()
    config.train.device = "xla"
    assert family.build_data(config).collate.keywords == {"frame_multiple": 64, "target_multiple": 16}
