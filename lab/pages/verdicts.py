"""One verdict per change, computed here and only here: a run's result against its reference (its parent, its
expectation `--expect`, a baseline's own result, an ablation's reference arm), with the figures every page shows:
the metric, both values and the attempts they come from, the relative change, the noise and where it comes from,
the evaluation's size and the run's recent trend. A run worse than its reference but still improving is
inconclusive only where its recent trend could close the gap within as many steps again as the longer of the two
ran; a first run with no parent and no expectation gets no verdict; a failed attempt gets only why it stopped.

    verdict = run_verdict(store, store.runs.load("nsd_002"), 1)
    verdict.line -> "not supported: val/per 0.8596 at step 500 vs 0.3578 for nsd_001:1, 140.3% higher (worse); ..."
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.pages import expectations, results
from lab.pages.expectations import NOISE_Z, Reference
from lab.records.metrics import format_number
from lab.records.store import Store

RELATIVE_MARGIN = 0.01  # with no noise estimate at all, a relative change within 1% is inconclusive
STATUS_MARK = {"improved": "✅", "worse": "❌", "unchanged": "➖", "inconclusive": "〰️", "untested": "❔"}
STATUS_WORD = {"improved": "supported", "worse": "not supported", "unchanged": "inconclusive",
               "inconclusive": "inconclusive", "untested": "inconclusive"}
ENDED_BADLY = ("failed", "crashed", "killed")
FAILURE_LINES = 15
# An exception's name (case as Python writes it, so a metric print like `val_error 0.3` is none), or a line that
# starts with the word error, fatal or killed in any case.
ERROR_LINE = re.compile(r"\b\w*(Error|Exception|Interrupt)\b|^(?i:error|fatal|killed)\b")


@dataclass(frozen=True)
class Verdict:
    """A run against its reference. `status`: improved | worse | unchanged | inconclusive | untested (as the
    changelog and the ablation mark it) or failed; `word` is how a hypothesis page says it (supported, not
    supported, inconclusive, failed); `figures` the values and the change, `why` what weakened or decided it,
    `size` the evaluation's size; `value` and `reference_value` the two figures compared, `change` the relative
    improvement (positive = better; None against a reference of 0 or for an expectation)."""

    status: str
    word: str
    figures: str
    why: str | None = None
    size: str | None = None
    value: float | None = None
    reference_value: float | None = None
    change: float | None = None

    @property
    def line(self) -> str:
        """'not supported: val/per 0.8596 at step 500 vs 0.3578 for nsd_001:1, 140.3% higher (worse); evaluated
        on 480 trials' (what every page prints); for a failed attempt, why it stopped."""
        if self.status == "failed":
            return self.figures
        why = f", {self.why}" if self.why else ""
        size = f"; {self.size}" if self.size else ""
        return f"{self.word}: {self.figures}{why}{size}"

    @property
    def mark(self) -> str:
        return STATUS_MARK.get(self.status, "")


def label(result: dict, run_id: str) -> str:
    """'nsd_001:1' for one attempt's result, 'nsd_001' for a mean over seeds."""
    return f"{run_id}:{result['attempt']}" if result.get("attempt") else run_id


def noise(before: dict, after: dict) -> tuple[float | None, str | None]:
    """(NOISE_Z combined standard errors of the two figures, what they come from): the logged `<metric>_se` or the
    seeds' spread, else each run's scatter about its recent trend; (None, None) when neither side has either."""
    sides = [side.get("se") if side.get("se") is not None else side.get("scatter") for side in (before, after)]
    if all(side is None for side in sides):
        return None, None
    if any(side.get("seeds") for side in (before, after)):
        source = f"{NOISE_Z:g} standard errors, from the seeds' spread"
    elif any(side.get("se") is not None for side in (before, after)):
        source = f"{NOISE_Z:g} standard errors"
    else:
        source = f"{NOISE_Z:g} x the scatter of the last evaluations about their curve"
    return NOISE_Z * math.sqrt(sum((side or 0.0) ** 2 for side in sides)), source


def per_steps(last_step: int) -> int:
    """The step count a slope is stated per: 1, 10, 100 or 1000, the largest not above the run's length."""
    return next(unit for unit in (1000, 100, 10, 1) if last_step >= unit or unit == 1)


