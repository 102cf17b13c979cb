"""The GRU + CTC decoder: shapes, output lengths, the day layers, and the baseline architecture."""

import math

import pytest
import torch
import torch.nn.functional as F
from tolerances import assert_equal_up_to_rounding

from models.neural_decoder import GaussianSmoothing, NeuralDecoder, gaussian_kernel, output_lengths
from trainers.neural_decoder.config import ModelConfig, baseline


def small_config(**changes) -> ModelConfig:
    settings = dict(n_input_features=12, n_classes=5, n_units=8, n_layers=2, kernel_len=6, stride_len=3, n_days=3)
    settings.update(changes)
    return ModelConfig(**settings)


def architecture_parameter_count(config: ModelConfig) -> int:
    """Parameters implied by the architecture: day maps, GRU layers and directions, output layer."""
    features, hidden = config.n_input_features, config.n_units
    directions = 2 if config.bidirectional else 1
    day_maps = config.n_days * (features * features + features)
    gru = 0
    for layer in range(config.n_layers):
        layer_input = features * config.kernel_len if layer == 0 else directions * hidden
        gru += directions * 3 * (hidden * layer_input + hidden * hidden + 2 * hidden)
    head = (directions * hidden + 1) * (config.n_classes + 1)
    return day_maps + gru + head


def smoothing_reference(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """out[t] = sum_k kernel[k] * x[t + k - left], zero outside, with left = (K - 1) // 2."""
    size = len(kernel)
    left = (size - 1) // 2
    out = torch.zeros_like(x)
    for t in range(x.size(1)):
        for k in range(size):
            source = t + k - left
            if 0 <= source < x.size(1):
                out[:, t] += kernel[k] * x[:, source]
    return out


@pytest.mark.parametrize(
    "lengths, expected",
    [([32, 33, 35, 36, 100], [1, 1, 1, 2, 18]), ([31, 10, 1, 0], [1, 1, 1, 1])],
)
def test_output_lengths_floor_and_clamp(lengths, expected):
    result = output_lengths(torch.tensor(lengths), kernel_len=32, stride_len=4)
    assert result.tolist() == expected
    assert result.dtype == torch.long


def test_output_lengths_match_the_frames_forward_produces():
    config = small_config()
    model = NeuralDecoder(config).eval()
    for frames in [1, 5, 6, 7, 8, 9, 20, 31]:
        logits = model(torch.randn(2, frames, config.n_input_features), torch.tensor([0, 2]))
        frames_out = int(output_lengths(torch.tensor([frames]), config.kernel_len, config.stride_len))
        assert logits.shape == (2, frames_out, config.n_classes + 1)


def test_forward_returns_logits_per_output_frame():
    config = small_config()
    model = NeuralDecoder(config)
    logits = model(torch.randn(4, 40, 12), torch.tensor([0, 1, 2, 1]))
    assert logits.shape == (4, (40 - 6) // 3 + 1, 6)
    assert not torch.allclose(logits.exp().sum(-1), torch.ones(4, 12))  # logits, not probabilities


def test_day_layers_start_as_identity_and_act_per_day():
    config = small_config()
    model = NeuralDecoder(config).eval()
    assert model.day_weights.shape == (3, 12, 12)
    assert torch.equal(model.day_weights, torch.eye(12).expand(3, 12, 12))
    assert torch.equal(model.day_biases, torch.zeros(3, 12))
    features = torch.randn(1, 20, 12).expand(3, 20, 12)
    days = torch.tensor([0, 1, 2])
    logits = model(features, days)
    assert torch.allclose(logits[0], logits[1]) and torch.allclose(logits[0], logits[2])
    with torch.no_grad():
        model.day_biases[1] += 1.0
    changed = model(features, days)
    assert torch.allclose(changed[0], logits[0]) and torch.allclose(changed[2], logits[2])
    assert not torch.allclose(changed[1], logits[1])


def test_gaussian_kernel_is_normalised_and_centred():
    kernel = gaussian_kernel(20, 2.0)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert torch.allclose(kernel, kernel.flip(0))
    assert kernel.argmax().item() in (9, 10)


def test_smoothing_matches_loop_reference():
    x = torch.randn(2, 25, 3)
    smoothing = GaussianSmoothing(3, 20, 2.0)
    expected = smoothing_reference(x, gaussian_kernel(20, 2.0))
    assert_equal_up_to_rounding(smoothing(x), expected, 20)  # 20 taps summed; measured 1.2e-7 of 0.9


def test_gru_input_is_the_originals_unfold_of_the_day_mapped_features():
    """The window layout must match nn.Unfold((kernel_len, 1)) on (B, F, T, 1), as the original built it."""
    config = small_config()
    model = NeuralDecoder(config).eval()
    with torch.no_grad():
        model.day_weights.normal_()
    seen = {}
    model.gru.register_forward_pre_hook(lambda module, args: seen.update(windows=args[0]))
    features, days = torch.randn(2, 30, 12), torch.tensor([2, 0])
    model(features, days)
    mapped = torch.einsum("btd,bdk->btk", model.smoothing(features), model.day_weights[days])
    mapped = F.softsign(mapped + model.day_biases[days][:, None, :])  # (B, T, F)
    unfold = torch.nn.Unfold((config.kernel_len, 1), stride=config.stride_len)
    expected = unfold(mapped.permute(0, 2, 1).unsqueeze(3)).permute(0, 2, 1)  # (B, T', F * kernel_len)
    assert_equal_up_to_rounding(seen["windows"], expected, 3)  # smoothing, day map, softsign; measured 0


def test_gru_weights_are_initialised_like_the_original():
    model = NeuralDecoder(small_config(n_units=8, n_layers=1))
    hidden_weights = model.gru.weight_hh_l0  # (3H, H), orthogonal columns
    assert_equal_up_to_rounding(hidden_weights.T @ hidden_weights, torch.eye(8), 8)  # 8-term sums; measured 3.6e-7
    input_weights = model.gru.weight_ih_l0  # (3H, F * kernel_len), xavier uniform
    bound = math.sqrt(6.0 / sum(input_weights.shape))
    assert input_weights.abs().max() <= bound
    assert input_weights.abs().max() > 0.9 * bound


def test_baseline_builds_the_original_architecture():
    config = baseline().model
    with torch.device("meta"):  # shapes only: allocating and initialising 134M weights takes seconds
        model = NeuralDecoder(config)
    count = sum(parameter.numel() for parameter in model.parameters())
    print(f"baseline parameters: {count:,}")
    assert count == architecture_parameter_count(config)
    assert 133_800_000 < count < 133_900_000
    gru = model.gru
    assert (gru.input_size, gru.hidden_size, gru.num_layers) == (256 * 32, 1024, 5)
    assert gru.bidirectional and gru.dropout == 0.4 and gru.batch_first
    assert (model.head.in_features, model.head.out_features) == (2048, 41)
    assert model.day_weights.shape == (24, 256, 256)
    assert not any(name.startswith("inpLayer") for name, _ in model.named_parameters())


def test_unidirectional_and_single_layer_variants():
    config = small_config(bidirectional=False, n_layers=1, dropout=0.4)
    model = NeuralDecoder(config)
    assert sum(parameter.numel() for parameter in model.parameters()) == architecture_parameter_count(config)
    assert model(torch.randn(1, 12, 12), torch.tensor([1])).shape == (1, 3, 6)
