"""The redimnet family: ReDimNet b0-b6 speaker embeddings with Matryoshka AAM-softmax (IDRnD/ReDimNet).

    spec.py      SPEC: what the family declares (found through the `lab.families` entry point), torch-free
    config.py    its config dataclasses and presets, torch-free
    family.py    build_model, build_data, training_loss, evaluate and its hooks (torch)
    data.py      its datasets
    weights.py   the original repository's weights files, converted to this project's keys
"""
