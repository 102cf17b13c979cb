"""state-spaces/s4 SaShiMi checkpoints (the training code's keys, as in the released sashimi_sc09.pt: the
LightningModule's `model.`, `encoder.0.`, `decoder.0.output_transform.`) in this project's keys.

    encoder.0.weight -> encoder.weight            decoder.0.output_transform.* -> head.*       model.norm.* -> norm.*
    model.d_layers.{i}.linear.*     -> level i's down.*      (level i: 'levels.' + 'inner.' * i)
    model.u_layers.{j}.0.linear.*   -> level (pools - 1 - j)'s up.*
    model.c_layers.{k}.*            -> the centre's blocks.{k}.*
    model.u_layers.{j}.{k + 1}.*    -> level (pools - 1 - j)'s stack.blocks.{k}.*
    weight_g, weight_v -> parametrizations.weight.original0, original1 (weight norm)
    in a block: norm.norm.m, .s -> norm.shift, .scale; layer.layer.D (1, H) -> layer.d (H,);
    layer.layer.kernel.{inv_dt, A_real, A_imag, B, P, C, l_kernel} -> layer.{inv_dt, a_real, a_imag, b, p, c,
    kernel_length} (B (1, S, N/2, 2) -> (S, N/2, 2), C (1, H, N/2, 2) -> (H, N/2, 2));
    layer.output_linear.0.* -> layer.output.*; layer.ff.0.0.*, layer.ff.2.* -> layer.inner.*, layer.outer.*

The pools order their features (channel, offset) where this project reshapes (offset, channel): down-pool columns
and up-pool rows are permuted to match. Sizes come from the shapes.
"""

from __future__ import annotations

import math
import re

import torch

from lab.errors import ConfigError
from trainers.formats.weights import Converted, Original

FORMAT = "state-spaces/s4 SaShiMi (training code, full S4)"
KERNEL = {"inv_dt": "inv_dt", "A_real": "a_real", "A_imag": "a_imag", "B": "b", "P": "p", "C": "c",
          "l_kernel": "kernel_length"}
BLOCK = {"norm.norm.m": "norm.shift", "norm.norm.s": "norm.scale", "layer.layer.D": "layer.d",
         "layer.output_linear.0.weight": "layer.output.weight", "layer.output_linear.0.bias": "layer.output.bias",
         "layer.ff.0.0.weight": "layer.inner.weight", "layer.ff.0.0.bias": "layer.inner.bias",
         "layer.ff.2.weight": "layer.outer.weight", "layer.ff.2.bias": "layer.outer.bias"}
POOL = {"bias": "bias", "weight_g": "parametrizations.weight.original0",
        "weight_v": "parametrizations.weight.original1"}


def convert(original: Original) -> Converted | None:
    """`original` in SaShiMi keys, or None when it is not a state-spaces/s4 SaShiMi checkpoint."""
    tensors = original.tensors
    if not {"encoder.0.weight", "model.d_layers.0.linear.weight_v", "model.norm.weight"} <= set(tensors):
        return None
    pools = 1 + max(int(m.group(1)) for name in tensors if (m := re.match(r"model\.d_layers\.(\d+)\.", name)))
    widths = [tensors["encoder.0.weight"].shape[1]]
    factors = []
    for i in range(pools):
        out_features, in_features = tensors[f"model.d_layers.{i}.linear.weight_v"].shape
        factors.append(in_features // widths[-1])
        widths.append(out_features)
    weights = {"encoder.weight": tensors["encoder.0.weight"], "norm.weight": tensors["model.norm.weight"],
               "norm.bias": tensors["model.norm.bias"], "head.weight": tensors["decoder.0.output_transform.weight"],
               "head.bias": tensors["decoder.0.output_transform.bias"]}
    for name, value in tensors.items():
        if match := re.match(r"model\.d_layers\.(\d+)\.linear\.(\w+)$", name):
            i = int(match.group(1))
            weights[f"{_level(i)}down.{POOL[match.group(2)]}"] = _pool_columns(value, widths[i], factors[i])
        elif match := re.match(r"model\.u_layers\.(\d+)\.0\.linear\.(\w+)$", name):
            i = pools - 1 - int(match.group(1))
            weights[f"{_level(i)}up.{POOL[match.group(2)]}"] = _pool_rows(value, widths[i], factors[i])
        elif match := re.match(r"model\.c_layers\.(\d+)\.(.+)$", name):
            weights.update(_block(f"{_level(pools)}blocks.{match.group(1)}.", match.group(2), value))
        elif match := re.match(r"model\.u_layers\.(\d+)\.(\d+)\.(.+)$", name):
            prefix = f"{_level(pools - 1 - int(match.group(1)))}stack.blocks.{int(match.group(2)) - 1}."
            weights.update(_block(prefix, match.group(3), value))
    first = "model.c_layers.0.layer.layer.kernel."
    if tensors[first + "P"].shape[0] != 1:
        raise ConfigError(f"{original.path}: an S4 of rank {tensors[first + 'P'].shape[0]}; this lab's S4 is rank 1")
    expand = widths[1] // widths[0]
    if widths != [widths[0] * expand**i for i in range(pools + 1)]:
        raise ConfigError(f"{original.path}: pooling widths {widths} do not grow by one factor")
    centre = sum(1 for name in tensors if re.match(r"model\.c_layers\.\d+\.layer\.layer\.kernel\.C$", name))
    ff_key = next((name for name in tensors if re.match(r"model\.c_layers\.\d+\.layer\.ff\.0\.0\.weight$", name)), None)
    config = {
        "model.d_model": widths[0],
        "model.n_layers": centre,
        "model.pool": factors,
        "model.expand": expand,
        "model.ff": tensors[ff_key].shape[0] // widths[-1] if ff_key else 0,
        "model.state_size": 2 * tensors[first + "C"].shape[-2],
        "model.ssm": "s4",
        "model.ssm_copies": tensors[first + "A_real"].shape[0],
        "model.norm": "scalar",
        "model.pool_weight_norm": True,
        "model.bits": int(math.log2(tensors["encoder.0.weight"].shape[0])),
        "model.head": "categorical",
        "model.input_encoder": "embedding",
    }
    return Converted(family="sashimi", format=FORMAT, weights=weights, config=config)


def _level(depth: int) -> str:
    return "levels." + "inner." * depth


def _block(prefix: str, name: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    if name.startswith("layer.layer.kernel."):
        key = KERNEL[name.removeprefix("layer.layer.kernel.")]
        if key in ("b", "c"):
            value = value.squeeze(0)  # (1, S, N/2, 2) -> (S, N/2, 2); (1, H, N/2, 2) -> (H, N/2, 2)
        return {prefix + "layer." + key: value}
    if name == "layer.layer.D":
        value = value.squeeze(0)  # (1, H) -> (H,)
    return {prefix + BLOCK[name]: value}


def _pool_columns(value: torch.Tensor, width: int, factor: int) -> torch.Tensor:
    """Down-pool weight_v (out, H p) with columns (channel, offset) -> (offset, channel); bias and g as they are."""
    if value.dim() < 2 or value.shape[1] != width * factor:
        return value
    return value.reshape(value.shape[0], width, factor).transpose(1, 2).reshape(value.shape[0], -1)


def _pool_rows(value: torch.Tensor, width: int, factor: int) -> torch.Tensor:
    """Up-pool rows (H p, ...) ordered (channel, offset) -> (offset, channel): weight_v, weight_g and bias."""
    rest = value.shape[1:]
    return value.reshape(width, factor, *rest).transpose(0, 1).reshape(width * factor, *rest)