def trend_reason(loser: dict, difference: float, horizon: int) -> tuple[bool, str | None]:
    """(whether a worse run's recent trend could close the gap within `horizon` more steps, the sentence saying so
    with its figures); (False, None) unless it was still improving at its last evaluation (`still_improving`) along
    its recent trend (`slope`, over its last evaluations). Only the worse run's trend counts: a run better than
    its reference is better, however fast the reference was still improving."""
    slope = loser.get("slope")
    toward = slope is not None and (slope < 0 if loser["mode"] == "min" else slope > 0)
    if not (toward and loser.get("still_improving")):
        return False, None
    unit = per_steps(loser["last_step"])
    needed = difference / abs(slope)
    shown = f"its last trend of {slope * unit:+.2g} per {unit} steps"
    if needed <= horizon:
        return True, (f"at {shown} it would need about {needed:,.0f} more steps to close the "
                      f"{format_number(difference)} gap")
    return False, (f"still improving, but at {shown} closing the {format_number(difference)} gap would take about "
                   f"{needed:,.0f} more steps, over the {horizon:,} steps compared")


def judge(before: dict | None, after: dict | None, reference: str) -> Verdict:
    """`after` (a result: `results.attempt_result` or `seed_result`) against `before` on the same judged metric.

    Inside NOISE_Z combined standard errors (the logged `_se`, the seeds' spread, else the scatter of the last
    evaluations; RELATIVE_MARGIN when there is none) is inconclusive; so is a worse `after` still improving fast
    enough to close the gap within as many steps again as the longer of the two ran (the reference's own trend
    never weakens a better `after`). `reference` names `before`
    on the page ('nsd_001:1')."""
    if not before or not after or before["metric"] != after["metric"]:
        return Verdict("untested", "inconclusive", f"{reference} has no {(after or {}).get('metric')} to compare with",
                       size=results.size_text(after) if after else None)
    change = results.improvement(before, after)
    difference = abs(after["best"] - before["best"])
    spread, source = noise(before, after)
    within = (spread is not None and difference <= spread) or (
        spread is None and change is not None and abs(change) <= RELATIVE_MARGIN)
    shown = results.figure_text(before) if before.get("seeds") else format_number(before["best"])
    words = results.change_words(before["best"], after["best"], None if within else after["mode"])
    common = dict(figures=f"{after['metric']} {results.figure_text(after)} vs {shown} for {reference}, {words}",
                  size=results.size_text(after), value=after["best"], reference_value=before["best"], change=change)
    if difference == 0:
        return Verdict("unchanged", "inconclusive", **common)
    if within and spread is not None:
        why = f"the difference {difference:.4g} is within the noise (±{spread:.4g}, {source})"
        return Verdict("inconclusive", "inconclusive", why=why, **common)
    if within:
        return Verdict("inconclusive", "inconclusive", why=f"within {RELATIVE_MARGIN:.0%}, and no noise estimate",
                       **common)
    if results.is_better(after["best"], before["best"], after["mode"]):
        return Verdict("improved", STATUS_WORD["improved"], **common)  # whatever the reference's own trend
    horizon = max(after["last_step"], before["last_step"])
    closes, sentence = trend_reason(after, difference, horizon)
    status = "inconclusive" if closes else "worse"
    return Verdict(status, STATUS_WORD[status], why=sentence, **common)


def judged_result(store: Store, run_id: str, number: int | None = None) -> dict | None:
    """The result a run is judged on: the mean over its seeds when it ran several, else attempt `number`'s (default
    the headline attempt's)."""
    seeded = results.seed_result(store, run_id)
    if seeded:
        return seeded
    return results.attempt_result(store, run_id, number or results.headline_attempt(store, run_id))


def change_verdict(store: Store, run: dict, number: int | None) -> Verdict | None:
    """Attempt `number` of `run` against its parent's result, or why it has none; None without a parent."""
    parent = run.get("parent")
    if not parent or not store.exists(parent):
        return None
    stopped = failure_verdict(store, run["id"], number)
    if stopped:
        return stopped
    after = judged_result(store, run["id"], number)
    if after is None:
        return Verdict("untested", "inconclusive", "the attempt logged no value of the metric it is judged on")
    before = judged_result(store, parent)
    return judge(before, after, label(before, parent) if before else parent)


def run_verdict(store: Store, run: dict, number: int | None) -> Verdict | None:
    """What a run's hypothesis comes to (the report's and the daily page's verdict): why it stopped for a failed
    attempt, its expectation when it has one, else `change_verdict`; None for a run with neither a parent nor an
    expectation (its result is on the page) or no attempt."""
    if number is None:
        return None
    stopped = failure_verdict(store, run["id"], number)
    if stopped or not run.get("expect"):
        return stopped or change_verdict(store, run, number)
    result = results.attempt_result(store, run["id"], number)
    if result is None:
        return Verdict("untested", "inconclusive", "the attempt logged no value of the metric it is judged on")
    try:
        expectation = expectations.parse(run["expect"])
    except LabError as error:  # a hand-edited run.json: say so on the page, never fail the render
        return Verdict("untested", "inconclusive", f"the expectation cannot be read ({error})")
    outcome = expectations.evaluate(expectation, figure_lookup(store, run["id"], number))
    status = {"supported": "improved", "not supported": "worse"}.get(outcome["status"], "inconclusive")
    return Verdict(status, outcome["status"], outcome["text"], size=results.size_text(result))


