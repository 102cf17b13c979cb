"""Pages beyond the daily log, all from the records: baseline changelog, ablation comparison, training report,
and the health doctor that turns a metric stream into findings."""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import LabError
from lab.families import registry
from lab.health import rules as health
from lab.health.diagnosis import chosen_attempt, health_events, run_stages
from lab.pages import plots, results, verdicts
from lab.pages.context import (
    NOTE_LABELS,
    active_days,
    attempt_config,
    daily_log,
    display_title,
    duration_text,
    failure_line,
    failure_tail,
    headline_attempt,
    render,
    reproduce_text,
    resumed_text,
)
from lab.records import config as config_tools
from lab.records import metrics
from lab.records.files import append_jsonl, read_json, read_jsonl
from lab.records.metrics import format_number
from lab.records.store import Store

STATUS_MARK = {"improved": "✅", "worse": "❌", "unchanged": "➖", "inconclusive": "〰️", "untested": "❔"}


def metric_file(metric: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_") + ".svg"


def verdict(before: dict | None, after: dict | None) -> str:
    """improved / worse / unchanged / inconclusive against the reference result (`results.compare`: noise and
    convergence considered), or untested when either is missing."""
    return results.compare(before, after)["status"]


# -- baseline changelog ------------------------------------------------------------------------------------


def baselines_in_use(store: Store) -> list[str]:
    return sorted({store.runs.load(rid).get("baseline") for rid in store.readable_run_ids()} - {None})


def set_status_override(store: Store, baseline: str, assignment: str) -> None:
    """Record a researcher's own status for a changelog row: KEY=TEXT."""
    key, sep, text = assignment.partition("=")
    snapshot = store.baselines.get(baseline)
    if not sep or not key or snapshot is None:
        raise LabError(f"--status takes KEY=TEXT for an existing baseline, got {assignment!r}")
    snapshot.setdefault("status_overrides", {})[key.strip()] = text.strip()
    store.baselines.write(snapshot)


def set_current(store: Store, baseline: str, run_id: str) -> None:
    """Make `run_id` the run a baseline's changelog calls current."""
    snapshot = store.baselines.get(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}")
    if store.runs.load(run_id).get("baseline") != baseline:
        raise LabError(f"run {run_id} does not use baseline {baseline}")
    store.baselines.write({**snapshot, "current": run_id})


def changelog(store: Store, baseline: str) -> Path:
    """Write logs/changelogs/<baseline>.md: what every run changed from the baseline (config and code), and how
    it went against its parent and against the best run before it."""
    snapshot = store.baselines.get(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}; baselines in use: {', '.join(baselines_in_use(store)) or 'none'}")
    base_config = snapshot["config"]
    runs = sorted((store.runs.load(rid) for rid in store.readable_run_ids()),
                  key=lambda run: (run["created"], run["id"]))
    runs = [run for run in runs if run.get("baseline") == baseline]
    number = {run["id"]: index for index, run in enumerate(runs, start=1)}
    headlines = {run["id"]: headline_attempt(store, run["id"]) for run in runs}
    configs = {rid: attempt_config(store, rid, n) for rid, n in headlines.items()}
    found = {rid: results.attempt_result(store, rid, n) for rid, n in headlines.items()}
    reproductions = [r for r in runs if found[r["id"]] and not config_tools.diff(base_config, configs[r["id"]])]
    first_with_result = next((r for r in runs if found[r["id"]]), None)
    reference_run = reproductions[0] if reproductions else first_with_result
    baseline_result = found[reference_run["id"]] if reproductions else None

    entries, best_entry = [], None
    for run in runs:
        rid = run["id"]
        parent = run.get("parent") if run.get("parent") in number else None
        reference_config = configs[parent] if parent else base_config
        reference_result = found[parent] if parent else baseline_result
        code_changes = [{"component": e.get("component") or "code", "text": e["text"]}
                        for e in store.events.of(rid) if e["kind"] == "change" and isinstance(e.get("text"), str)]
        changes = config_tools.diff(reference_config, configs[rid])
        switch = preset_switch(run, store.runs.load(parent) if parent else None, configs[rid])
        listed = [c for c in changes if not switch or c.key not in switch["keys"]]
        tested = [c for c in listed if c.component != "bookkeeping"]
        count = len(tested) + len(code_changes) + bool(switch)
        entry = {
            "number": number[rid],
            "run": run,
            "attempt": headlines[rid],
            "title": display_title(run),
            "against": f"Run #{number[parent]} ({parent})" if parent else "the baseline",
            "changes": listed,
            "tested": tested,
            "preset_switch": switch,
            "code_changes": code_changes,
            "change_count": count,
            "confounded": count > 1,
            "result": found[rid],
            "reference_result": reference_result,
            "verdict": verdict(reference_result, found[rid]),
            "why": results.compare(reference_result, found[rid])["why"],
            "size": results.size_text(found[rid]),
            "failure": None if found[rid] else failure_line(store, rid, (store.attempts.of(rid) or [None])[-1]),
            "best_earlier": best_entry,
            "beats_best_earlier": best_entry is None or verdict(best_entry["result"], found[rid]) != "worse",
            "notes": {e["field"]: e["text"] for e in store.events.of(rid)
                      if e["kind"] == "note" and not e.get("attempt")},
            "findings": health_events(store, rid),
        }
        entries.append(entry)
        result = entry["result"]
        if result and (best_entry is None
                       or results.is_better(result["best"], best_entry["result"]["best"], result["mode"])):
            best_entry = entry

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

    picked = snapshot.get("current")
    current = next((e["run"] for e in entries if e["run"]["id"] == picked), None) or \
        (best_entry["run"] if best_entry else (runs[-1] if runs else None))
    table = []
    if current is not None:
        overrides = snapshot.get("status_overrides", {})
        for change in config_tools.diff(base_config, configs[current["id"]]):
            introduced = next((e for e in entries for c in e["changes"]
                               if c.key == change.key and c.after == change.after), None)
            by_preset = next((e for e in entries if e["preset_switch"] and change.key in e["preset_switch"]["keys"]),
                             None)
            status = introduced["verdict"] if introduced else "untested"
            text = f"{STATUS_MARK[status]} {status}" + (f" (Run #{introduced['number']})" if introduced else "") \
                + (", confounded" if introduced and introduced["confounded"] else "")
            if change.component == "bookkeeping":
                text = "bookkeeping (not judged)"
            elif by_preset and not introduced:
                text = f"preset `{by_preset['preset_switch']['to']}` (Run #{by_preset['number']})"
            table.append({
                "change": change,
                "status": overrides.get(change.key) or text,
            })
    improved = [e for e in entries if e["verdict"] == "improved" and (e["tested"] or e["code_changes"])]
    return render(
        store,
        "changelog.md.j2",
        store.logs_dir / "changelogs" / f"{baseline}.md",
        baseline=baseline,
        provenance=snapshot.get("provenance", {}),
        entries=entries,
        components=components,
        table=table,
        current=current,
        current_picked=bool(picked and current and current["id"] == picked),
        current_number=number.get(current["id"]) if current else None,
        current_result=found.get(current["id"]) if current else None,
        best=best_entry,
        reference_run=reference_run,
        reference_is_baseline=bool(reproductions),
        reference_result=found[reference_run["id"]] if reference_run else None,
        vs_reference=results.improvement(found[reference_run["id"]], best_entry["result"]) if best_entry else None,
        works=[e for e in improved if e["beats_best_earlier"]],
        weak_parent=[e for e in improved if not e["beats_best_earlier"]],
        fails=[e for e in entries if e["verdict"] == "worse" and (e["tested"] or e["code_changes"])],
    )


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


# -- ablation comparison -----------------------------------------------------------------------------------


def comparisons_index(store: Store) -> Path:
    """Where each comparison page's runs are kept, so that `lab render` rebuilds it: one line {"name", "arms":
    [RUN[:ATTEMPT]]} per change, appended, so that clones' indexes merge as a union (the last line of a name
    wins). Older labs' logs/ablations/index.json ({name: arms}) is read first."""
    return store.logs_dir / "ablations" / "index.jsonl"


def comparisons(store: Store) -> dict[str, list[str]]:
    """{page name: its arms}, from the comparisons index."""
    found = dict(read_json(store.logs_dir / "ablations" / "index.json", {}))
    for entry in read_jsonl(comparisons_index(store)):
        if isinstance(entry.get("name"), str) and isinstance(entry.get("arms"), list):
            found[entry["name"]] = entry["arms"]
    return found


def parse_arm(store: Store, spec: str) -> tuple[str, int | None]:
    """'RUN' (its headline attempt) or 'RUN:ATTEMPT' -> (run id, attempt number or None if it has none)."""
    run_id, _, number = spec.partition(":")
    store.runs.load(run_id)
    if not number:
        return run_id, headline_attempt(store, run_id)
    if not number.isdigit():
        raise LabError(f"{spec!r}: write RUN or RUN:ATTEMPT, like nsd_004:2")
    store.attempts.load(run_id, int(number))
    return run_id, int(number)


def compare(store: Store, specs: list[str], name: str | None = None) -> Path:
    """Write logs/ablations/<name>.md comparing runs (each `RUN` or `RUN:ATTEMPT`): differing config keys, best
    and final metrics, overlaid curves. Every figure on the page comes from the attempt named beside it."""
    if len(specs) < 2:
        raise LabError("compare needs at least two runs")
    arms = [parse_arm(store, spec) for spec in specs]
    if len(set(arms)) < len(arms):
        raise LabError("compare needs different runs or attempts; the same one is named twice")
    labels = [f"{rid}:{n}" if n else rid for rid, n in arms]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "_vs_".join(specs)).strip("._") or "ablation"
    runs = {rid: store.runs.load(rid) for rid, _ in arms}
    configs = [read_json(store.attempt_dir(rid, n) / "config.json", None) if n else None for rid, n in arms]
    flat = [config_tools.flatten(config if config is not None else store.runs.config(rid))
            for (rid, _), config in zip(arms, configs)]
    keys = sorted({k for values in flat for k in values})
    differing = [
        {"key": key, "values": [config_tools.format_value(values.get(key, config_tools.MISSING)) for values in flat]}
        for key in keys
        if len({repr(values.get(key, config_tools.MISSING)) for values in flat}) > 1
    ]
    summaries = [results.attempt_summary(store, rid, n) if n else {"result": None, "rows": []} for rid, n in arms]
    tables = [{row["metric"]: row for row in summary["rows"]} for summary in summaries]
    names = sorted({metric for table in tables for metric in table})
    resources = ("train/loss",)  # what an arm costs is in `costs` (overall rates, not the noisiest instant)
    judged = [m for m in names if m.startswith("val/") and not m.endswith(results.SE_SUFFIX)
              and not results.size_metric(m)]
    shown = judged + [m for m in resources if m in names]
    metric_tables, not_compared, identical = [], [], []
    for metric in shown:
        if reason := uninformative([table.get(metric) for table in tables]):
            not_compared.append(f"{metric} ({reason})")
            if len(arms) > 1 and all(table.get(metric) for table in tables):
                identical.append(f"{metric} {format_number(tables[0][metric]['best'])}")
            continue
        base = kept_figure(tables[0], metric)
        rows = []
        for index, label in enumerate(labels):
            row = tables[index].get(metric)
            figure = kept_figure(tables[index], metric)
            comparable = index and figure and base and row["mode"]
            outcome = results.compare(base, figure) if comparable else None
            rows.append({"run": label, "row": row, "delta": figure["best"] - base["best"] if comparable else None,
                         "mark": STATUS_MARK[outcome["status"]] if outcome else "",
                         "why": outcome["why"] if outcome else None})
        metric_tables.append({"metric": metric, "rows": rows, "plot": f"{name}/{metric_file(metric)}"})
    found = [summary["result"] for summary in summaries]
    folder = store.logs_dir / "ablations"
    if comparisons(store).get(name) != list(specs):
        append_jsonl(comparisons_index(store), {"name": name, "arms": list(specs)})
    for table in metric_tables:
        series = {}
        for label, (rid, n) in zip(labels, arms):
            points = metrics.series(results.stream(store, rid, n), table["metric"], plots.MAX_POINTS) \
                if n else None
            if points:
                series[label] = points
        plots.plot_panels(folder / table["plot"], [(table["metric"], series)])
    return render(
        store,
        "ablation.md.j2",
        folder / f"{name}.md",
        name=name,
        runs=[{"run": runs[rid], "label": label, "title": display_title(runs[rid]), "attempt": n,
               "conclusions": [e["text"] for e in store.events.of(rid)
                               if e["kind"] == "note" and e.get("field") == "conclusion"],
               "result": result, "size": results.size_text(result) if result else None}
              for label, (rid, n), result in zip(labels, arms, found)],
        winner=winner_line(labels, found),
        run_ids=labels,
        differing=differing,
        metric_tables=metric_tables,
        not_compared=not_compared,
        costs=[{"run": label, **arm_costs(store, rid, n)} for label, (rid, n) in zip(labels, arms)],
        identical=identical,
    )


