"""The scan-based GRU equals nn.GRU (the cuDNN/CPU kernel): outputs and gradients, every layer and direction;
with lengths, a padded sequence decodes as it would alone; on XLA (PJRT_DEVICE=CPU) it gives the same numbers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tolerances import assert_equal_up_to_rounding, rounding_tolerance
from torch import nn

from models.scan_gru import reverse_valid, scan_gru

ROOT = Path(__file__).resolve().parents[2]


def reference_gru(bidirectional: bool = True, layers: int = 2) -> nn.GRU:
    """In float64, so that both sides are exact to ~1e-15 on any CPU and a wrong scan shows at any size."""
    torch.manual_seed(0)
    return nn.GRU(input_size=6, hidden_size=5, num_layers=layers, bidirectional=bidirectional, batch_first=True,
                  dtype=torch.float64)


@pytest.mark.parametrize("bidirectional, layers", [(True, 2), (False, 3), (True, 1)])
def test_scan_gru_equals_nn_gru_with_gradients(bidirectional, layers):
    gru = reference_gru(bidirectional, layers)
    x = torch.randn(3, 7, 6, dtype=torch.float64, requires_grad=True)  # (B, T, D)
    expected, _ = gru(x)
    expected.square().sum().backward()
    expected_grads = [p.grad.clone() for p in gru.parameters()] + [x.grad.clone()]
    gru.zero_grad()
    x.grad = None
    got = scan_gru(gru, x)
    got.square().sum().backward()
    steps = layers * x.shape[1]  # the recurrence's steps in sequence, forward; as many again backward
    assert_equal_up_to_rounding(got, expected, steps)  # measured 1.2e-16 (the float32 kernels: 1.2e-7)
    for got_grad, expected_grad in zip([p.grad for p in gru.parameters()] + [x.grad], expected_grads):
        assert_equal_up_to_rounding(got_grad, expected_grad, 2 * steps)


def test_a_padded_sequence_decodes_as_it_would_alone():
    gru = reference_gru()
    lengths = torch.tensor([7, 4, 2])
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    for index, length in enumerate(lengths):
        x[index, length:] = 5.0  # padding that must never reach the valid frames
    got = scan_gru(gru, x, lengths)  # (B, T, 2H)
    for index, length in enumerate(lengths):
        alone, _ = gru(x[index:index + 1, :length])
        assert_equal_up_to_rounding(got[index, :length], alone[0], 2 * 7)  # 2 layers of up to 7 steps


def test_reversing_valid_frames_twice_gives_them_back():
    x = torch.arange(12.0).reshape(4, 3, 1)  # (T, B, 1)
    lengths = torch.tensor([4, 2, 1])
    once = reverse_valid(x, lengths)
    assert once[:, 1, 0].tolist() == [4.0, 1.0, 7.0, 10.0]  # the two valid frames swapped, padding in place
    assert torch.equal(reverse_valid(once, lengths), x)


@pytest.mark.slow
def test_the_xla_scan_matches_the_cpu_gru():
    script = (
        "import json, time, torch\n"
        "import torch_xla.core.xla_model as xm\n"
        "from torch import nn\n"
        "from models.scan_gru import scan_gru\n"
        "torch.manual_seed(0)\n"
        "gru = nn.GRU(48, 32, num_layers=2, bidirectional=True, batch_first=True)\n"
        "x = torch.randn(4, 120, 48)\n"
        "lengths = torch.tensor([120, 90, 64, 30])\n"
        "device = xm.xla_device()\n"
        "started = time.perf_counter()\n"
        "out = scan_gru(gru.to(device), x.to(device), lengths.to(device))\n"
        "out.sum().backward()\n"
        "out = out.cpu()\n"
        "seconds = time.perf_counter() - started\n"
        "expected = scan_gru(gru.cpu(), x, lengths)\n"
        "print(json.dumps({'seconds': seconds, 'max_error': (out - expected).abs().max().item()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PJRT_DEVICE": "CPU", "PYTHONPATH": str(ROOT)})
    if done.returncode != 0 and "No module named 'torch_xla'" in done.stderr:
        pytest.skip("torch_xla is not installed")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # float32, 2 layers of 120 steps, outputs within [-1, 1]: tolerance 3.7e-3; a wrong scan is off by 1e-1 or more
    assert result["max_error"] < rounding_tolerance(torch.ones(()), depth=2 * 120)
