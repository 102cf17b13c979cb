"""sashimi at 16 bits: peak memory of the DML head + loss against the categorical head + loss, same backbone.

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


def main() -> None:
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
