"""What runs inside the user's own training process: code that lives in someone else's training loop, so it is
small, starts fast, never raises into the script and never waits on the network.

Owns `tracker` (`from lab import tracker`: log, summary, config, checkpoints and events of the current attempt,
and the W&B mirror it drives), `autolog` (zero-code capture: the `sitecustomize` that `lab launch` puts first on
the command's PYTHONPATH, and the patches of wandb, TensorBoard, argparse and transformers it applies) and
`wandb_server` (links to a W&B run, and whether the server answers).
May import: lab.errors, lab.records, lab.families, lab.health. Never lab.launcher: the launcher is the other
program, the one that starts this process.
"""
