"""What runs around the user's command, in the `lab` process: `lab launch` and what it records outside the
training process.

Owns `launch` (prepare, run and close an attempt, or several for `--seeds`), `supervise` (the child process: its
process group, forwarded signals, the tee of its output), `output` (stdout.log, capped and redacted), `printed`
(rows from printed lines), `vcs` (the launch's commit, the dirty diff, a day's commits), `remote` (id
reservations and launch commits shared through the git remote) and `wandb_links` (the W&B identity chosen before
a run starts, and `lab sync`).
May import: lab.errors, lab.records, lab.families, lab.health, lab.tracking.
"""
