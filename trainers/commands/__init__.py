"""The `lab` commands the built-in families bring, built on a trained run or a weights file.

    declarations.py  the torch-free Command declarations (generate, profile, embed, weights) a spec lists
    trained.py       what generate, embed and profile run: the family's model rebuilt from a run's records
    progress.py      progress lines of a long loop outside training (`lab generate`), on stderr

May import: lab, trainers.formats, trainers.family, trainers.engine, trainers.sizing.
"""
