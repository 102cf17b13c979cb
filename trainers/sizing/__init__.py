"""How big a training run is before it runs, and where its memory goes.

    meta.py           the `parameter_count` and `memory_plan` hooks: the family's model built on the meta device
    plan.py           the memory plan's arithmetic (weights, gradients, optimizer, activations) and its lines;
                      torch-free, so a family's spec may use it for its activation estimate
    tensor_memory.py  TensorMemory: peak tensor memory of a piece of work on any device (`lab profile`)

May import: lab, trainers.formats, trainers.family, trainers.engine (and torch).
"""
