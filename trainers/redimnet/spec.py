"""The redimnet family's `SPEC`, found through the `lab.families` entry point (torch-free at import).

Its own checks of a config, its overfitting advice, the margin schedule's stages, its metrics and panels.
"""

import re

from lab.errors import ConfigError
from lab.families.spec import EvalStage, Lazy, Panel
from lab.health.rules import metric_points
from trainers.commands.declarations import EMBED, WEIGHTS
from trainers.family.config import require_at_least
from trainers.family.spec import family_spec
from trainers.redimnet import config

RUNTIME = "trainers.redimnet.family"
BLOCKS = ("convnext_like", "convnext_like_relu", "basic_resnet", "basic_resnet_fwse")
BLOCKS_1D = ("conv+att", "att", "conv", "fc")  # models.redimnet.BLOCKS_1D, without importing torch
FRONT_ENDS = ("mel", "kaldi_fbank")
# metrics logged per Matryoshka dim (family.py): val/loss_<dim> every evaluation, EER and minDCF every data.eer_every
PER_DIM = re.compile(r"val/(loss|eer|mindcf)_(\d+)")


def validate(values: config.Config) -> None:
    """Family checks at `lab new-run`: Matryoshka dims against the embedding and the judged metric, stages
    against the mel rows."""
    model, data = values.model, values.data
    require_at_least("model", model, {"n_mels": 1, "channels": 1, "group_divisor": 1, "embed_dim": 1,
                                      "speakers": 2, "margin_start_epoch": 0, "margin_fix_epoch": 0,
                                      "hop_length": 1, "out_channels": 0, "stage_dropout": 0})
    require_at_least("data", data, {"sample_rate": 1, "held_out_per_speaker": 0, "speakers_per_batch": 0,
                                    "synthetic_speakers": 2, "synthetic_val_speakers": 2, "synthetic_utterances": 2,
                                    "eer_every": 0})
    dims = model.mrl_dims
    if not dims or dims != sorted(set(dims)) or dims[0] < 1 or dims[-1] > model.embed_dim:
        raise ConfigError(f"model.mrl_dims={dims} must rise strictly from 1 to at most model.embed_dim="
                          f"{model.embed_dim}")
    best = PER_DIM.fullmatch(values.train.best_metric)
    if best and int(best[2]) not in dims:
        raise ConfigError(f"train.best_metric={best[0]} is of dim {best[2]}, not one of model.mrl_dims={dims}: "
                          f"choose val/{best[1]}_{dims[-1]}")
    if best and best[1] != "loss" and not data.eer_every:
        raise ConfigError(f"train.best_metric={best[0]} is never computed with data.eer_every=0: set data.eer_every "
                          "or choose val/loss")
    if model.block_type not in BLOCKS:
        raise ConfigError(f"model.block_type={model.block_type!r} is not one of: {', '.join(BLOCKS)}")
    if model.block_1d_type not in BLOCKS_1D:
        raise ConfigError(f"model.block_1d_type={model.block_1d_type!r} is not one of: {', '.join(BLOCKS_1D)}")
    if model.front_end not in FRONT_ENDS:
        raise ConfigError(f"model.front_end={model.front_end!r} is not one of: {', '.join(FRONT_ENDS)}")
    if model.stage_dropout >= 1:
        raise ConfigError(f"model.stage_dropout={model.stage_dropout} must be below 1")
    rows, channels = model.n_mels, model.channels
    for index, stage in enumerate(model.stages):
        if len(stage) != 4 or stage[0] < 1 or stage[1] < 0 or stage[2] < 1 or stage[3] < 0:
            raise ConfigError(f"model.stages[{index}]={stage} is not [stride, blocks, conv_expand, att_reduction]")
        if rows % stage[0]:
            raise ConfigError(f"model.stages[{index}] stride {stage[0]} does not divide the {rows} frequency rows")
        rows, channels = rows // stage[0], channels * stage[0]
        wide = channels * stage[2]
        if wide % max(1, wide // model.group_divisor) or channels % max(1, channels // model.group_divisor):
            raise ConfigError(f"model.stages[{index}]: {wide} channels do not split into "
                              f"{wide // model.group_divisor} groups (model.group_divisor={model.group_divisor})")
    if model.size != "custom" and model.size not in config.SIZES:
        raise ConfigError(f"model.size={model.size!r} is not one of: custom, {', '.join(config.SIZES)}")


def overfitting_suggestion(values: dict) -> str:
    """What the two-stage report found: the gap opens when the backbone is released."""
    train = values.get("train", {})
    advice = []
    if train.get("frozen") and train.get("unfreeze_step"):
        advice.append(f"train the head longer before releasing the backbone (train.unfreeze_step is "
                      f"{train['unfreeze_step']}) or release it with a lower backbone LR")
    advice.append(f"raise model.dropout (now {values.get('model', {}).get('dropout')}) and optim.weight_decay "
                  f"(now {values.get('optim', {}).get('weight_decay')})")
    advice.append("stop at the best EER checkpoint (train.best_metric=val/eer_<dim>)")
    return "; ".join(advice).capitalize() + "."


def margin_stages(rows: list, config: dict) -> list[tuple[int, str]]:
    """Where wespeaker's margin schedule (0, then a ramp to model.margin, then fixed) starts its ramp and where
    it reaches its final margin: the first logged steps whose `train/margin` (the mean since the previous log,
    so to within train.log_every) is above 0 and at the final margin, after a lower one; while it ramps, the last
    logged step, so that the loss rules (which judge the last stage) wait for the ramp to end. The loss of the
    same weights rises with the margin, most of all in a `train.init_from` run, whose schedule restarts at 0."""
    points = metric_points(rows, "train/margin")
    final = (config.get("model") or {}).get("margin") or 0.0
    restarted = " (restarted: train.init_from)" if (config.get("train") or {}).get("init_from") else ""
    boundaries, lowest = [], None
    for step, margin in points:
        if lowest == 0.0 and margin > 0.0 and not boundaries:
            boundaries.append((step, f"margin ramp 0 -> {final:g}{restarted}"))
        if lowest is not None and lowest < final and margin >= final * (1 - 1e-6) > 0:
            return boundaries + [(step, f"margin at {final:g}")]
        lowest = margin if lowest is None else min(lowest, margin)
    if boundaries and points[-1][0] > boundaries[-1][0]:  # the loss rules wait for the ramp to end
        step, margin = points[-1]
        boundaries.append((step, f"margin still ramping ({margin:.3g} of {final:g})"))
    return boundaries


SPEC = family_spec(
    name="redimnet",
    commands=(EMBED, WEIGHTS),
    config=config,
    build_model=Lazy(f"{RUNTIME}:build_model"),
    build_data=Lazy(f"{RUNTIME}:build_data"),
    training_loss=Lazy(f"{RUNTIME}:training_loss"),
    evaluate=Lazy(f"{RUNTIME}:evaluate"),
    eval_metrics=("val/loss",),
    validate=validate,
    eval_stages=(EvalStage("verification", Lazy(f"{RUNTIME}:verification_stage"), every="data.eer_every"),),
    data_paths=("data.train", "data.val"),
    metric_directions={"train/margin": None, **{f"val/eer_{d}": "min" for d in range(1, 2049)},
                       **{f"val/mindcf_{d}": "min" for d in range(1, 2049)}},
    report_panels=(Panel("loss per Matryoshka dim", ("train/loss",)),),
    suggestions={"gap_widening": overfitting_suggestion},
    stage_boundaries=margin_stages,
    embed=Lazy(f"{RUNTIME}:embed"),
    param_groups=Lazy(f"{RUNTIME}:param_groups"),
)
