"""ReDimNet checkpoints of the original repositories in this project's keys.

IDRnD/ReDimNet torch.hub files ({"model_config": ReDimNetWrap's arguments, "state_dict": ...}, as hubconf.py loads
the published b0..b6 files), with the model config read from the file:

    model_config: F, C, block_2d_type, block_1d_type, group_divisor, embed_dim, hop_length, out_channels,
    global_context_att, emb_bn, feat_agg_dropout -> model.n_mels, .channels, .block_type, .block_1d_type, ...;
    stages_setup (stride, blocks, conv_exp, kernel_sizes (unused by the original), att_block_red or None)
    -> model.stages [stride, blocks, conv_exp, att_block_red or 0]

    backbone.stem.{0,1}.*                 -> backbone.stem.0.*, backbone.stem.1.norm.*
    backbone.stage{i}.0.w (i > 0)         -> backbone.mix.{i-1}      backbone.fin_wght1d.w -> backbone.mix.{last}
    backbone.stage{i}.2.*                 -> backbone.stages.{i}.pool.*
    backbone.stage{i}.{3+b}.conv_block.*  -> backbone.stages.{i}.blocks.{b}.*  (dwconvs.0 -> spatial, pwconv1 ->
        pointwise; conv1pw/conv2pw -> point1/point2, bn1/bn2 -> norm1/norm2, se.exitation -> se.excite)
    backbone.stage{i}.{3+B}.* (conv_exp != 1: the squeeze back) -> backbone.stages.{i}.blocks.{B}.*
    the stage's TimeContextBlock1d: red_dim_conv -> context.reduce, tcm -> context.context, exp_dim_conv ->
        context.expand; in its transformer layer attention.{q,k,v}_proj -> attention.in_proj_* (stacked q, k, v),
        layer_norm/final_layer_norm -> norm1/norm2, feed_forward.{intermediate,output}_dense -> ff.{0,2}
    backbone.mfa.{0,1}.* -> backbone.project.{0,1}.*    pool.linear{1,2}.* -> backbone.pool.attention.{0,2}.*
    bn.* -> backbone.norm.*    linear.* -> backbone.embed.*    bn2.* -> backbone.embed_norm.*
    spec.torchfbank.2.* (mel filterbank, window) -> backbone.front_end.mel.*

Left out: backbone.stage0.0.w (the first stage's weight over its single input, a constant 1 after the softmax),
spec.torchfbank.1.flipped_filter (the constant pre-emphasis filter) and cls_head.* (a classifier over the
training speakers; this project's training head is its own Matryoshka AAM, initialised fresh). The hop length and
the stage dropout carry no weights: they are settings the import sets on the model. Stored configs of other
front-ends ('tf' features), poolings or options this lab does not build are refused in one line that names them.

wespeaker's ReDimNet (wenet-e2e/wespeaker wespeaker/models/redimnet.py, a flat state dict as its trainer saves
it), sizes read from the shapes: the same blocks, but the stage Sequentials start at the pooling convolution
(stage{i}.0, blocks from stage{i}.1), the mixing weights are backbone.inputs_weights.{i} (-> backbone.mix.{i-1};
.0, a constant 1, left out), seg_1 -> backbone.embed with no BatchNorm after the pooling (model.pooled_norm=false),
and the features are Kaldi fbank with mean normalisation (model.front_end=kaldi_fbank, 10 ms hop). The trainer's
ArcMargin head (projection.*) is left out; a second embedding layer (two_emb_layer) or a GRU 1D block is refused.
"""

from __future__ import annotations

import re

import torch

from lab.errors import ConfigError
from trainers.formats.weights import Converted, Original

FORMAT = "IDRnD/ReDimNet torch.hub checkpoint"
WESPEAKER = "wenet-e2e/wespeaker ReDimNet state dict"
# ReDimNetWrap's arguments (redimnet/model.py) and its defaults, where a value other than the default would build
# a model this lab cannot (None: any value is read below)
KNOWN = {"F": None, "C": None, "block_1d_type": None, "block_2d_type": None, "stages_setup": None,
         "group_divisor": None, "out_channels": None, "embed_dim": None, "num_classes": None, "class_dropout": None,
         "feat_agg_dropout": None, "head_activation": None, "hop_length": None, "pooling_func": "ASTP",
         "feat_type": None, "global_context_att": None, "emb_bn": None, "spec_params": None,
         "return_all_outputs": None, "tf_optimized_arch": False}
FEAT_TYPES = ("pt", "pt_mel")
# MelBanks' arguments (redimnet/layers/features.py) the front-end computes with their defaults; SpecAugment's only
# act while the original trains
SPEC_DEFAULTS = {"sample_rate": 16000, "n_fft": 512, "win_length": 400, "f_min": 20, "f_max": 7600,
                 "norm_signal": False, "do_preemph": True, "spec_norm": "mn"}
