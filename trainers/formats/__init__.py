"""File formats the trainers read and write.

    weights.py   weights files published with the original repositories: read, recognised by their keys,
                 converted by each family's `trainers/<family>/weights.py`; `lab weights` is built on it
    audio.py     audio files: wav read and written with the standard library, other formats through torchaudio,
                 resampling, channel layout

May import: lab (and torch, numpy).
"""
