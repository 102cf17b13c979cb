"""The neural_decoder family's `SPEC`, found through the `lab.families` entry point (torch-free at import).

Its own checks of a config, its CTC health rule, its metrics and panels.
"""

from lab.errors import ConfigError
from lab.families.spec import Lazy, Panel
from trainers.commands.declarations import WEIGHTS
from trainers.family.config import require_at_least
from trainers.family.spec import family_spec
from trainers.neural_decoder import config
from trainers.neural_decoder.health import ctc_blank_collapse

RUNTIME = "trainers.neural_decoder.family"


def validate(values: config.Config) -> None:
    """Family checks at `lab new-run`: positive sizes, a stride within the unfold window, a dropout rate."""
    model, data = values.model, values.data
    require_at_least("model", model, {"n_input_features": 1, "n_classes": 1, "n_units": 1, "n_layers": 1,
                                      "kernel_len": 1, "stride_len": 1, "n_days": 1, "gaussian_smooth_width": 0})
    require_at_least("data", data, {"synthetic_days": 1, "synthetic_sentences_per_day": 1, "time_mask_width": 0,
                                    "freq_mask_width": 0, "beam_width": 0, "pad_frames_to": 0})
    if model.stride_len > model.kernel_len:
        raise ConfigError(f"model.stride_len={model.stride_len} must not exceed model.kernel_len={model.kernel_len}"
                          " (frames between windows would be skipped)")
    if not 0 <= model.dropout < 1:
        raise ConfigError(f"model.dropout={model.dropout!r} must lie in [0, 1)")

SPEC = family_spec(
    name="neural_decoder",
    commands=(WEIGHTS,),
    config=config,
    build_model=Lazy(f"{RUNTIME}:build_model"),
    build_data=Lazy(f"{RUNTIME}:build_data"),
    training_loss=Lazy(f"{RUNTIME}:training_loss"),
    evaluate=Lazy(f"{RUNTIME}:evaluate"),
    validate=validate,
    eval_metrics=("val/loss", "val/per", "val/blank_frac"),
    health_rules={"ctc_blank_collapse": ctc_blank_collapse},
    data_paths=("data.source",),
    metric_directions={"val/per": "min", "val/blank_frac": "min", "train/ctc_infeasible_frac": "min"},
    report_panels=(Panel("all-blank decodes", ("val/blank_frac",)),),
)
