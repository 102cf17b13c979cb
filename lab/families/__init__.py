"""The family seam: what the notebook needs from a model family, and how families are found.

Owns `FamilySpec` (name, torch-free config module and presets, validation, metric directions, health rules,
report panels, the family's own CLI commands, and `Lazy` references to what needs torch) and the registry
that finds specs through the `lab.families` entry-point group and `LAB_FAMILY_MODULES`.
May import: lab.errors, lab.records. Never trainers/, models/ or torch: a family is found, not imported by name.
"""
