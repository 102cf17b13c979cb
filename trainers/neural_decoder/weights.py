"""cffan/neural_seq_decoder checkpoints (`modelWeights`, a GRUDecoder state dict saved with torch.save) in this
project's keys.

    dayWeights (D, F, F) -> day_weights          dayBias (D, 1, F) -> day_biases (D, F)
    gaussianSmoother.weight (F, 1, 20) -> smoothing.weight
    gru_decoder.* -> gru.*                        fc_decoder_out.* -> head.*
    inpLayer{d}.* (created, never used by the forward) -> left out

The model's sizes come from the shapes; the unfold stride is not in the weights and is read from the `args`
pickle the original's trainer writes beside `modelWeights`, when it is there.
"""

from __future__ import annotations

import pickle
import re

from trainers.formats.weights import Converted, Original

FORMAT = "cffan/neural_seq_decoder GRUDecoder state dict"
RENAMES = (("gaussianSmoother.", "smoothing."), ("gru_decoder.", "gru."), ("fc_decoder_out.", "head."))


def convert(original: Original) -> Converted | None:
    """`original` in NeuralDecoder keys, or None when it is not a GRUDecoder state dict."""
    tensors = original.tensors
    if not {"dayWeights", "dayBias", "gru_decoder.weight_ih_l0", "fc_decoder_out.weight"} <= set(tensors):
        return None
    weights, dropped = {}, []
    for name, value in tensors.items():
        if name.startswith("inpLayer"):
            dropped.append(name)
        elif name == "dayWeights":
            weights["day_weights"] = value
        elif name == "dayBias":
            weights["day_biases"] = value.squeeze(1)  # (D, 1, F) -> (D, F)
        else:
            for old, new in RENAMES:
                name = name.replace(old, new, 1) if name.startswith(old) else name
            weights[name] = value
    days, features, _ = tensors["dayWeights"].shape
    layers = 1 + max(int(match.group(1)) for name in tensors if (match := re.match(r"gru_decoder\.weight_ih_l(\d+)",
                                                                                     name)))
    config = {
        "model.n_input_features": features,
        "model.n_days": days,
        "model.n_units": tensors["gru_decoder.weight_hh_l0"].shape[1],
        "model.n_layers": layers,
        "model.bidirectional": "gru_decoder.weight_ih_l0_reverse" in tensors,
        "model.kernel_len": tensors["gru_decoder.weight_ih_l0"].shape[1] // features,
        "model.n_classes": tensors["fc_decoder_out.weight"].shape[0] - 1,
    }
    args = original.path.with_name("args")
    if args.is_file():
        with args.open("rb") as stream:
            stored = pickle.load(stream)
        config["model.stride_len"] = stored.get("strideLen", 4)
        config["model.gaussian_smooth_width"] = stored.get("gaussianSmoothWidth", 2.0)
    return Converted(family="neural_decoder", format=FORMAT, weights=weights, config=config, dropped=sorted(dropped))
