"""The run operations the `lab` commands stand on, one module per operation: `setup_lab` (lab init), `create`
(new-run: config, weights, baseline), `sizing` (parameter counts and memory plans, in a child process), `notes`
(lab note), `listing` (lab runs, show, diff), `rename` (lab rename, also after two clones took one id), `ids`
(ids reserved through the remote), `removal` (lab rm) and `baselines` (lab baseline add). `lab.api` hands each
command to one of them.
May import: lab.errors, lab.records, lab.families, lab.health, lab.tracking, lab.launcher, lab.pages.
"""
