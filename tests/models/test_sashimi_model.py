"""SaShiMi: causal at every level, the recurrence gives the convolution's outputs, and lengths are checked."""

import pytest
import torch
from tolerances import assert_equal_up_to_rounding, rounding_tolerance

from models.s4 import S4, legs_dplr
from models.sashimi import S4D, SaShiMi
from trainers.sashimi.config import ModelConfig


DEPTH = 14  # the small model's Conv and Linear layers, in sequence down and up the U-Net


def small(**changes) -> ModelConfig:
    return ModelConfig(**{"d_model": 8, "n_layers": 1, "pool": [2, 2], "expand": 2, "ff": 2, "state_size": 8,
                          **changes})


@pytest.mark.parametrize("head", ["categorical", "dml"])
def test_a_future_sample_never_changes_an_earlier_output(head):
    torch.manual_seed(0)
    model = SaShiMi(small(head=head, n_mixtures=3)).eval()
    codes = torch.randint(0, 256, (1, 32))
    changed = codes.clone()
    changed[0, 20] = (codes[0, 20] + 17) % 256
    before, after = model(codes), model(changed)
    # everything up to the change: untouched up to the FFT convolution's rounding (measured 4.8e-7; tolerance 5e-4)
    assert_equal_up_to_rounding(before[0, :20], after[0, :20], DEPTH)
    # the change itself is seen (by 0.7 to 2.4: over a thousand times the tolerance)
    assert (before[0, 20:] - after[0, 20:]).abs().max() > rounding_tolerance(before[0, 20:], DEPTH)


S4_DPLR = {"ssm": "s4", "norm": "scalar", "pool_weight_norm": True}


@pytest.mark.parametrize("layer", [{}, S4_DPLR], ids=["s4d", "s4"])
def test_the_recurrence_gives_the_convolutions_outputs(layer):
    torch.manual_seed(1)
    model = SaShiMi(small(**layer)).eval()
    codes = torch.randint(0, 256, (2, 16))
    parallel = model(codes)  # (B, L, 256)
    state = model.initial_state(2)
    stepped = []
    for t in range(16):
        out, state = model.step(codes[:, t], state)
        stepped.append(out)
    assert_equal_up_to_rounding(torch.stack(stepped, dim=1), parallel, DEPTH)  # measured 4.8e-7 of 2.1: 1e3x less


def test_the_s4d_kernel_matches_its_recurrence_over_long_chunks(monkeypatch):
    monkeypatch.setattr("models.sashimi.KERNEL_CHUNK", 5)  # several kernel chunks
    torch.manual_seed(2)
    layer = S4D(4, state_size=6)
    u = torch.randn(1, 23, 4)
    state = layer.initial_state(1, torch.device("cpu"))
    outputs = []
    for t in range(23):
        y, state = layer.step(u[:, t], state)
        outputs.append(y)
    assert_equal_up_to_rounding(torch.stack(outputs, dim=1), layer(u), 23)  # 23 steps; measured 3e-8 of 0.67


def test_the_s4_kernel_doubles_its_length_and_keeps_matching_its_recurrence():
    torch.manual_seed(3)
    layer = S4(4, state_size=8, copies=2)
    layer(torch.randn(1, 6, 4))  # attunes C-tilde to 6 samples
    u = torch.randn(1, 20, 4)
    with torch.no_grad():
        convolved = layer(u)  # doubles the kernel length: 6 -> 12 -> 24
    assert layer.kernel_length.item() == 24
    state = layer.initial_state(1, torch.device("cpu"))
    outputs = []
    for t in range(20):
        y, state = layer.step(u[:, t], state)
        outputs.append(y)
    assert_equal_up_to_rounding(torch.stack(outputs, dim=1), convolved, 20)  # 20 steps; measured 3e-8 of 0.33


def test_legs_in_dplr_form_is_the_hippo_legs_matrix():
    """Lambda - P P^* over both conjugate halves is HiPPO-LegS (A_nk = -sqrt(2n+1) sqrt(2k+1) for n > k, -(n+1) on
    the diagonal: the S4 paper) in another basis, so it has LegS's eigenvalues -1 .. -N."""
    eigenvalues, p, _ = legs_dplr(8)
    assert (eigenvalues.real + 0.5).abs().max() < 1e-12 and (eigenvalues.imag < 0).all()
    lam, p = torch.cat([eigenvalues, eigenvalues.conj()]), torch.cat([p, p.conj()])
    got = torch.linalg.eigvals(torch.diag(lam) - torch.outer(p, p.conj()))
    assert got.imag.abs().max() < 1e-6
    assert torch.allclose(got.real.sort().values, -torch.arange(8, 0, -1, dtype=torch.float64), atol=1e-6)


def test_a_length_that_does_not_pool_is_refused():
    model = SaShiMi(small())
    with pytest.raises(ValueError, match="not a multiple of the pooling product 4"):
        model(torch.zeros(1, 10, dtype=torch.long))


def test_the_mixture_head_starts_with_moderate_scales():
    model = SaShiMi(small(head="dml", n_mixtures=5))
    log_scales = model.head.bias[10:]
    assert model.head.out_features == 15 and ((-1.0 <= log_scales) & (log_scales <= -0.5)).all()
