"""The engine: one training loop every family shares (`trainers.engine.training.train`).

A family's spec (`trainers/<family>/spec.py`) provides the model, the data, the loss and the evaluations, and
optionally parameter groups; the engine owns everything else: devices and processes (accelerate, or XLA),
sharding (`train.parallel=fsdp`), mixed precision, gradient accumulation, the optimizer, the learning-rate
schedule, gradient clipping, skipping non-finite updates, staged freezing, starting from given weights
(`train.init_from`), evaluation stages on their own cadence, best and last checkpoints, early stopping, exact
resume, and the metrics sent to the lab tracker.

    training.py       train(): set up, start or resume, loop, summarise, finish
    setup.py          the run's pieces: model and data, initial weights, placement, optimizer, frozen parameters
    loop.py           the loop as named steps: update, row, progress, report, evaluate and checkpoint, stop
    step.py           one optimizer update: accumulate, hold frozen parameters, clip, apply or skip
    evaluation.py     due stages, their metrics, the best metric
    resume.py         what a checkpoint holds, writing best and last, the exact resume
    batches.py        the data order (resumable mid-epoch) and the batches on the device
    console.py        progress bar or lines, one line per evaluation
    summary.py        the run's summary.json figures
    state.py          Run, Progress, Throughput: what the steps share
    checkpoints.py    checkpoint files: atomic writes, links, the background writer, generator states
    initial_weights.py  weights only from a file (train.init_from), with the key report
    optim.py          optimizers, parameter groups, the learning-rate schedule
    device.py         the Accelerator for CPU, CUDA or XLA; seeding; peak memory
    sharding.py       FSDP2 off XLA, SPMD on XLA
    tensors.py        walks over nested tensors; device and host copies

Metrics, from the main process only: every step `train/loss` (mean over the update's micro-batches and
processes), `train/grad_norm` (global norm before clipping), `train/lr`, `train/skipped_steps` (cumulative) and
the family's training metrics (`train/<name>`); every `train.log_every` steps also `train/samples_per_s` and
`train/peak_mem_mb`; every evaluation the family's `val/...` metrics.

May import: lab, trainers.formats, trainers.family (and torch, accelerate).
"""
