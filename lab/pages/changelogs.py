"""The baseline changelog, logs/changelogs/<baseline>.md: what every run of a baseline changed from it (config,
preset and code), how each went against its parent and against the best run before it, which changes work and
which do not, and the status of every change the current run carries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.families import registry
from lab.health.diagnosis import run_findings
from lab.launcher import vcs
from lab.pages import changes as change_words, results, verdicts
from lab.pages.context import display_title, render
from lab.pages.results import attempt_config, headline_attempt
from lab.pages.verdicts import STATUS_MARK, failure_line
from lab.records import config as config_tools
from lab.records.store import Store


def baselines_in_use(store: Store) -> list[str]:
    """The baselines the lab's readable runs name, sorted."""
    return sorted({store.runs.load(rid).get("baseline") for rid in store.readable_run_ids()} - {None})


def set_status_override(store: Store, baseline: str, assignment: str) -> None:
    """Record a researcher's own status for a changelog row: KEY=TEXT; LabError for anything else."""
    key, sep, text = assignment.partition("=")
    snapshot = store.baselines.get(baseline)
    if not sep or not key or snapshot is None:
        raise LabError(f"--status takes KEY=TEXT for an existing baseline, got {assignment!r}")
    snapshot.setdefault("status_overrides", {})[key.strip()] = text.strip()
    store.baselines.write(snapshot)


def set_current(store: Store, baseline: str, run_id: str) -> None:
    """Make `run_id` the run a baseline's changelog calls current; LabError unless the run uses the baseline."""
    snapshot = store.baselines.get(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}")
    if store.runs.load(run_id).get("baseline") != baseline:
        raise LabError(f"run {run_id} does not use baseline {baseline}")
    store.baselines.write({**snapshot, "current": run_id})


def changelogs(store: Store, baseline: str | None = None, *, status: list[str] = (),
               current: str | None = None) -> list[Path]:
    """`lab changelog`: with `baseline`, its own statuses (`status`, KEY=TEXT each) and current run set first,
    then its page written; without, the page of every baseline in use. Returns the pages' paths. LabError when
    no run uses a baseline (or the one named), or for --status and --current without the baseline they belong to."""
    names = [baseline] if baseline else baselines_in_use(store)
    if not names:
        raise LabError("no run uses a baseline yet: give a run one with lab new-run ID --baseline NAME (registered "
                       "with lab baseline add NAME --config FILE), or --family FAMILY for a built-in trainer")
    if status and not baseline:
        raise LabError("--status needs the baseline it belongs to: lab changelog BASELINE --status KEY=TEXT")
    if current and not baseline:
        raise LabError("--current belongs to one baseline: lab changelog BASELINE --current RUN")
    if baseline and store.baselines.get(baseline) is not None and baseline not in baselines_in_use(store):
        raise LabError(f"baseline {baseline}: no run uses it yet; attach runs with lab baseline attach {baseline} "
                       f"RUN..., or start one with lab new-run ID --baseline {baseline}")
    for assignment in status:
        set_status_override(store, baseline, assignment)
    if current:
        set_current(store, baseline, current)
    return [changelog(store, name) for name in names]


@dataclass
class Lineage:
    """The runs of one baseline in creation order, with what the changelog reads of each: its number on the
    page, its headline attempt, the config that attempt ran with, and its result (None without one)."""

    runs: list[dict]
    number: dict[str, int]
    headlines: dict[str, int | None]
    configs: dict[str, dict]
    found: dict[str, dict | None]


def lineage(store: Store, baseline: str) -> Lineage:
    """The `Lineage` of the readable runs that use `baseline`."""
    runs = sorted((store.runs.load(rid) for rid in store.readable_run_ids()),
                  key=lambda run: (run["created"], run["id"]))
    runs = [run for run in runs if run.get("baseline") == baseline]
    headlines = {run["id"]: headline_attempt(store, run["id"]) for run in runs}
    return Lineage(runs, {run["id"]: index for index, run in enumerate(runs, start=1)}, headlines,
                   {rid: attempt_config(store, rid, n) for rid, n in headlines.items()},
                   {rid: results.attempt_result(store, rid, n) for rid, n in headlines.items()})