DEFAULT_STAGES = [(1, 2, 1, [(3, 3)], 12), (2, 2, 1, [(3, 3)], 12), (1, 3, 1, [(3, 3)], 12), (2, 4, 1, [(3, 3)], 8),
                  (1, 4, 1, [(3, 3)], 8), (2, 4, 1, [(3, 3)], 4)]  # ReDimNetWrap's default stages_setup
SPEC_TRAINING = ("do_spec_aug", "freq_start_bin", "num_apply_spec_aug", "freq_mask_width", "time_mask_width")
CONVNEXT = {"dwconvs.0.": "spatial.", "norm.": "norm.", "pwconv1.": "pointwise."}
MULTI_KERNEL = {"dwconvs.": "spatial.", "norm.": "norm.", "pwconv1.": "pointwise."}
RESNET = {"conv1.": "conv1.", "conv1pw.": "point1.", "bn1.": "norm1.", "conv2.": "conv2.", "conv2pw.": "point2.",
          "bn2.": "norm2.", "se.squeeze.": "se.squeeze.", "se.exitation.": "se.excite."}
TRANSFORMER = {"attention.q_proj.": "attention.q_proj.", "attention.k_proj.": "attention.k_proj.",
               "attention.v_proj.": "attention.v_proj.", "attention.out_proj.": "attention.out_proj.",
               "layer_norm.": "norm1.", "feed_forward.intermediate_dense.": "ff.0.",
               "feed_forward.output_dense.": "ff.2.", "final_layer_norm.": "norm2."}
CHANNEL_NORM = {"weight": "norm.weight", "bias": "norm.bias"}


def convert(original: Original) -> Converted | None:
    """`original` in SpeakerModel keys (the training head left fresh), or None when it is neither an IDRnD
    torch.hub checkpoint nor a wespeaker ReDimNet. ConfigError (one line) when it asks for what this lab does not
    build."""
    tensors = original.tensors
    stored = original.extras.get("model_config")
    if isinstance(stored, dict) and any(name.startswith("backbone.stage") for name in tensors):
        config = model_config(stored, original.path)
        constants = ("backbone.stage0.0.w", "spec.torchfbank.1.flipped_filter")
        weights, dropped = renamed(original, module_map(config, "idrnd"), FORMAT,
                                   lambda name: name in constants or name.startswith("cls_head."))
        settings = {name: config[name] for name in ("model.hop_length", "model.stage_dropout")}
        return Converted(family="redimnet", format=FORMAT, weights=weights, config=config, settings=settings,
                         dropped=dropped)
    if {"backbone.inputs_weights.1", "backbone.stem.0.weight", "seg_1.weight"} <= set(tensors):
        config = wespeaker_config(tensors, original.path)
        weights, dropped = renamed(original, module_map(config, "wespeaker"), WESPEAKER,
                                   lambda name: name == "backbone.inputs_weights.0" or name.startswith("projection."))
        return Converted(family="redimnet", format=WESPEAKER, weights=weights, config=config,
                         settings={"model.hop_length": config["model.hop_length"]}, dropped=dropped)
    return None


def renamed(original: Original, modules: dict, kind: str, left_out) -> tuple[dict, list[str]]:
    """(the tensors in this project's keys, the names `left_out` picks); ConfigError naming tensors no module of
    the file's config holds."""
    weights, dropped, unknown = {}, [], []
    for name, value in original.tensors.items():
        if left_out(name):
            dropped.append(name)
        elif (new := rename(name, modules)) is None:
            unknown.append(name)
        else:
            weights[new] = value
    if unknown:
        raise ConfigError(f"{original.path} ({kind}) has tensors its config does not build: "
                          + ", ".join(sorted(unknown)[:5]) + (" ..." if len(unknown) > 5 else ""))
    for query in [name for name in weights if name.endswith("attention.q_proj.weight")]:
        prefix = query.removesuffix("q_proj.weight")
        for part in ("weight", "bias"):
            weights[f"{prefix}in_proj_{part}"] = torch.cat([weights.pop(f"{prefix}{which}_proj.{part}")
                                                            for which in "qkv"])
    return weights, sorted(dropped)


