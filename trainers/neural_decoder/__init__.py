"""The neural_decoder family: GRU + CTC phoneme decoding of intracortical features (cffan/neural_seq_decoder)."""

from trainers.neural_decoder import config
from trainers.neural_decoder.health import ctc_blank_collapse
from trainers.registry import FamilySpec, Lazy, Panel

RUNTIME = "trainers.neural_decoder.family"

SPEC = FamilySpec(
    name="neural_decoder",
    config=config,
    build_model=Lazy(f"{RUNTIME}:build_model"),
    build_data=Lazy(f"{RUNTIME}:build_data"),
    training_loss=Lazy(f"{RUNTIME}:training_loss"),
    evaluate=Lazy(f"{RUNTIME}:evaluate"),
    eval_metrics=("val/loss", "val/per", "val/blank_frac"),
    health_rules={"ctc_blank_collapse": ctc_blank_collapse},
    metric_directions={"val/per": "min", "val/blank_frac": "min", "train/ctc_infeasible_frac": "min"},
    report_panels=(Panel("all-blank decodes", ("val/blank_frac",)),),
)
