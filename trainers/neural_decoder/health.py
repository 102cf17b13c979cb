"""neural_decoder's own health rule: CTC output collapsing to blanks. Plain Python (no torch)."""

from __future__ import annotations

from lab.health.rules import Finding, Row, evaluation_rule, metric_points, short

BLANK_FRAC_LIMIT = 0.9  # an evaluation decoding over 90% of its utterances to all blanks has collapsed
BLANK_EVALS_AFTER_LEARNING = 2  # collapsed evaluations in a row after a healthy one
BLANK_EVALS_FROM_START = 5  # collapsed since the first evaluation: leave room for CTC's early blank phase


@evaluation_rule
def ctc_blank_collapse(rows: list[Row], config: dict) -> list[Finding]:
    """The latest evaluations decode (nearly) every utterance to all blanks."""
    fractions = metric_points(rows, "val/blank_frac")
    collapsed = 0
    while collapsed < len(fractions) and fractions[-1 - collapsed][1] > BLANK_FRAC_LIMIT:
        collapsed += 1
    after_learning = collapsed < len(fractions)
    if collapsed == 0 or collapsed < (BLANK_EVALS_AFTER_LEARNING if after_learning else BLANK_EVALS_FROM_START):
        return []
    step, latest = fractions[-collapsed][0], fractions[-1][1]
    history = "after earlier evaluations decoded fine" if after_learning else "since the first evaluation"
    return [Finding(
        "ctc_blank_collapse", "warning", step,
        f"val/blank_frac above {BLANK_FRAC_LIMIT} for the last {collapsed} evaluations from step {step} "
        f"({history}), latest {short(latest)}",
        {"step": step, "latest": latest, "evaluations": collapsed, "after_learning": after_learning},
        "Lower the LR, check input normalisation and that output lengths exceed label lengths; if the run "
        "is young, CTC often emits only blanks for a while.",
    )]
