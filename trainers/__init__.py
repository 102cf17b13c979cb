"""Trainers: one shared engine and one folder per model family. Each subpackage imports only those listed
before it (tests/trainers/test_layout.py holds it so):

    formats/     file formats: the original repositories' weights files, audio files
    family/      what a family declares and is handed, torch-free: family_spec, the shared config sections,
                 the training context and data bundle, the command line that starts a trainer
    engine/      the run: setup, the loop as named steps, batches, evaluation, checkpoints and resume,
                 optimizer and schedule, device, sharding
    sizing/      parameter counts on the meta device, the memory plan, peak tensor memory
    commands/    the `lab` commands built on a trained run (generate, embed, profile) and on weights files
    dia/ neural_decoder/ redimnet/ sashimi/
                 one folder per family: spec.py (SPEC, torch-free), config.py (torch-free), family.py, data.py,
                 weights.py, and whatever only that family needs; found through the `lab.families` entry points
    __main__.py  `python -m trainers FAMILY ...`: options, then the engine

Nothing here is imported by `lab/`; a family is found through its entry point, never by name.
"""
