"""The sashimi family's `SPEC`, found through the `lab.families` entry point (torch-free at import).

Its own checks of a config, its advice for a flat DML loss, its metrics and panels.
"""

from lab.errors import ConfigError
from lab.families.spec import EvalStage, Lazy, Panel
from trainers.commands.declarations import GENERATE, PROFILE, WEIGHTS
from trainers.family.config import require_at_least
from trainers.family.spec import family_spec
from trainers.sashimi import config

RUNTIME = "trainers.sashimi.family"
HEADS, ENCODERS, QUANTIZATIONS = ("categorical", "dml"), ("embedding", "linear"), ("mulaw", "linear")
SSMS, NORMS = ("s4d", "s4"), ("layer", "scalar")


def validate(values: config.Config) -> None:
    """Family checks at `lab new-run`: heads, bit depth, crop lengths against the pooling product."""
    model, data = values.model, values.data
    require_at_least("model", model, {"n_layers": 1, "ff": 1, "loss_chunk": 1, "ssm_copies": 1})
    require_at_least("data", data, {"sample_rate": 1, "synthetic_clips": 1, "val_batch_size": 0, "sample_every": 0})
    for key, value, choices in (("model.head", model.head, HEADS), ("model.input_encoder", model.input_encoder,
                                ENCODERS), ("data.quantization", data.quantization, QUANTIZATIONS),
                                ("model.ssm", model.ssm, SSMS), ("model.norm", model.norm, NORMS)):
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    if not 1 <= model.bits <= 16:
        raise ConfigError(f"model.bits={model.bits} must lie between 1 and 16")
    if model.head == "dml" and model.n_mixtures < 1:
        raise ConfigError(f"model.n_mixtures={model.n_mixtures} must be at least 1 for the dml head")
    if model.input_encoder == "embedding" and model.bits > 12:
        raise ConfigError(f"model.input_encoder=embedding at {model.bits} bits needs a {2 ** model.bits}-row table; "
                          "use model.input_encoder=linear")
    if not model.pool or any(p < 1 for p in model.pool) or model.expand < 1 or model.d_model < 1:
        raise ConfigError("model.pool factors, model.expand and model.d_model must be positive")
    multiple = 1
    for factor in model.pool:
        multiple *= factor
    if model.ssm == "s4" and model.d_model % model.ssm_copies:
        raise ConfigError(f"model.d_model={model.d_model} must be a multiple of model.ssm_copies={model.ssm_copies}")
    channels = 2 if data.stereo else 1
    for key, length in (("data.train_length", data.train_length), ("data.val_length", data.val_length)):
        if length < 1 or length * channels % multiple:
            raise ConfigError(f"{key}={length} ({length * channels} positions) must be a positive multiple of the "
                              f"pooling product {multiple}")
    if model.state_size < 2 or model.state_size % 2:
        raise ConfigError(f"model.state_size={model.state_size} must be an even number of at least 2")


def flat_loss_suggestion(values: dict) -> str:
    """What the analysis of a DML run whose loss did not fall found to work; generic advice otherwise."""
    model = values.get("model", {})
    lr = values.get("optim", {}).get("lr")
    clip = values.get("train", {}).get("grad_clip")
    if model.get("head") != "dml":
        return ("Check optim.lr (too small or too large) and that the input codes are the targets shifted by one.")
    advice = [f"lower optim.lr (now {lr}; 0.001 works for DML where 0.004 stalls)"]
    if not clip:
        advice.append("set train.grad_clip=1.0 (exp(-log_scale) makes gradients spiky)")
    advice.append("keep the mixture head's initialisation (log-scales in [-1, -0.5], weights with sigma 0.1); "
                  "a log-scale floor near -7 at 8 bits keeps exp(-log_scale) bounded")
    return "; ".join(advice).capitalize() + "."


SPEC = family_spec(
    name="sashimi",
    commands=(GENERATE, PROFILE, WEIGHTS),
    config=config,
    build_model=Lazy(f"{RUNTIME}:build_model"),
    build_data=Lazy(f"{RUNTIME}:build_data"),
    training_loss=Lazy(f"{RUNTIME}:training_loss"),
    evaluate=Lazy(f"{RUNTIME}:evaluate"),
    eval_metrics=("val/loss", "val/bits_per_sample"),
    validate=validate,
    eval_stages=(EvalStage("samples", Lazy(f"{RUNTIME}:samples_stage"), every="data.sample_every",
                           metrics=("val/sample_rms",)),),
    data_paths=("data.source",),
    metric_directions={"val/bits_per_sample": "min", "train/bits_per_sample": "min", "val/sample_rms": None},
    report_panels=(Panel("bits per sample", ("train/bits_per_sample", "val/bits_per_sample")),),
    suggestions={"loss_not_decreasing": flat_loss_suggestion},
    generate=Lazy(f"{RUNTIME}:generate"),
    profile=Lazy(f"{RUNTIME}:profile"),
)
