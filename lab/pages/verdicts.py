"""What a run's hypothesis comes to, in one line with its figures: its expectation (`--expect`) evaluated at the
kept checkpoint step, else its judged metric against its parent's; supported, not supported or inconclusive,
with the evaluation's size, and inconclusive inside the noise or against a run still improving."""

from __future__ import annotations

from lab.errors import LabError
from lab.pages import expectations, results
from lab.pages.expectations import Reference
from lab.records.metrics import format_number
from lab.records.store import Store


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


def hypothesis_verdict(store: Store, run: dict, number: int | None) -> str:
    """'supported: ...', 'not supported: ...' or 'inconclusive: ...' for attempt `number` of `run`."""
    result = results.attempt_result(store, run["id"], number)
    if result is None:
        return "inconclusive: the attempt logged no value of the metric it is judged on"
    size = results.size_text(result)
    if run.get("expect"):
        try:
            expectation = expectations.parse(run["expect"])
        except LabError as error:  # a hand-edited run.json: say so on the page, never fail the render
            return f"inconclusive: the expectation cannot be read ({error})"
        outcome = expectations.evaluate(expectation, figure_lookup(store, run["id"], number),
                                        result["still_improving"])
        return f"{outcome['status']}: {outcome['text']}; {size}"
    parent = run.get("parent")
    if not parent or not store.exists(parent):
        return (f"inconclusive: {result['metric']} {format_number(result['best'])} at step {result['best_step']}, "
                "with no parent run to compare it with and no expectation (lab new-run --from, --expect); "
                f"{size}")
    result = results.seed_result(store, run["id"]) or result
    before = results.seed_result(store, parent) or \
        results.attempt_result(store, parent, results.headline_attempt(store, parent))
    if before is None or before["metric"] != result["metric"]:
        return f"inconclusive: {parent} has no {result['metric']} to compare with; {size}"
    comparison = results.compare(before, result)
    reference = f"{parent}:{before['attempt']}" if before["attempt"] else parent
    shown = (results.figure_text(before) if before.get("seeds") else format_number(before["best"]))
    figures = (f"{result['metric']} {results.figure_text(result)} vs {shown} for {reference}, "
               f"{results.change_words(before['best'], result['best'], result['mode'])}")
    status = {"improved": "supported", "worse": "not supported"}.get(comparison["status"], "inconclusive")
    why = f", {comparison['why']}" if comparison["why"] else ""
    return f"{status}: {figures}{why}; {size}"
