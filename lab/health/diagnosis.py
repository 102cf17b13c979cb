"""Diagnosing an attempt: the health rules that apply to a run (the global ones, with its family's suggestions,
and the family's own), run over its metric stream and config, and recorded as health events.

    number, findings = diagnose(store, "nsd_002")
    doctor(store, "nsd_002")      # what `lab doctor` prints: rerun findings plus those recorded live
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from lab.families import registry
from lab.families.spec import FamilySpec
from lab.health import rules as health
from lab.records import metrics
from lab.records.files import read_json
from lab.records.metrics import count_lines
from lab.records.store import Store


def with_suggestion(rule: health.Rule, suggest: Callable[[dict], str]) -> health.Rule:
    """`rule` whose findings carry `suggest(config)` as their suggestion."""

    def suggested(rows: list, config: dict) -> list:
        return [replace(finding, suggestion=suggest(config)) for finding in rule(rows, config)]

    suggested.on_evaluation = getattr(rule, "on_evaluation", False)
    suggested.__doc__ = rule.__doc__
    return suggested


def with_stages(rule: health.Rule, family_stages: Callable | None) -> health.Rule:
    """`rule` judging within the stages a family finds (`FamilySpec.stage_boundaries`) when it is a staged rule
    (`rules.staged_rule`); any other rule as it is."""
    if family_stages is None or not getattr(rule, "staged", False):
        return rule

    def staged(rows: list, config: dict) -> list:
        return rule(rows, config, family_stages=family_stages)

    staged.on_evaluation = getattr(rule, "on_evaluation", False)
    staged.__doc__ = rule.__doc__
    return staged


def rules_for(family: FamilySpec | str | None) -> dict[str, health.Rule]:
    """The health rules that apply to a run of `family` (a spec, a name, or None for a script's run): the global
    rules with the family's stages and suggestions, and the family's own rules. TypeError when a family's rule reuses a
    global rule's name."""
    spec = family if isinstance(family, FamilySpec) else registry.find(family)
    if spec is None:
        return dict(health.RULES)
    clashes = set(spec.health_rules) & set(health.RULES)
    if clashes:
        raise TypeError(f"family {spec.name}: health rules {sorted(clashes)} clash with the global rules")
    rules = {name: with_stages(rule, spec.stage_boundaries) for name, rule in health.RULES.items()}
    rules = {name: with_suggestion(rule, spec.suggestions[name]) if name in spec.suggestions else rule
             for name, rule in rules.items()}
    return {**rules, **spec.health_rules}


def run_stages(family: FamilySpec | str | None, config: dict, rows: list) -> list[tuple[int, str]]:
    """(step, what changed) where a run of `family` enters a new stage (`rules.stage_boundaries` with the
    family's own `stage_boundaries`), from its config dict and metric rows."""
    spec = family if isinstance(family, FamilySpec) else registry.find(family)
    return health.stage_boundaries(config, rows, getattr(spec, "stage_boundaries", None))


def health_findings(events: list[dict], attempt: int | None = None, *, every_attempt: bool = False) -> list[dict]:
    """The health findings among a run's events: one per rule and attempt, the latest evidence recorded for
    it, in the order the rules first fired. Findings of `attempt` (None: the run's own, from new-run), or of
    every attempt."""
    latest: dict[tuple, dict] = {}
    for event in events:
        if event["kind"] == "health" and (every_attempt or event.get("attempt") == attempt):
            key = (event.get("rule"), event.get("attempt"))
            latest[key] = {**event, "time": latest[key]["time"]} if key in latest else event
    return list(latest.values())


def health_events(store: Store, run_id: str, attempt: int | None = None) -> list[dict]:
    """The run's findings (one per rule and attempt, with its latest evidence): of one attempt, or all."""
    return health_findings(store.events.of(run_id), attempt, every_attempt=attempt is None)


SEVERITY_ORDER = ("warning", "error")


def run_findings(store: Store, run_id: str, attempt: int | None) -> list[health.Finding]:
    """A run's health findings as every page and command shows them: those recorded for `attempt` (None: the
    run before any attempt) and the run's own from new-run that the attempt does not repeat, one per rule with its
    latest evidence and the worse severity it was recorded with, sorted by step then rule."""
    events = store.events.of(run_id)
    chosen: dict[str, dict] = {}
    for event in health_findings(events, None) + (health_findings(events, attempt) if attempt is not None else []):
        chosen[event["rule"]] = event
    worst = {}
    for event in events:
        if event["kind"] == "health" and event.get("attempt") in (None, attempt) and event.get("rule") in chosen:
            worst[event["rule"]] = max(worst.get(event["rule"], "warning"), event["severity"], key=SEVERITY_ORDER.index)
    findings = [replace(health.Finding.from_dict(event), severity=worst[rule]) for rule, event in chosen.items()]
    return sorted(findings, key=lambda finding: (finding.step, finding.rule))


def chosen_attempt(store: Store, run_id: str, number: int | None) -> int | None:
    """`number` when that attempt exists (LabError otherwise), else the latest attempt with metrics."""
    if number is None:
        return store.attempts.latest_with_metrics(run_id)
    store.attempts.load(run_id, number)
    return number


def diagnose(store: Store, run_id: str, attempt_number: int | None = None) -> tuple[int | None, list[health.Finding]]:
    """The health findings of an attempt (default: the latest with metrics) and of its config."""
    run = store.runs.load(run_id)
    number = chosen_attempt(store, run_id, attempt_number)
    config = store.runs.config(run_id)
    if number is None:
        return None, health.structural_findings(config)
    folder = store.attempt_dir(run_id, number)
    config = read_json(folder / "config.json", config)
    summary = read_json(folder / "summary.json", {})
    findings = health.check(metrics.rows(folder), config, rules_for(run.get("family")))
    return number, findings + health.structural_findings(config, summary.get("param_count"))


def record_findings(store: Store, run_id: str, number: int | None,
                    findings: list[health.Finding]) -> list[health.Finding]:
    """Record findings as health events: a rule not yet recorded for the attempt (or, from new-run, for the run),
    or one recorded with other evidence, which the new event updates. Returns what was recorded."""
    recorded = {(e.get("rule"), e.get("attempt")): e for e in health_events(store, run_id)}
    changed = []
    for finding in findings:
        if (finding.rule, None) in recorded:
            continue
        before = recorded.get((finding.rule, number))
        if before is None or before.get("message") != finding.message:
            store.events.add(run_id, "health", attempt=number, **finding.to_dict())
            changed.append(finding)
    return changed


def doctor(store: Store, run_id: str, attempt_number: int | None = None, record: bool = True) -> list[health.Finding]:
    """Every finding of an attempt: the rules run again over its metrics and config, and the findings recorded
    live during it (or at new-run) that the rerun does not repeat. New ones are recorded; all are returned."""
    number, findings = diagnose(store, run_id, attempt_number)
    if not record:
        found = {finding.rule for finding in findings}
        recorded = [finding for finding in run_findings(store, run_id, number) if finding.rule not in found]
        return sorted(findings + recorded, key=lambda finding: (finding.step, finding.rule))
    record_findings(store, run_id, number, findings)
    return run_findings(store, run_id, number)


def doctor_text(store: Store, run_id: str, attempt_number: int | None, findings: list[health.Finding]) -> str:
    """What `lab doctor` prints of `findings`: each with its suggestion, or what was checked when none fired
    (the metrics of the chosen attempt, or only the config when it logged none)."""
    lines = []
    for finding in findings:
        lines += [f"[{finding.severity}] {finding.rule} at step {finding.step}: {finding.message}",
                  f"    suggestion: {finding.suggestion}"]
    if findings:
        return "\n".join(lines)
    number = chosen_attempt(store, run_id, attempt_number)
    rows = count_lines(store.attempt_dir(run_id, number) / "metrics.jsonl") if number else 0
    if rows:
        return f"{run_id}: no health rule fired"
    return (f"{run_id}: no metrics logged{f' by attempt {number}' if number else ''}, so only the config was "
            "checked (no finding)")
