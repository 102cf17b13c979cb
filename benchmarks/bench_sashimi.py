"""sashimi at 16 bits: peak memory of the DML head + loss against the categorical head + loss, same backbone;
and generation speed in the recurrent mode (`family.generate`, S4D stepped as a linear recurrence, the pools
with buffers): the tiny preset (untrained weights: the speed does not depend on them) makes GENERATE_SECONDS of
16 kHz audio, one sample and GENERATE_BATCH at once. Target: >= 1,000 samples/s for one (1 s in <= 16 s).

The MUSDB18 settings of the analysis page: mono crops of 24,576 samples, and stereo crops of 12,288 samples
per channel (24,576 interleaved positions); batch 1. Memory is the peak of tensors alive during the head and
loss forward and backward on the backbone's output (trainers.sizing.tensor_memory), so CPU and GPU report the
same thing. Target: DML <= 0.1x categorical.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.families import registry
from sizes import pick
from trainers.family.context import Context
from trainers.sashimi import family

HEAD_AND_LOSS = "head + loss (forward and backward)"
GENERATE_SECONDS, GENERATE_BATCH, GENERATE_TARGET = pick(full=1.0, tiny=0.01), 8, 1000  # target: samples/s
SPEC = registry.get("sashimi")
MONO, STEREO = pick(full=24576, tiny=256), pick(full=12288, tiny=128)  # samples per channel of one crop


def measure(head: str, stereo: bool, length: int) -> dict:
    overrides = [f"model.head={head}", "model.n_layers=1", f"data.stereo={str(stereo).lower()}",
                 f"data.train_length={length}", f"data.val_length={length}", "data.synthetic_clips=4",
                 "data.synthetic_seconds=1.6", "train.batch_size=1", "train.device=cpu"]
    config = SPEC.build_config(SPEC.resolve(preset="musdb_stereo" if stereo else "musdb_mono", overrides=overrides))
    config.data.source = "synthetic"
    bundle = family.build_data(config)
    model = family.build_model(config)
    started = time.perf_counter()
    components = family.profile(model, bundle.collate([bundle.train[0]]),
                                Context(config=config, max_steps=1, artefacts=Path("artefacts/bench")))
    return {**components, "seconds": time.perf_counter() - started}


def generation_speed() -> None:
    """Print the tiny preset's generation speed, one sample and a batch, beside the target: by the wall clock and
    by this process's CPU time (the figure to read on a machine other jobs share)."""
    config = SPEC.build_config(SPEC.preset("tiny"))
    model = family.build_model(config)
    for num in (None, GENERATE_BATCH):
        started, cpu = time.perf_counter(), time.process_time()
        audio, _ = family.generate(model, config, GENERATE_SECONDS, num=num)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        made, made_cpu = audio.shape[-1] / seconds, audio.shape[-1] / cpu
        label = "one sample" if num is None else f"{num} at once"
        verdict = "" if num else f"   {'met' if made >= GENERATE_TARGET else 'MISSED'} (target >= {GENERATE_TARGET:,})"
        print(f"generation, tiny, {label}: {GENERATE_SECONDS:g} s of audio in {seconds:.2f} s = {made:,.0f} samples/s "
              f"per sample ({made * (num or 1):,.0f} in all; {made_cpu:,.0f}/s per CPU second){verdict}")


def main() -> None:
    generation_speed()
    print(f"{'setting':<28}{'categorical MiB':>16}{'DML MiB':>10}{'ratio':>8}   target <= 0.1")
    settings = ((f"16-bit mono, L={MONO}", False, MONO), (f"16-bit stereo, {STEREO} x 2", True, STEREO))
    for label, stereo, length in settings:
        categorical, dml = measure("categorical", stereo, length), measure("dml", stereo, length)
        ratio = dml[HEAD_AND_LOSS] / categorical[HEAD_AND_LOSS]
        print(f"{label:<28}{categorical[HEAD_AND_LOSS]:>16.1f}{dml[HEAD_AND_LOSS]:>10.1f}{ratio:>8.4f}   "
              f"{'met' if ratio <= 0.1 else 'MISSED'}")
        print(f"{'':<28}backbone forward {categorical['backbone forward']:.1f} MiB (the same under both heads)")
    config = SPEC.build_config(SPEC.preset("baseline"))
    print(f"SC09 preset parameters: {sum(p.numel() for p in family.build_model(config).parameters()):,}")


if __name__ == "__main__":
    main()