def latest_profile(store: Store, run_id: str) -> dict | None:
    """The components of the run's latest `lab profile` (peak tensor memory of one training step, MiB)."""
    profiles = [event for event in store.events.of(run_id) if event["kind"] == "profile"
                and isinstance(event.get("components"), dict)]
    return profiles[-1]["components"] if profiles else None


def arm_costs(store: Store, run_id: str, number: int | None) -> dict:
    """What an arm costs: its overall samples/s and process peak memory (MB, summary.json) and its profiled
    peak tensor memory (MiB, `lab profile`); None where unknown."""
    summary = read_json(store.attempt_dir(run_id, number) / "summary.json", {}) if number else {}
    profile = latest_profile(store, run_id)
    return {"samples_per_s": summary.get("samples_per_s"), "peak_mem_mb": summary.get("peak_mem_mb"),
            "profile": profile}


def kept_figure(table: dict, metric: str) -> dict | None:
    """A metric's value at an arm's kept step as `results.compare` reads it (its `_se` there as noise)."""
    row = table.get(metric)
    if not row or row["kept"] is None:
        return None
    se = table.get(metric + results.SE_SUFFIX)
    return {"metric": metric, "mode": row["mode"], "best": row["kept"], "best_step": row["kept_step"],
            "se": se["kept"] if se and se["kept_step"] == row["kept_step"] else None, "still_improving": False}