def wespeaker_config(tensors: dict, path) -> dict:
    """The dotted model settings of a wespeaker ReDimNet, from its shapes; ConfigError for what this lab does not
    build (two embedding layers, a pooling other than ASTP, a GRU 1D block)."""
    refused = []
    if "seg_2.weight" in tensors:
        refused.append("two embedding layers (seg_2)")
    if "pool.linear1.weight" not in tensors:
        refused.append("a pooling other than ASTP")
    if any(".tcm.0.gru." in name for name in tensors):
        refused.append("a GRU 1D block")
    if refused:
        raise ConfigError(f"{path} is a {WESPEAKER} this lab does not build: " + ", ".join(refused))
    channels = tensors["backbone.stem.0.weight"].shape[0]
    total = tensors["backbone.inputs_weights.1"].shape[2]  # (1, 2, C*F, 1)
    stages, contexts = [], []
    while f"backbone.stage{len(stages)}.0.weight" in tensors:
        here = f"backbone.stage{len(stages)}."
        wide, narrow, stride, _ = tensors[here + "0.weight"].shape  # the (stride, 1) pooling convolution
        expand = wide // (narrow * stride)
        blocks = len({name.split(".")[2] for name in tensors if name.startswith(here) and ".conv_block." in name})
        context = f"{here}{2 + blocks + (expand != 1)}."  # after the blocks, the squeeze back and to1d
        reduce = tensors.get(context + "red_dim_conv.0.weight")  # (hidden, C*F, 1)
        stages.append([stride, blocks, expand, total // reduce.shape[0] if reduce is not None else 0])
        contexts += [context] if reduce is not None else []
    block = next((f"backbone.stage{index}.1.conv_block." for index, stage in enumerate(stages) if stage[1]), "")
    resnet = block + "conv1.weight" in tensors
    grouped = [value.shape for name, value in tensors.items()  # (C, C / groups, 3, 3) of every 2D block
               if re.search(r"\.conv_block\.(conv1|dwconvs\.0)\.weight$", name)]
    # the group divisor: channels // divisor groups in every block (the largest such: several give those groups)
    divisor = max((divisor for divisor in range(1, max((shape[0] for shape in grouped), default=1) + 1)
                   if all(max(1, shape[0] // divisor) == shape[0] // shape[1] for shape in grouped)), default=1)
    one_d = "conv+att"
    if contexts and contexts[0] + "tcm.4.attention.q_proj.weight" not in tensors:
        one_d = "att" if contexts[0] + "tcm.1.attention.q_proj.weight" in tensors else "fc"
    width = tensors["backbone.mfa.0.weight"].shape[0] if "backbone.mfa.0.weight" in tensors else 0
    return {
        "model.size": "custom",
        "model.n_mels": total // channels,
        "model.channels": channels,
        "model.block_type": ("basic_resnet_fwse" if block + "se.squeeze.weight" in tensors else "basic_resnet")
        if resnet else "convnext_like",
        "model.block_1d_type": one_d,
        "model.group_divisor": divisor,
        "model.stages": stages,
        "model.embed_dim": tensors["seg_1.weight"].shape[0],
        "model.hop_length": 160,  # wespeaker's recipes: 10 ms frames at 16 kHz
        "model.front_end": "kaldi_fbank",
        "model.pooled_norm": False,
        "model.out_channels": width,
        "model.global_context": tensors["pool.linear1.weight"].shape[1] == 3 * (width or total),
        "model.embedding_norm": False,
    }


def model_config(stored: dict, path) -> dict:
    """ReDimNetWrap's arguments as this project's dotted model settings; ConfigError naming what it cannot build."""
    unknown = sorted(name for name in stored if name not in KNOWN)
    refused = [f"{name}={stored[name]!r}" for name, default in KNOWN.items()
               if default is not None and name in stored and stored[name] != default]
    if stored.get("feat_type", "pt") not in FEAT_TYPES:
        refused.append(f"feat_type={stored['feat_type']!r}")
    spec = stored.get("spec_params") or {}
    refused += [f"spec_params.{name}={value!r}" for name, value in spec.items()
                if name not in SPEC_TRAINING and (name not in SPEC_DEFAULTS or value != SPEC_DEFAULTS[name])]
    stages = []
    for stage in stored.get("stages_setup", DEFAULT_STAGES):
        numbers = [stage[index] for index in (0, 1, 2)] + [stage[4] or 0] if len(stage) == 5 else []
        if not numbers or not all(isinstance(number, int) for number in numbers):
            refused.append(f"stages_setup entry {list(stage)!r}")
        stages.append(numbers)
    if unknown or refused:
        raise ConfigError(f"{path} is an {FORMAT} whose stored config this lab does not build: "
                          + ", ".join(refused + [f"{name} (unknown)" for name in unknown]))
    return {
        "model.size": "custom",
        "model.n_mels": int(stored.get("F", 72)),
        "model.channels": int(stored.get("C", 16)),
        "model.block_type": stored.get("block_2d_type", "convnext_like"),
        "model.block_1d_type": stored.get("block_1d_type", "att"),
        "model.group_divisor": int(stored.get("group_divisor", 4)),
        "model.stages": stages,
        "model.embed_dim": int(stored.get("embed_dim", 192)),
        "model.hop_length": int(stored.get("hop_length", 160)),
        "model.out_channels": int(stored.get("out_channels") or 0),
        "model.global_context": bool(stored.get("global_context_att", False)),
        "model.embedding_norm": bool(stored.get("emb_bn", False)),
        "model.stage_dropout": float(stored.get("feat_agg_dropout", 0.0)),
        "model.front_end": "mel",
        "model.pooled_norm": True,
    }


def module_map(config: dict, layout: str) -> dict[str, tuple[str, dict]]:
    """{original module prefix: (this project's prefix, {original sub-prefix: project sub-prefix})} for the
    model `config` describes, in IDRnD's key layout (`layout` "idrnd") or wespeaker's ("wespeaker")."""
    one_d = config["model.block_1d_type"]
    context = {"red_dim_conv.0.": "reduce.0.", "red_dim_conv.1.": "reduce.1.norm.", "exp_dim_conv.": "expand."}
    if one_d == "conv+att":
        context |= {f"tcm.{index}.{old}": f"context.{index}.{new}" for index in range(4)
                    for old, new in CONVNEXT.items()}
        context |= {f"tcm.4.{old}": f"context.4.{new}" for old, new in TRANSFORMER.items()}
    elif one_d == "att":
        context |= {"tcm.0.conv.": "context.0.conv.", "tcm.0.norm.": "context.0.norm.norm."}
        context |= {f"tcm.1.{old}": f"context.1.{new}" for old, new in TRANSFORMER.items()}
    elif one_d == "conv":
        context |= {f"tcm.{index}.{old}": f"context.{index}.{new}" for index in range(4)
                    for old, new in MULTI_KERNEL.items()}
    else:
        context |= {"tcm.0.": "context.0.", "tcm.1.": "context.1.norm.", "tcm.3.": "context.3."}
    block = RESNET if config["model.block_type"].startswith("basic_resnet") else CONVNEXT
    block = {f"conv_block.{old}": new for old, new in block.items()}
    stages = config["model.stages"]
    modules = {"backbone.stem.0.": ("backbone.stem.0.", {"": ""}),
               "backbone.stem.1.": ("backbone.stem.1.", CHANNEL_NORM),
               "backbone.mfa.": ("backbone.project.", {"": ""}),
               "pool.linear1.": ("backbone.pool.attention.0.", {"": ""}),
               "pool.linear2.": ("backbone.pool.attention.2.", {"": ""})}
    if layout == "idrnd":  # stage Sequentials: weigth1d, to2d, the pooling convolution, blocks
        first = 3
        modules |= {"backbone.fin_wght1d.": (f"backbone.mix.{len(stages) - 1}", {"w": ""}),
                    "bn.": ("backbone.norm.", {"": ""}), "linear.": ("backbone.embed.", {"": ""}),
                    "bn2.": ("backbone.embed_norm.", {"": ""}),
                    "spec.torchfbank.2.": ("backbone.front_end.mel.", {"": ""})}
        modules |= {f"backbone.stage{index}.0.": (f"backbone.mix.{index - 1}", {"w": ""})
                    for index in range(1, len(stages))}
    else:  # stage Sequentials: the pooling convolution, blocks
        first = 1
        modules |= {"seg_1.": ("backbone.embed.", {"": ""})}
        modules |= {f"backbone.inputs_weights.{index}": (f"backbone.mix.{index - 1}", {"": ""})
                    for index in range(1, len(stages) + 1)}
    for index, (_, blocks, expand, reduction) in enumerate(stages):
        here, there = f"backbone.stage{index}.", f"backbone.stages.{index}."
        modules[f"{here}{first - 1}."] = (there + "pool.", {"": ""})
        for number in range(blocks):
            modules[f"{here}{first + number}."] = (f"{there}blocks.{number}.", block)
        squeeze = first + blocks
        if expand != 1:
            modules[f"{here}{squeeze}."] = (f"{there}blocks.{blocks}.", {"": ""})
            squeeze += 1
        if reduction:
            modules[f"{here}{squeeze + 1}."] = (f"{there}context.", context)  # after to1d
    return modules


def rename(name: str, modules: dict[str, tuple[str, dict]]) -> str | None:
    """`name` in this project's keys; None when no module of the stored config holds it."""
    prefix = max((prefix for prefix in modules if name.startswith(prefix)), key=len, default=None)
    if prefix is None:
        return None
    target, parts = modules[prefix]
    rest = name[len(prefix):]
    part = max((part for part in parts if rest.startswith(part)), key=len, default=None)
    if part is None:
        return None
    return target + parts[part] + rest[len(part):]
