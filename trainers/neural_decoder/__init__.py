"""The neural_decoder family: GRU + CTC phoneme decoding of intracortical features (cffan/neural_seq_decoder).

    spec.py      SPEC: what the family declares (found through the `lab.families` entry point), torch-free
    config.py    its config dataclasses and presets, torch-free
    family.py    build_model, build_data, training_loss, evaluate and its hooks (torch)
    data.py      its datasets
    health.py    its health rule: CTC output collapsing to blanks
    weights.py   the original repository's weights files, converted to this project's keys
"""