def uninformative(rows: list[dict | None]) -> str | None:
    """Why a metric says nothing in a comparison ('never finite', 'all zero', 'the same for every arm'), or None
    when it does."""
    present = [row for row in rows if row and row["final"] is not None]
    if not present:
        return "never finite"
    if all(row["final"] == 0 and row["best"] in (0, None) for row in present):
        return "all zero"
    if len(present) == len(rows) > 1 and len({(row["best"], row["final"]) for row in present}) == 1:
        return "the same for every arm"
    return None


def winner_line(labels: list[str], found: list[dict | None]) -> str:
    """Which arm won on the reference arm's judged metric, with its figure against the reference; no winner
    when every arm logged the same value (identical arms) or the best arm's lead is inside the noise
    (`results.compare`)."""
    reference = found[0]
    if reference is None:
        return "No winner: the reference logged no value of the metric it is judged on."
    scored = [(label, result) for label, result in zip(labels, found)
              if result and result["metric"] == reference["metric"]]
    label, best = scored[0]
    if len(scored) == len(found) > 1 and len({(result["best"], result["final"]) for _, result in scored}) == 1:
        return (f"No winner: every arm logged the same {reference['metric']} ({format_number(reference['best'])}); "
                "the arms are identical (is the setting they vary wired into the script?).")
    for other, result in scored[1:]:
        if results.is_better(result["best"], best["best"], reference["mode"]):
            label, best = other, result
    if label == labels[0]:
        return (f"**{label}** (the reference) stays best on {reference['metric']} "
                f"({format_number(reference['best'])}, {results.size_text(reference)}); no arm beat it.")
    outcome = results.compare(reference, best)
    figures = (f"{format_number(best['best'])} vs {format_number(reference['best'])} for {labels[0]}, "
               f"{results.change_words(reference['best'], best['best'], reference['mode'])}; "
               f"{results.size_text(best)}")
    if outcome["status"] != "improved":
        return f"No clear winner on {reference['metric']}: **{label}** reads {figures}, but {outcome['why']}."
    return f"**{label}** wins on {reference['metric']}: {figures}."


