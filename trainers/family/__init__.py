"""What a family declares and what it is handed, torch-free at import (a record-only `lab` command reads it).

    spec.py      family_spec(...): a FamilySpec with what every family of this engine shares; stage_interval
    config.py    OptimConfig and TrainConfig, the sections every family's Config holds; validate, require_at_least
    context.py   Context (what a family's loss and evaluations see of the run) and DataBundle (what build_data
                 returns); log_media, standard errors of validation metrics
    launch.py    the command line that starts a trainer (`python -m trainers`, or `accelerate launch` for several
                 processes and nodes), for the lab launcher

May import: lab, trainers.formats (no torch).
"""
