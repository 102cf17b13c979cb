"""The waveform heads' losses: DML against a float64 PixelCNN++ reference, gradients, normalisation at 8 and 16
bits, quantisation round trips, and the chunked categorical loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from tolerances import assert_equal_up_to_rounding

from models.dml import (
    chunked_cross_entropy,
    dequantize,
    dml_log_prob,
    dml_nll,
    dml_sample,
    log_scale_floor,
    quantize,
)


def reference_log_prob(params: torch.Tensor, codes: torch.Tensor, bits: int) -> torch.Tensor:
    """PixelCNN++'s discretised logistic mixture, written out per element in float64 (slow, plain)."""
    k = params.shape[-1] // 3
    out = torch.empty(codes.shape, dtype=torch.float64)
    last = 2**bits - 1
    for index in range(codes.numel()):
        b, t = divmod(index, codes.shape[1])
        logits, means, log_scales = params[b, t, :k], params[b, t, k:2 * k], params[b, t, 2 * k:]
        log_scales = log_scales.clamp(min=log_scale_floor(bits))
        code = int(codes[b, t])
        x = code / last * 2 - 1
        weights = torch.log_softmax(logits, dim=0)
        terms = []
        for j in range(k):
            inv = math.exp(-log_scales[j])
            plus, minus = inv * (x - means[j] + 1 / last), inv * (x - means[j] - 1 / last)
            if code == 0:
                log_p = plus - F.softplus(plus)
            elif code == last:
                log_p = -F.softplus(minus)
            else:
                delta = torch.sigmoid(plus) - torch.sigmoid(minus)
                if delta > 1e-5:
                    log_p = torch.log(delta)
                else:
                    mid = inv * (x - means[j])
                    log_p = mid - log_scales[j] - 2 * F.softplus(mid) - math.log(last / 2)
            terms.append(log_p + weights[j])
        out[b, t] = torch.logsumexp(torch.stack(terms), dim=0)
    return out


@pytest.mark.parametrize("bits", [8, 16])
def test_dml_matches_the_float64_reference(bits):
    torch.manual_seed(bits)
    params = torch.randn(2, 40, 15, dtype=torch.float64)
    params[..., 5:10] *= 0.5  # means inside [-1, 1]
    params[..., 10:] = params[..., 10:] * 2 - 3  # log-scales around -3, some below the floor at 8 bits
    codes = torch.randint(0, 2**bits, (2, 40))
    codes[0, :3] = torch.tensor([0, 2**bits - 1, 2 ** (bits - 1)])  # both edges and the middle
    ours = dml_log_prob(params.float(), codes, bits).double()
    # ours in float32 against a float64 loop, 6 steps (the scale, the sigmoids, their difference, the log, the
    # log-softmax, the logsumexp): tolerance 1.5e-3 (8 bits) and 2.7e-3 (16 bits, log-probabilities down to -30),
    # 400x and 300x the differences measured (3.5e-6, 8.8e-6)
    assert_equal_up_to_rounding(ours, reference_log_prob(params, codes, bits), 6, dtype=torch.float32)


def test_dml_gradients_pass_gradcheck_in_float64():
    torch.manual_seed(0)
    params = torch.randn(1, 6, 9, dtype=torch.float64, requires_grad=True)
    codes = torch.tensor([[0, 3, 100, 128, 200, 255]])

    def loss(p):
        logits, means, log_scales = p.chunk(3, dim=-1)
        x = codes.double().unsqueeze(-1) / 255 * 2 - 1
        inv = torch.exp(-log_scales.clamp(min=-7.0))
        plus, minus = inv * (x - means + 1 / 255), inv * (x - means - 1 / 255)
        inner = torch.log((torch.sigmoid(plus) - torch.sigmoid(minus)).clamp(min=1e-12))
        first, last = (codes == 0).unsqueeze(-1), (codes == 255).unsqueeze(-1)
        log_p = torch.where(first, plus - F.softplus(plus), torch.where(last, -F.softplus(minus), inner))
        return torch.logsumexp(log_p + F.log_softmax(logits, dim=-1), dim=-1)

    assert_equal_up_to_rounding(loss(params), dml_log_prob(params, codes, 8), 6)  # same function, float64
    assert torch.autograd.gradcheck(lambda p: dml_log_prob(p, codes, 8), (params,), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize("bits", [8, 16])
def test_every_bin_together_has_probability_one(bits):
    torch.manual_seed(1)
    params = torch.tensor([[[0.2, -0.1, 0.0, -0.3, 0.4, 0.05, -2.5, -1.0, -4.0]]])  # 3 components
    codes = torch.arange(2**bits).unsqueeze(0)  # every bin
    total = dml_log_prob(params.expand(1, 2**bits, 9), codes, bits).double().exp().sum()
    assert total.item() == pytest.approx(1.0, abs=2e-3)


def test_the_edge_test_by_value_would_overcount_at_16_bits():
    """The `x > 0.999` test would give the top 33 16-bit bins the whole right tail each: far above 1."""
    params = torch.tensor([[[0.0, 0.99, -3.0]]])  # one component sitting near the top edge
    top = torch.arange(2**16 - 40, 2**16).unsqueeze(0)
    by_index = dml_log_prob(params.expand(1, 40, 3), top, 16).exp().sum()
    x = top.float() / (2**16 - 1) * 2 - 1
    tail = torch.sigmoid(-(x - 0.99 - 1 / (2**16 - 1)) / math.exp(-3.0))  # what each "edge" bin would get
    assert by_index < 1.0 and tail[x > 0.999].sum() > 5.0


def test_sampling_follows_a_sharp_mixture():
    params = torch.tensor([[0.0, 10.0, 0.5, -0.5, -6.0, -6.0]]).expand(2000, 6)  # component 2 at -0.5
    samples = dml_sample(params, 8).float() / 255 * 2 - 1
    assert (samples - (-0.5)).abs().mean() < 0.02


@pytest.mark.parametrize("kind", ["mulaw", "linear"])
def test_quantisation_round_trips(kind):
    audio = torch.linspace(-1, 1, 1001)
    codes = quantize(audio, 8, kind)
    assert codes.min() == 0 and codes.max() == 255
    assert torch.equal(quantize(dequantize(codes, 8, kind), 8, kind), codes)


def test_chunked_cross_entropy_equals_the_plain_one_with_gradients():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 300)
    features = torch.randn(2, 50, 8, requires_grad=True)
    codes = torch.randint(0, 300, (2, 50))
    plain = F.cross_entropy(head(features).flatten(0, 1), codes.flatten())
    plain.backward()
    expected = features.grad.clone()
    features.grad = None
    chunked = chunked_cross_entropy(features, head, codes, chunk=16)
    chunked.backward()
    assert_equal_up_to_rounding(chunked, plain, 3)  # head, log-softmax, mean; measured 0
    assert_equal_up_to_rounding(features.grad, expected, 3)


def test_dml_nll_is_the_mean():
    params, codes = torch.randn(2, 5, 6), torch.randint(0, 256, (2, 5))
    assert dml_nll(params, codes, 8).item() == pytest.approx(-dml_log_prob(params, codes, 8).mean().item())