def group_arms(store: Store, group: str) -> list[str]:
    """A group's runs for a comparison, led by the run they all branch from when it is outside the group."""
    ids = group_runs(store, group)
    parents = {store.runs.load(rid).get("parent") for rid in ids}
    if len(parents) == 1 and (parent := parents.pop()) and parent not in ids and store.exists(parent):
        return [parent, *ids]
    return ids


def group_runs(store: Store, group: str) -> list[str]:
    ids = [rid for rid in store.readable_run_ids() if store.runs.load(rid).get("group") == group]
    if not ids:
        raise LabError(f"no runs in group {group!r}")
    return ids


# -- training report ---------------------------------------------------------------------------------------


def evaluation_table(frame, metric: str, mode: str, gap_onset: int | None = None,
                     kept_step: int | None = None, stages: list[tuple[int, str]] = ()) -> list[dict]:
    """Per-evaluation rows: step, train loss, val loss, gap, judged metric and a status word.

    `frame` is the attempt's metric table (`results.stream`); an evaluation is a row with a `val/` value or a
    value of the judged metric. The train loss and the gap are the health rule's (`rules.evaluation_gaps`: the
    mean train loss since the previous evaluation). "gap widening" marks the rows from `gap_onset` on (where that
    rule found overfitting) and no row there is called "best so far"; the row at `kept_step` is marked "kept
    checkpoint", and the first row at or after each of `stages` (`diagnosis.run_stages`: (step, what changed))
    says "stage: <what> at step N".
    """
    pending = sorted(stages)
    evaluations = evaluation_rows(frame, metric)
    if evaluations.empty:
        return []
    gaps = {step: (val_loss, gap) for step, val_loss, gap in health.evaluation_gaps(metrics.StreamRows(frame))}
    table = []
    best = None
    for _, row in evaluations.iterrows():
        step = int(row["step"])
        val_loss = health.finite(row.get("val/loss"))
        gap = gaps[step][1] if step in gaps and gaps[step][0] == val_loss else None
        value = health.finite(row.get(metric))
        status = []
        if value is not None and (best is None or results.is_better(value, best, mode)):
            best = value
            status.append("best so far")
        elif value is not None and abs(value - best) > health.METRIC_WORSE * abs(best):
            status.append("degrading")
        if gap_onset is not None and step >= gap_onset:
            status = [word for word in status if word != "best so far"] + ["gap widening"]
        if step == kept_step and value is not None:
            status.append("kept checkpoint")
        while pending and pending[0][0] <= step:
            status.append(f"stage: {pending[0][1]} at step {pending[0][0]}")
            pending.pop(0)
        table.append({"step": step, "train_loss": val_loss - gap if gap is not None else None,
                      "val_loss": val_loss, "gap": gap, "value": value, "status": ", ".join(status) or "-"})
    return table


