"""The dia family: a Dia-style text/tag-to-audio transformer over DAC codec tokens (nari-labs/dia).

    spec.py      SPEC: what the family declares (found through the `lab.families` entry point), torch-free
    config.py    its config dataclasses and presets, torch-free
    family.py    build_model, build_data, training_loss, evaluate and its hooks (torch)
    data.py      its datasets
    codec.py     the DAC codec: local weights, the resumable cache of codes
    commands.py  `lab codec` (torch-free declaration)
    weights.py   the original repository's weights files, converted to this project's keys
"""
