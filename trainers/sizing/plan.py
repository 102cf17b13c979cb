"""A memory plan: what one device holds while training, before anything is launched. Imports no torch.

    plan = memory_plan(parameters=1_611_000_000, optimizer="adamw", parallel="fsdp", processes=8,
                       activation_bytes=3.1e9, largest_block=90_000_000)
    plan["total"]        # bytes per device

Per device, in bytes (the usual mixed-precision accounting of ZeRO, Rajbhandari et al. 2020, section 3):
weights and gradients are float32 (autocast keeps float32 masters and casts per operation), 4 bytes per
parameter each; Adam and AdamW keep two float32 moments (8 bytes per parameter), 8-bit AdamW two 8-bit ones
(2 bytes per parameter; bitsandbytes' block scales are under 1% more). `fsdp` divides all three by the
world size and adds the float32 copy of the two largest blocks gathered at once (the one computing and the
one prefetched). Activations are the family's estimate for one micro-batch (`activation_bytes` hook); data
parallelism does not divide them. The total adds everything, an upper bound: activations are freed before
the optimizer step allocates its temporaries.
"""

from __future__ import annotations

from lab.records.metrics import memory_text

FLOAT32 = 4
MOMENT_BYTES = {"adam": 2 * FLOAT32, "adamw": 2 * FLOAT32, "adamw8bit": 2}  # two moments per parameter
PARTS = ("weights", "gradients", "optimizer", "activations")


def memory_plan(
    *, parameters: int, optimizer: str, parallel: str, processes: int, activation_bytes: float | None,
    largest_block: int = 0, trainable: int | None = None,
) -> dict:
    """Bytes per device of each part of `PARTS`, their `total`, and the inputs they came from.

    `parameters` is the exact count (from the meta-device model), `trainable` those that get optimizer state
    (default: all; frozen ones still get gradients, dropped before the update), `largest_block` the
    parameters of the largest sharded block (fsdp only). `activation_bytes` None leaves activations out of the
    total and marks them unknown.
    """
    trainable = parameters if trainable is None else trainable
    shards = processes if parallel == "fsdp" else 1
    weights = parameters * FLOAT32 / shards
    if parallel == "fsdp":
        weights += 2 * largest_block * FLOAT32
    plan = {
        "weights": weights,
        "gradients": parameters * FLOAT32 / shards,
        "optimizer": trainable * MOMENT_BYTES[optimizer] / shards,
        "activations": activation_bytes,
    }
    plan["total"] = sum(value for value in plan.values() if value is not None)
    plan.update(parameters=parameters, trainable=trainable, optimizer_name=optimizer, parallel=parallel,
                processes=processes)
    return plan


def transformer_activation_elements(*, tokens: int, width: int, heads_width: int, kv_width: int, ffn: int,
                                    norms: int = 2) -> int:
    """Elements one pre-norm transformer layer keeps for the backward pass, for `tokens` tokens.

    Counted per token, after Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    Models", section 4.1) without dropout and with a fused attention kernel (no (T, T) score matrix): each
    norm's input and output (2 * width), the projections q (heads_width), k and v (kv_width each), the rotated
    q and k, keys and values repeated to the query heads when grouped, the attention output and the output
    projection's input; a gated MLP's gate, up, activation and product (4 * ffn).
    """
    repeated = 2 * heads_width if kv_width != heads_width else 0
    attention = heads_width + 2 * kv_width + heads_width + kv_width + repeated + 2 * heads_width
    return tokens * (norms * 2 * width + attention + 4 * ffn)


def size(count: float) -> str:
    """Bytes in MiB, as every page and command states memory (`lab.records.metrics.memory_text`)."""
    return memory_text(count)


def describe(plan: dict, device_bytes: float | None, device: str) -> list[str]:
    """The lines `lab new-run` and `lab launch` print: the plan, and one warning when it will not fit."""
    activations = plan["activations"]
    parts = [f"weights {size(plan['weights'])}", f"gradients {size(plan['gradients'])}",
             f"optimizer {size(plan['optimizer'])}",
             f"activations {'unknown' if activations is None else '~' + size(activations)}"]
    where = f"{plan['parallel']} x{plan['processes']}, {plan['optimizer_name']}"
    room = f" of {size(device_bytes)} ({device})" if device_bytes else f" ({device}: size unknown)"
    lines = [f"memory plan per device ({where}): {', '.join(parts)}; total {size(plan['total'])}{room}"]
    if device_bytes and plan["total"] > device_bytes:
        hints = ["more processes" if plan["parallel"] == "fsdp" else
                 "train.parallel=fsdp with more processes" if device != "xla" else "",
                 "optim.name=adamw8bit" if plan["optimizer_name"] != "adamw8bit" else "",
                 "a smaller train.batch_size"]
        lines.append(f"warning: the plan needs {size(plan['total'])} per device, more than the "
                     f"{size(device_bytes)} {device} holds; try {', '.join(hint for hint in hints if hint)}")
    return lines