def figure_lookup(store: Store, run_id: str, number: int):
    """lookup(reference) for `expectations.evaluate`: a metric of this attempt (or of another run's headline
    attempt) at that attempt's kept step, with its standard error when logged there; None when missing."""
    summaries: dict[tuple[str, int], dict] = {}

    def lookup(reference: Reference) -> dict | None:
        rid = reference.run or run_id
        if reference.run and not store.exists(rid):
            return None
        attempt = number if reference.run is None else results.headline_attempt(store, rid)
        if attempt is None:
            return None
        if (rid, attempt) not in summaries:
            summaries[rid, attempt] = results.attempt_summary(store, rid, attempt)
        summary = summaries[rid, attempt]
        rows = {row["metric"]: row for row in summary["rows"]}
        row = rows.get(reference.metric)
        if summary["result"] is None or row is None or row["kept"] is None:
            return None
        se = rows.get(reference.metric + results.SE_SUFFIX)
        return {"value": row["kept"], "se": se["kept"] if se and se["kept_step"] == row["kept_step"] else None,
                "where": f"step {row['kept_step']} of {rid}:{attempt}"}

    return lookup


# -- why an attempt stopped --------------------------------------------------------------------------------


def failure_tail(attempt_dir: Path, lines: int = FAILURE_LINES) -> list[str]:
    """The last `lines` non-empty lines of an attempt's output (why it failed), read from the end of stdout.log."""
    path = attempt_dir / "stdout.log"
    if not path.is_file():
        return []
    with open(path, "rb") as stream:
        size = stream.seek(0, 2)
        stream.seek(max(0, size - 64 * 1024))
        text = stream.read().decode("utf-8", errors="replace")
    kept = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return kept[-lines:]


def stop_facts(store: Store, run_id: str, attempt: dict | None) -> tuple[str, str] | None:
    """(' at step 120' or '', 'RuntimeError: CUDA out of memory') for an attempt that ended badly: its last logged
    step and the last error line of its output, else its last line; None otherwise."""
    if not attempt or attempt.get("status") not in ENDED_BADLY:
        return None
    frame = results.stream(store, run_id, attempt["number"])
    step = f" at step {int(frame['step'].max())}" if "step" in frame and frame["step"].notna().any() else ""
    tail = failure_tail(store.attempt_dir(run_id, attempt["number"]))
    error = next((line.strip() for line in reversed(tail) if ERROR_LINE.search(line.strip())), None)
    return step, error or (tail[-1].strip() if tail else "it wrote no output")


def why_stopped(store: Store, run_id: str, attempt: dict | None) -> str | None:
    """'stopped at step 120: RuntimeError: CUDA out of memory' (`stop_facts`); None for an attempt that did not end
    badly."""
    facts = stop_facts(store, run_id, attempt)
    return f"stopped{facts[0]}: {facts[1]}" if facts else None


def stopped_text(store: Store, run_id: str, attempt: dict | None) -> str | None:
    """'failed at step 120 (exit 1): RuntimeError: CUDA out of memory': `stop_facts` with the attempt's status and
    exit status; None for an attempt that did not end badly."""
    facts = stop_facts(store, run_id, attempt)
    if facts is None:
        return None
    code = "" if attempt.get("exit_code") is None else f" (exit {attempt['exit_code']})"
    return f"{attempt['status']}{facts[0]}{code}: {facts[1]}"


def failure_line(store: Store, run_id: str, attempt: dict | None) -> str | None:
    """'Test 2 failed at step 120 (exit 1): RuntimeError: ...' (`stopped_text` with the attempt's number)."""
    text = stopped_text(store, run_id, attempt)
    return f"Test {attempt['number']} {text}" if text else None


def failure_verdict(store: Store, run_id: str, number: int | None) -> Verdict | None:
    """The only verdict a failed, crashed or killed attempt gets: why it stopped."""
    attempt = store.attempts.load(run_id, number) if number else None
    text = failure_line(store, run_id, attempt)
    return Verdict("failed", attempt["status"], text) if text else None
