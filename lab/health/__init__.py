"""Health checks: rules over an attempt's metric stream and config (non-finite values, gradient explosions, a
loss that does not fall, divergence, a widening train/validation gap, a degrading metric, structural smells),
run live by the tracker and the engine and again at the end of each attempt, and recorded as events.

Owns `rules` (the rules, findings and the live monitor) and `diagnosis` (the rules that apply to a run of a
family, and `lab doctor`). May import: lab.errors, lab.records, lab.families.
"""
