"""An nn.GRU's forward pass with its time loop written as a scan, for XLA.

torch_xla traces a Python loop over time into one graph per step, so a bidirectional GRU over hundreds of frames
compiles for many minutes; torch_xla's own scan-based GRU is unidirectional only. Here each direction of each
layer is one `scan` over a compiled step (torch_xla.experimental.scan on an XLA device, a plain loop elsewhere),
reading the weights of an ordinary `nn.GRU`, so checkpoints are the same on every device.

The backward direction runs over each sequence's valid frames in reverse (`lengths`): frames padded on to a
batch (to fixed shapes on XLA) are never read before real ones, so a padded sequence decodes exactly as it would
alone. Without `lengths` the result equals `nn.GRU` on the same input.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Carry = dict[str, torch.Tensor]
Step = Callable[[Carry, torch.Tensor], tuple[Carry, torch.Tensor]]


def gru_step(carry: Carry, input_gates: torch.Tensor) -> tuple[Carry, torch.Tensor]:
    """One GRU time step. carry: h (B, H), w_hh (3H, H), b_hh (3H,); input_gates: x W_ih^T + b_ih (B, 3H)."""
    hidden = carry["h"]  # (B, H)
    hidden_gates = hidden @ carry["w_hh"].T + carry["b_hh"]  # (B, 3H)
    input_r, input_z, input_n = input_gates.chunk(3, dim=-1)
    hidden_r, hidden_z, hidden_n = hidden_gates.chunk(3, dim=-1)
    reset = torch.sigmoid(input_r + hidden_r)
    update = torch.sigmoid(input_z + hidden_z)
    new = torch.tanh(input_n + reset * hidden_n)
    hidden = (1 - update) * new + update * hidden  # (B, H)
    return {**carry, "h": hidden}, hidden


def loop_scan(step: Step, init: Carry, xs: torch.Tensor) -> tuple[Carry, torch.Tensor]:
    """`step` over the leading axis of xs (T, ...): the final carry and the stacked outputs (T, ...)."""
    carry, outputs = init, []
    for x in xs:
        carry, output = step(carry, x)
        outputs.append(output)
    return carry, torch.stack(outputs)


def scan(step: Step, init: Carry, xs: torch.Tensor) -> tuple[Carry, torch.Tensor]:
    """torch_xla's scan (one compiled step) for XLA tensors, else `loop_scan`."""
    if xs.device.type == "xla":
        from torch_xla.experimental.scan import scan as xla_scan

        return xla_scan(step, init, xs, is_fn_pure=True)
    return loop_scan(step, init, xs)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """x (T, B, D) with each sequence's first lengths[b] frames in reverse order and its padding left in place
    (all T frames reversed when lengths is None). Applying it twice gives x back."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.size(0), device=x.device)[:, None]  # (T, 1)
    lengths = lengths.to(x.device)[None, :]  # (1, B)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    return x.gather(0, index[:, :, None].expand_as(x))


def direction(gru: nn.GRU, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """One direction of one layer over x (T, B, D): its hidden states (T, B, H)."""
    weight_ih = getattr(gru, f"weight_ih_l{layer}{suffix}")  # (3H, D)
    weight_hh = getattr(gru, f"weight_hh_l{layer}{suffix}")  # (3H, H)
    bias_ih = getattr(gru, f"bias_ih_l{layer}{suffix}") if gru.bias else None
    bias_hh = getattr(gru, f"bias_hh_l{layer}{suffix}") if gru.bias else torch.zeros_like(weight_hh[:, 0])
    input_gates = F.linear(x, weight_ih, bias_ih)  # (T, B, 3H): one matmul for every step
    init = {"h": x.new_zeros(x.size(1), gru.hidden_size), "w_hh": weight_hh, "b_hh": bias_hh}
    _, hidden = scan(gru_step, init, input_gates)
    return hidden


def scan_gru(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The output of `gru` (batch_first or not, one or two directions, any layers; zero initial state) for x,
    computed with scans. lengths (B,): valid frames per sequence for the backward direction. Returns the last
    layer's hidden states, (B, T, directions * H) for a batch_first GRU."""
    if gru.batch_first:
        x = x.transpose(0, 1)  # (T, B, D)
    for layer in range(gru.num_layers):
        if layer and gru.dropout and gru.training:
            x = F.dropout(x, gru.dropout, training=True)
        outputs = [direction(gru, x, layer, "")]  # [(T, B, H)]
        if gru.bidirectional:
            backward = direction(gru, reverse_valid(x, lengths), layer, "_reverse")
            outputs.append(reverse_valid(backward, lengths))
        x = torch.cat(outputs, dim=-1)  # (T, B, directions * H)
    return x.transpose(0, 1) if gru.batch_first else x