def changelog(store: Store, baseline: str) -> Path:
    """Write logs/changelogs/<baseline>.md: what every run changed from the baseline (config and code), and how
    it went against its parent and against the best run before it. LabError for a baseline not registered."""
    snapshot = store.baselines.get(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}; baselines in use: {', '.join(baselines_in_use(store)) or 'none'}")
    base_config, line = snapshot["config"], lineage(store, baseline)
    reproductions = [run for run in line.runs
                     if line.found[run["id"]] and not config_tools.diff(base_config, line.configs[run["id"]])]
    first_with_result = next((run for run in line.runs if line.found[run["id"]]), None)
    reference_run = reproductions[0] if reproductions else first_with_result
    entries, best = changelog_entries(store, line, base_config,
                                      line.found[reference_run["id"]] if reproductions else None)
    picked = snapshot.get("current")
    current = next((e["run"] for e in entries if e["run"]["id"] == picked), None) or \
        (best["run"] if best else (line.runs[-1] if line.runs else None))
    improved = [e for e in entries if e["status"] == "improved" and (e["tested"] or e["code_changes"])]
    reference_result = line.found[reference_run["id"]] if reference_run else None
    against_reference = verdicts.judge(verdicts.judged_result(store, reference_run["id"]),
                                       verdicts.judged_result(store, best["run"]["id"]),
                                       reference_run["id"]) if best and reference_result else None
    return render(
        store,
        "changelog.md.j2",
        store.logs_dir / "changelogs" / f"{baseline}.md",
        baseline=baseline,
        provenance=snapshot.get("provenance", {}),
        entries=entries,
        components=component_sections(entries, base_config),
        table=status_table(entries, base_config, line.configs[current["id"]],
                           snapshot.get("status_overrides", {})) if current is not None else [],
        current=current,
        current_picked=bool(picked and current and current["id"] == picked),
        current_number=line.number.get(current["id"]) if current else None,
        current_result=line.found.get(current["id"]) if current else None,
        best=best,
        reference_run=reference_run,
        reference_is_baseline=bool(reproductions),
        reference_result=reference_result,
        against_reference=against_reference,
        works=[e for e in improved if e["beats_best_earlier"]],
        weak_parent=[e for e in improved if not e["beats_best_earlier"]],
        fails=[e for e in entries if e["status"] == "worse" and (e["tested"] or e["code_changes"])],
        issues=current_issues(store, entries),
        recommendations=[(entry, text) for entry in entries for text in entry["next"]],
        files=file_changes(store, entries),
    )


def changelog_entries(store: Store, line: Lineage, base_config: dict,
                      baseline_result: dict | None) -> tuple[list[dict], dict | None]:
    """(one entry per run, in order; the entry with the best result, or None): each run against its parent when
    the parent uses the baseline too (`verdicts.run_verdict`, as its report says), else against the baseline's
    own result `baseline_result`."""
    entries, best = [], None
    for run in line.runs:
        entry = changelog_entry(store, run, line, base_config, baseline_result, best)
        entries.append(entry)
        result = entry["result"]
        if result and (best is None or results.is_better(result["best"], best["result"]["best"], result["mode"])):
            best = entry
    return entries, best