def evaluation_rows(frame, judged: str | None = None):
    """The rows of a metric table that carry a `val/` value (or one of the `judged` metric when it is a validation
    metric, e.g. a script's `eval/accuracy`; a training loss logged every step makes no evaluations)."""
    held_out = judged is not None and results.validation(metrics.metric_words(judged))
    columns = [column for column in frame.columns if column.startswith("val/") or (held_out and column == judged)]
    if not columns:
        return frame.iloc[0:0]
    return frame[frame[columns].notna().any(axis=1)]


def column_values(frame, column: str):
    """One column of a metric table with non-finite values as NaN (all NaN when the column is absent)."""
    import numpy as np
    import pandas as pd

    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return frame[column].where(np.isfinite(frame[column]))


CHANGES_SHOWN = 12  # config changes listed per reference in a report; the rest are counted


def reference_changes(store: Store, run: dict, config: dict) -> list[tuple[str, list[config_tools.Change]]]:
    """(name, changes) of `config` against the run's parent (its headline attempt) and its baseline."""
    references = []
    if run.get("parent") and store.exists(run["parent"]):
        parent = run["parent"]
        references.append((f"parent {parent}", attempt_config(store, parent, headline_attempt(store, parent))))
    snapshot = store.baselines.get(run["baseline"]) if run.get("baseline") else None
    if snapshot:
        references.append((f"baseline {run['baseline']}", snapshot["config"]))
    return [(name, config_tools.diff(base, config)) for name, base in references]


