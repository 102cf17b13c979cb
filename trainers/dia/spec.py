"""The dia family's `SPEC`, found through the `lab.families` entry point (torch-free at import).

Its own checks of a config, its activation estimate for the memory plan, its metrics, panels and commands.
"""

from lab.errors import ConfigError
from lab.families.spec import EvalStage, Lazy, Panel
from trainers.commands.declarations import GENERATE, WEIGHTS
from trainers.dia import config
from trainers.dia.commands import CODEC
from trainers.family.config import require_at_least
from trainers.family.spec import family_spec
from trainers.sizing.plan import FLOAT32, transformer_activation_elements

RUNTIME = "trainers.dia.family"


def longest_delay(model: config.ModelConfig) -> int:
    """The largest codebook delay of the model's pattern (frames)."""
    pattern = model.delay_pattern
    if pattern == "dia":
        return 8
    if pattern == "musicgen":
        return (model.channels // 2 if model.stereo else model.channels) - 1
    return max(int(part) for part in pattern.split(","))


def activation_bytes(values: config.Config) -> float:
    """Activations one training micro-batch keeps for the backward pass (bytes), the memory plan's estimate.

    Per item: the encoder layers over `data.text_length` bytes; the decoder layers over the
    `audio_length + 1 + longest delay` input steps, each with cross-attention (queries, their rotation, output
    and projection input per step; keys, their rotation and values per text byte); the float32 logits
    (C * V per step) and their log-softmax kept by the cross-entropy (and the half-precision head output the
    cast to float32 keeps under autocast).
    Layers count in the autocast width (2 bytes in bf16/fp16, else 4).
    """
    model, data, train = values.model, values.data, values.train
    width = 2 if train.precision in ("bf16", "fp16") else FLOAT32
    text, steps = data.text_length, data.audio_length + 1 + longest_delay(model)
    encoder = transformer_activation_elements(
        tokens=text, width=model.enc_d_model, heads_width=model.enc_heads * model.enc_head_dim,
        kv_width=model.enc_heads * model.enc_head_dim, ffn=model.enc_ffn) + 2 * text * model.enc_d_model
    cross = model.cross_heads * model.cross_head_dim
    decoder = transformer_activation_elements(
        tokens=steps, width=model.dec_d_model, heads_width=model.dec_q_heads * model.dec_head_dim,
        kv_width=model.dec_kv_heads * model.dec_head_dim, ffn=model.dec_ffn, norms=3) + steps * 4 * cross \
        + text * 3 * cross
    layers = model.enc_layers * encoder + model.dec_layers * decoder + 2 * steps * model.dec_d_model
    logits = steps * model.channels * model.vocab * (2 * FLOAT32 + (width if width < FLOAT32 else 0))
    return float(train.batch_size * (layers * width + logits))


def validate(values: config.Config) -> None:
    """Family checks at `lab new-run`: delay pattern against the codebooks, GQA groups, sequence lengths."""
    model, data = values.model, values.data
    require_at_least("model", model, {name: 1 for name in (
        "enc_layers", "enc_d_model", "enc_ffn", "enc_heads", "enc_head_dim", "text_vocab", "enc_max_positions",
        "dec_layers", "dec_d_model", "dec_ffn", "dec_q_heads", "dec_kv_heads", "dec_head_dim", "cross_heads",
        "cross_head_dim", "channels", "dec_max_positions")})
    if model.vocab < 1027:
        raise ConfigError(f"model.vocab={model.vocab} must hold the codes plus EOS, PAD and BOS (at least 1027)")
    require_at_least("data", data, {"audio_length": 1, "text_length": 1, "tag_limit": 0, "synthetic_clips": 1,
                                    "synthetic_codec_width": 1, "sample_every": 0})
    per_group = model.channels // 2 if model.stereo else model.channels
    pattern = model.delay_pattern
    if pattern == "dia" and per_group != 9:
        raise ConfigError(f"model.delay_pattern=dia is for 9 codebooks per channel group, the model has {per_group}")
    if pattern not in ("dia", "musicgen"):
        try:
            delays = [int(part) for part in pattern.split(",")]
        except ValueError:
            raise ConfigError(f"model.delay_pattern={pattern!r} is not dia, musicgen or comma-separated delays") \
                from None
        if len(delays) != per_group or min(delays) < 0:
            raise ConfigError(f"model.delay_pattern has {len(delays)} delays for {per_group} codebooks per group")
    if model.stereo and model.channels % 2:
        raise ConfigError(f"model.stereo needs an even model.channels, got {model.channels}")
    if model.dec_q_heads % model.dec_kv_heads:
        raise ConfigError(f"model.dec_q_heads={model.dec_q_heads} must be a multiple of model.dec_kv_heads="
                          f"{model.dec_kv_heads}")
    steps = data.audio_length + 2 + longest_delay(model)
    if steps > model.dec_max_positions:
        raise ConfigError(f"data.audio_length={data.audio_length} needs {steps} decoder positions, more than "
                          f"model.dec_max_positions={model.dec_max_positions}")
    if not 0 <= values.train.unconditional_frac <= 1 or not 0 <= data.tag_dropout <= 1:
        raise ConfigError("train.unconditional_frac and data.tag_dropout are probabilities (0 to 1)")
    if values.train.channel_weights not in ("dia", "uniform"):
        raise ConfigError(f"train.channel_weights={values.train.channel_weights!r} is not one of: dia, uniform")
    if data.condition not in ("tags", "text"):
        raise ConfigError(f"data.condition={data.condition!r} is not one of: tags, text")


SPEC = family_spec(
    name="dia",
    commands=(GENERATE, CODEC, WEIGHTS),
    config=config,
    build_model=Lazy(f"{RUNTIME}:build_model"),
    build_data=Lazy(f"{RUNTIME}:build_data"),
    training_loss=Lazy(f"{RUNTIME}:training_loss"),
    evaluate=Lazy(f"{RUNTIME}:evaluate"),
    eval_metrics=("val/loss", "val/entropy", "val/loss_c0", "val/acc_c0"),
    validate=validate,
    eval_stages=(EvalStage("samples", Lazy(f"{RUNTIME}:samples_stage"), every="data.sample_every",
                           metrics=("val/sample_rms_conditional", "val/sample_rms_unconditional")),),
    data_paths=("data.codes", "data.codec_weights"),
    metric_directions={"val/entropy": None, "train/loss_c0": "min", "val/sample_rms_conditional": None,
                       "val/sample_rms_unconditional": None,
                       **{f"val/acc_c{c}": "max" for c in range(18)}, **{f"val/loss_c{c}": "min" for c in range(18)}},
    report_panels=(Panel("codebook 0 loss", ("train/loss_c0", "val/loss_c0")), Panel("accuracy, codebook 0",
                                                                                         ("val/acc_c0",))),
    generate=Lazy(f"{RUNTIME}:generate"),
    activation_bytes=activation_bytes,
    shard_modules=Lazy(f"{RUNTIME}:shard_modules"),
)