def changelog_entry(store: Store, run: dict, line: Lineage, base_config: dict, baseline_result: dict | None,
                    best_earlier: dict | None) -> dict:
    """What the changelog says of one run: its changes (config, preset, code) against its reference, its result
    and verdict there, and whether it beats the best run before it."""
    rid = run["id"]
    parent = run.get("parent") if run.get("parent") in line.number else None
    verdict = entry_verdict(store, run, line, parent, baseline_result)
    # What Works / What Doesn't Work and the status marks sort changes by what they did to the result against
    # the parent; an expectation missed or met is the run's own verdict, shown beside it
    direction = verdicts.change_verdict(store, run, line.headlines[rid]) if parent and run.get("expect") \
        and line.headlines[rid] else verdict
    events = store.events.of(rid)
    code_changes = [{"component": e.get("component") or "code", "text": e["text"]}
                    for e in events if e["kind"] == "change" and isinstance(e.get("text"), str)]
    changes = config_tools.diff(line.configs[parent] if parent else base_config, line.configs[rid])
    switch = preset_switch(run, store.runs.load(parent) if parent else None, line.configs[rid])
    listed = [c for c in changes if not switch or c.key not in switch["keys"]]
    tested = [c for c in listed if c.component != "bookkeeping"]
    both = parent and line.headlines[parent] and line.headlines[rid]
    command = change_words.command_change(store, (parent, line.headlines[parent]), (rid, line.headlines[rid]),
                                          changes) if both else None
    count = len(tested) + len(code_changes) + bool(switch) + bool(command)
    found = line.found[rid]
    return {
        "number": line.number[rid],
        "run": run,
        "attempt": line.headlines[rid],
        "title": display_title(run),
        "against": f"Run #{line.number[parent]} ({parent})" if parent else "the baseline",
        "changes": listed,
        "tested": tested,
        "preset_switch": switch,
        "code_changes": code_changes,
        "command_change": command,
        "change_count": count,
        "confounded": count > 1,
        "result": found,
        "verdict": verdict,
        "direction": direction,
        "status": direction.status if direction else "untested",
        "size": results.size_text(found),
        "failure": None if found else failure_line(store, rid, (store.attempts.of(rid) or [None])[-1]),
        "best_earlier": best_earlier,
        "beats_best_earlier": best_earlier is None or verdicts.judge(
            verdicts.judged_result(store, best_earlier["run"]["id"]), verdicts.judged_result(store, rid),
            best_earlier["run"]["id"]).status != "worse",
        "notes": {e["field"]: e["text"] for e in events if e["kind"] == "note" and not e.get("attempt")},
        "next": [e["text"] for e in events if e["kind"] == "note" and e.get("field") == "next"],
        "findings": run_findings(store, rid, line.headlines[rid]),
    }


def entry_verdict(store: Store, run: dict, line: Lineage, parent: str | None,
                  baseline_result: dict | None) -> verdicts.Verdict | None:
    """A changelog run's verdict: the report's own (`verdicts.run_verdict`: why a failed headline attempt stopped,
    its expectation, else against its parent) when it has a parent using the baseline or an expectation; else
    against the baseline's result (the first run that reproduced it); else none, and so none for a run never
    launched (its result line says so)."""
    number = line.headlines[run["id"]]
    if parent or run.get("expect"):
        return verdicts.run_verdict(store, run, number)
    stopped = verdicts.failure_verdict(store, run["id"], number)
    found = verdicts.judged_result(store, run["id"], number) if number else None
    reference = next((r["id"] for r in line.runs if line.found[r["id"]] is baseline_result), None) \
        if baseline_result is not None else None
    if stopped or reference in (None, run["id"]) or found is None:
        return stopped
    return verdicts.judge(verdicts.judged_result(store, reference), found, f"the baseline's run {reference}")


LAB_FILES = ("lab.json", ".gitignore", ".gitattributes")  # what `lab init` writes: no change a run tests


def current_issues(store: Store, entries: list[dict]) -> list[dict]:
    """The changelog's Current Issues, one per health finding of a run (`run_findings` of its headline attempt, as
    every page shows them) and per failed attempt: {"title", "severity", "symptom", "cause", "fix", "status"}. A
    finding is open until a later run with a result no longer shows its rule; a failure until a later attempt of
    the run finishes. The cause is the run's own findings note where it wrote one."""
    issues = []
    for index, entry in enumerate(entries):
        rid, number = entry["run"]["id"], entry["number"]
        cause = entry["notes"].get("findings") or entry["notes"].get("observations")
        for finding in entry["findings"]:
            cleared = next((later for later in entries[index + 1:] if later["result"] and later["status"] != "failed"
                            and finding.rule not in {f.rule for f in later["findings"]}), None)
            issues.append({
                "title": f"`{finding.rule}` (Run #{number}, {rid})", "severity": finding.severity,
                "symptom": f"{finding.message} (step {finding.step})",
                "cause": cause or f"what the `{finding.rule}` rule found in {rid}:{entry['attempt'] or '-'}",
                "fix": finding.suggestion,
                "status": f"not seen in Run #{cleared['number']} ({cleared['run']['id']})" if cleared else "open"})
        attempts = store.attempts.of(rid)
        for attempt in attempts:
            why = failure_line(store, rid, attempt)
            if why:
                after = next((a for a in attempts if a["number"] > attempt["number"] and a["status"] == "finished"),
                             None)
                issues.append({"title": f"Test {attempt['number']} of Run #{number} ({rid}) stopped", "symptom": why,
                               "cause": cause, "fix": None,
                               "status": f"Test {after['number']} finished" if after else "open"})
    return issues