def report(store: Store, run_id: str, attempt_number: int | None = None) -> Path:
    """Write logs/reports/<id>.md for one attempt (default: the run's headline attempt, else the latest with
    metrics): verdict, notes, setup, per-evaluation table, plots, resources, environment, health."""
    run = store.runs.load(run_id)
    headline = headline_attempt(store, run_id) if attempt_number is None else None
    with_metrics = headline is not None and (store.attempt_dir(run_id, headline) / "metrics.jsonl").exists()
    number = headline if with_metrics else chosen_attempt(store, run_id, attempt_number)
    if number is None:
        raise LabError(f"run {run_id} has no attempt with metrics to report on")
    attempt = store.attempts.load(run_id, number)
    folder = store.attempt_dir(run_id, number)
    config = attempt_config(store, run_id, number)
    frame = results.stream(store, run_id, number)
    family = run.get("family")
    metric, mode = results.judged_metric(config, list(frame.columns), family)
    outcome = results.attempt_summary(store, run_id, number)
    result = outcome["result"]
    kept_step = result["best_step"] if result else None
    summary = read_json(folder / "summary.json", {})
    stages = run_stages(family, config, metrics.StreamRows(frame))
    panels = []
    chosen = [("loss", ["train/loss", "val/loss"]), (metric, [metric]),
              ("grad norm (pre-clip)", ["train/grad_norm"]), ("learning rate", ["train/lr"])]
    chosen += [(panel.title, list(panel.metrics)) for panel in getattr(registry.find(family), "report_panels", ())]
    for title, names in chosen:
        series = {column: points for column in names
                  if (points := metrics.series(frame, column, plots.MAX_POINTS))}
        constant = title == "learning rate" and all(len(set(values)) == 1 for _, values in series.values())
        if series and not constant and not (title == metric and metric in ("train/loss", "val/loss")):
            panels.append((title, series))
    plot_path = store.logs_dir / "reports" / run_id / "curves.svg"
    if panels:
        plots.plot_panels(plot_path, panels, stages)
    eval_times = column_values(evaluation_rows(frame), "time").dropna().tolist()
    eval_seconds = [later - earlier for earlier, later in zip(eval_times, eval_times[1:])]
    flat = config_tools.flatten(config)
    findings = health_events(store, run_id, number)
    gap_onsets = [event["step"] for event in findings if event.get("rule") == "gap_widening"]
    events = store.events.of(run_id)
    return render(
        store,
        "report.md.j2",
        store.logs_dir / "reports" / f"{run_id}.md",
        run=run,
        title=display_title(run),
        attempt=attempt,
        summary=summary,
        hyper=[(k, config_tools.format_value(v)) for k, v in flat.items() if k.split(".")[0] in ("optim", "train")],
        model=[(k, config_tools.format_value(v)) for k, v in flat.items() if k.split(".")[0] == "model"],
        data=[(k, config_tools.format_value(v)) for k, v in flat.items() if k.split(".")[0] == "data"],
        other=[(k, config_tools.format_value(v)) for k, v in flat.items()
               if k.split(".")[0] not in ("optim", "train", "model", "data")],
        metric=metric,
        evaluations=evaluation_table(frame, metric, mode, min(gap_onsets, default=None), kept_step, stages),
        curves=f"{run_id}/curves.svg" if panels else None,
        panel_titles=[title for title, _ in panels],
        result=result,
        verdict=verdicts.hypothesis_verdict(store, run, number),
        resumed_chain=results.stream_chain(store, run_id, number)[:-1],
        notes=[(NOTE_LABELS[e["field"]], e["text"]) for e in events
               if e["kind"] == "note" and e.get("attempt") in (None, number)],
        changes=[(name, changes[:CHANGES_SHOWN], len(changes) - CHANGES_SHOWN)
                 for name, changes in reference_changes(store, run, config)],
        attempts=[{"number": a["number"], "status": a["status"], "note": a.get("note"),
                   "duration": duration_text(a.get("started"), a.get("ended")),
                   "result": results.attempt_result(store, run_id, a["number"]),
                   "failure": failure_line(store, run_id, a)} for a in store.attempts.of(run_id)],
        duration=duration_text(attempt.get("started"), attempt.get("ended")),
        seconds_per_eval=sorted(eval_seconds)[len(eval_seconds) // 2] if eval_seconds else None,
        reproduce=reproduce_text(attempt),
        resumed=resumed_text(store, run_id, attempt),
        disagreements=attempt.get("config_disagreements") or {},
        findings=findings,
        metric_rows=outcome["rows"],
        kept_step=kept_step,
        evaluation=results.size_text(result),
        failure=failure_tail(folder) if attempt.get("status") in ("failed", "crashed", "killed") else None,
        verification=verification_rows(outcome["rows"]),
        media=list(read_jsonl(folder / "media.jsonl"))[-MEDIA_SHOWN:],
        profile=latest_profile(store, run_id),
    )


MEDIA_SHOWN = 12  # the latest generated samples listed in a report


def verification_rows(rows: list[dict]) -> list[dict]:
    """EER and minDCF per embedding dim (metrics val/eer_<dim>, val/mindcf_<dim>) as `metric_rows` gives them
    (at the kept step, own best apart), smallest dim first, each EER at the kept step against the largest dim's."""
    by_name = {row["metric"]: row for row in rows}
    dims = sorted(int(name.rsplit("_", 1)[1]) for name in by_name
                  if re.fullmatch(r"val/eer_\d+", name) and by_name[name]["best"] is not None)
    largest = by_name[f"val/eer_{dims[-1]}"] if dims else None
    table = []
    for dim in dims:
        eer = by_name[f"val/eer_{dim}"]
        comparable = dim != dims[-1] and eer["kept"] is not None and largest["kept"]
        table.append({"dim": dim, "eer": eer, "mindcf": by_name.get(f"val/mindcf_{dim}"),
                      "vs_largest": results.change_words(largest["kept"], eer["kept"], "min") if comparable else None})
    return table


# -- doctor and render -------------------------------------------------------------------------------------


def render_all(store: Store) -> list[Path]:
    """Rebuild every page from the records: daily logs, changelogs, group ablations, reports."""
    written = [daily_log(store, day) for day in active_days(store)]
    written += [changelog(store, name) for name in baselines_in_use(store)]
    groups: dict[str, list[str]] = {}
    for rid in store.readable_run_ids():
        group = store.runs.load(rid).get("group")
        if group:
            groups.setdefault(group, []).append(rid)
    written += [compare(store, group_arms(store, group), group) for group, ids in sorted(groups.items())
                if len(ids) > 1]
    readable = set(store.readable_run_ids())
    for name, specs in sorted(comparisons(store).items()):
        if name not in groups and all(spec.partition(":")[0] in readable for spec in specs):
            written.append(compare(store, specs, name))
    written += [report(store, rid) for rid in store.readable_run_ids() if store.attempts.latest_with_metrics(rid)]
    return written
