"""dia training step throughput: tiny on the CPU; with CUDA, the 1.6B baseline in bf16 with its MFU.

Throughput counts decoder steps (audio frames) and code tokens (frames x codebooks) per second over timed
training steps (forward, backward, AdamW update) on fixed-shape random batches, after warm-up steps. MFU is
model FLOPs (6 x parameters x tokens seen, encoder over text bytes and decoder over frames, plus attention)
over the GPU's dense bf16 peak.

Targets: tiny on the CPU at least CPU_TARGET code tokens/s (half of the 59,164 measured on a 2-core machine when it
was built, so a slower step shows); the baseline's MFU at least MFU_TARGET (set here; not yet measured on a GPU).
"""

from __future__ import annotations

import sys
import time

import torch

from lab.families import registry
from sizes import pick
from trainers.dia.config import BOS

SPEC = registry.get("dia")
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
CPU_TARGET, MFU_TARGET = 30_000, 0.30
STEPS, WARMUP = pick(full=20, tiny=2), pick(full=3, tiny=1)
GENERATE_FRAMES, GENERATE_SPEEDUP = pick(full=86, tiny=4), 2.0  # 1 s of 44.1 kHz audio; cached vs recomputed


def model_flops(config, batch: int, frames: int, text: int, encoder_params: int, decoder_params: int) -> float:
    """Training FLOPs of one step: 6 N D for the weights, plus the attention score and value products."""
    model = config.model
    weights = 6 * (encoder_params * text + decoder_params * frames) * batch
    self_attention = 2 * 2 * model.dec_layers * model.dec_q_heads * model.dec_head_dim * frames * frames / 2
    cross = 2 * 2 * model.dec_layers * model.cross_heads * model.cross_head_dim * frames * text
    encoder = 2 * 2 * model.enc_layers * model.enc_heads * model.enc_head_dim * text * text
    return weights + 3 * batch * (self_attention + cross + encoder)


def throughput(preset: str, device: str, precision: str, batch: int, frames: int, steps: int, warmup: int) -> dict:
    config = SPEC.build_config(SPEC.preset(preset))
    model = SPEC.build_model(config).to(device)
    encoder_params = sum(p.numel() for name, p in model.named_parameters() if name.startswith(("text", "encoder")))
    decoder_params = sum(p.numel() for p in model.parameters()) - encoder_params
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    text_length, channels = config.data.text_length, config.model.channels
    text = torch.randint(0, 256, (batch, text_length), device=device)
    tokens = torch.randint(0, 1024, (batch, frames + 1, channels), device=device)
    tokens[:, 0] = BOS
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def step() -> None:
        with torch.autocast(device_type=device, dtype=dtype, enabled=precision == "bf16"):
            logits = model(text, tokens[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 2), tokens[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    result = {"params": encoder_params + decoder_params, "frames_per_s": batch * frames / seconds,
              "tokens_per_s": batch * frames * channels / seconds, "step_s": seconds}
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
        flops = model_flops(config, batch, frames, text_length, encoder_params, decoder_params)
        result.update(gpu=name, tflops=flops / seconds / 1e12, mfu=flops / seconds / (peak * 1e12) if peak else None,
                      peak_mem_gb=torch.cuda.max_memory_allocated() / 1e9)
    return result


def generation_speed(frames: int) -> dict:
    """Tiny's CFG generation (`generate_codes`: KV cache, cross-attention keys and values once) in code tokens/s,
    against recomputing the full sequence at every step (teacher-forced forward on the growing prefix)."""
    from trainers.dia import data, family

    config = SPEC.build_config(SPEC.resolve(preset="tiny"))
    model = family.build_model(config).eval()
    started = time.perf_counter()
    codes = family.generate_codes(model, config, frames, "drums, bass")
    cached = time.perf_counter() - started
    steps = frames + max(data.pattern_of(config)) + 1  # the decoding steps generate_codes takes
    text = torch.randint(1, 256, (2, config.data.text_length))
    tokens = torch.randint(0, 1024, (2, steps, config.model.channels))
    started = time.perf_counter()
    with torch.no_grad():
        for step in range(1, steps + 1):
            model(text, tokens[:, :step])
    uncached = time.perf_counter() - started
    tokens_made = codes.shape[-1] * config.model.channels
    return {"cached": tokens_made / cached, "uncached": tokens_made / uncached, "frames": codes.shape[-1]}


def main() -> None:
    torch.manual_seed(0)
    made = generation_speed(GENERATE_FRAMES)
    ratio = made["cached"] / made["uncached"]
    print(f"tiny generation on CPU ({made['frames']} frames, CFG): {made['cached']:,.0f} code tokens/s with the cached "
          f"decoder state, {made['uncached']:,.0f} recomputing the sequence each step: {ratio:.1f}x (target >= "
          f"{GENERATE_SPEEDUP:g}x) {'met' if ratio >= GENERATE_SPEEDUP else 'MISSED'}")
    tiny = throughput("tiny", "cpu", "no", batch=8, frames=41, steps=STEPS, warmup=WARMUP)
    print(f"tiny on CPU: {tiny['tokens_per_s']:,.0f} code tokens/s (target >= {CPU_TARGET:,}), "
          f"{tiny['frames_per_s']:,.0f} frames/s, {tiny['params']:,} parameters")
    if not torch.cuda.is_available():
        print(f"baseline (1.6B) bf16: no CUDA device here; run on a GPU for its throughput and MFU (target >= "
              f"{MFU_TARGET:.0%})")
        return
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    full = throughput("baseline", "cuda", "bf16", batch=batch, frames=pick(full=860, tiny=40), steps=pick(10, 2),
                      warmup=WARMUP)
    mfu = f"{full['mfu']:.1%} (target >= {MFU_TARGET:.0%})" if full["mfu"] is not None else "unknown peak"
    print(f"baseline on {full['gpu']}, bf16, batch {batch} x 860 frames: {full['tokens_per_s']:,.0f} code tokens/s "
          f"({full['frames_per_s']:,.0f} frames/s), {full['tflops']:.0f} TFLOP/s, MFU {mfu}, "
          f"peak memory {full['peak_mem_gb']:.1f} GB, {full['params']:,} parameters")


if __name__ == "__main__":
    main()