def file_changes(store: Store, entries: list[dict]) -> list[dict]:
    """The files the runs' launch commits changed (git, against each commit's parent), the lab's own records and
    settings (LAB_FILES) apart: {"path", "how", "runs"} sorted by path, `how` the change letters seen (A added, M
    modified, D deleted), `runs` 'Run #2, Run #4'."""
    records = store.logs_dir.relative_to(store.root).as_posix() + "/"

    found: dict[str, dict] = {}
    for entry in entries:
        shas = {(a.get("git") or {}).get("sha") for a in store.attempts.of(entry["run"]["id"])
                if (a.get("git") or {}).get("committed")} - {None}
        for sha in sorted(shas):
            for letter, path in vcs.commit_files(store.root, sha):
                if path in LAB_FILES or path.startswith(records):
                    continue
                row = found.setdefault(path, {"path": path, "how": [], "runs": []})
                row["how"] += [letter] if letter not in row["how"] else []
                row["runs"] += [f"Run #{entry['number']}"] if f"Run #{entry['number']}" not in row["runs"] else []
    return [found[path] for path in sorted(found)]


def component_sections(entries: list[dict], base_config: dict) -> list[dict]:
    """One section per component any run touched (config order, then the components code changes name): the
    baseline's values of its keys, and each run's changes and code notes there."""
    noted = sorted({note["component"] for entry in entries for note in entry["code_changes"]}
                   - set(config_tools.COMPONENT_ORDER))
    flat_base = config_tools.flatten(base_config)
    components = []
    for component in config_tools.COMPONENT_ORDER + noted:
        touched = [(entry, [c for c in entry["changes"] if c.component == component],
                    [note["text"] for note in entry["code_changes"] if note["component"] == component])
                   for entry in entries]
        touched = [item for item in touched if item[1] or item[2]]
        if not touched:
            continue
        keys = sorted({c.key for _, changes, _ in touched for c in changes})
        components.append({
            "name": component,
            "baseline": [(key, config_tools.format_value(flat_base.get(key, config_tools.MISSING))) for key in keys],
            "entries": touched,
        })
    return components


def status_table(entries: list[dict], base_config: dict, current_config: dict, overrides: dict) -> list[dict]:
    """One row per change the current run carries against the baseline: the verdict of the run that introduced
    it (confounded when that run changed more), the preset that brought it, or the researcher's own status."""
    table = []
    for change in config_tools.diff(base_config, current_config):
        introduced = next((e for e in entries for c in e["changes"]
                           if c.key == change.key and c.after == change.after), None)
        by_preset = next((e for e in entries if e["preset_switch"] and change.key in e["preset_switch"]["keys"]),
                         None)
        status = introduced["status"] if introduced else "untested"
        text = f"{STATUS_MARK[status]} {status}" + (f" (Run #{introduced['number']})" if introduced else "") \
            + (", confounded" if introduced and introduced["confounded"] else "")
        if change.component == "bookkeeping":
            text = "bookkeeping (not judged)"
        elif by_preset and not introduced:
            text = f"preset `{by_preset['preset_switch']['to']}` (Run #{by_preset['number']})"
        table.append({"change": change, "status": overrides.get(change.key) or text})
    return table


def preset_switch(run: dict, parent: dict | None, config: dict) -> dict | None:
    """{"from", "to", "keys"} when a family run's preset differs from its reference's (its parent's, else the
    baseline preset): the keys the switch explains (their value is the new preset's), to be shown as one change."""
    before = (parent or {}).get("preset") or "baseline"
    spec = registry.find(run.get("family"))
    if spec is None or not run.get("preset") or run["preset"] == before or run["preset"] not in spec.presets():
        return None
    flat = config_tools.flatten(config)
    keys = {c.key for c in config_tools.diff(spec.preset(before), spec.preset(run["preset"]))
            if flat.get(c.key, config_tools.MISSING) == c.after}
    return {"from": before, "to": run["preset"], "keys": keys} if keys else None
