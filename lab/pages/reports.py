"""Pages beyond the daily log, all from the records: baseline changelog, ablation comparison, training report,
and the health doctor that turns a metric stream into findings."""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import LabError
from lab.families import registry
from lab.health import rules as health
from lab.health.diagnosis import chosen_attempt, health_events
from lab.pages import plots, results
from lab.pages.context import (
    NOTE_LABELS,
    active_days,
    attempt_config,
    daily_log,
    display_title,
    duration_text,
    headline_attempt,
    latest_attempt_with_metrics,
    render,
    reproduce_text,
    resumed_text,
)
from lab.records import config as config_tools
from lab.records import metrics
from lab.records.files import append_jsonl, read_json, read_jsonl
from lab.records.metrics import format_number
from lab.records.store import Store

STATUS_MARK = {"improved": "✅", "worse": "❌", "unchanged": "➖", "untested": "❔"}


def metric_file(metric: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_") + ".svg"


def verdict(before: dict | None, after: dict | None) -> str:
    """improved / worse / unchanged against the reference result, or untested when either is missing."""
    change = results.improvement(before, after)
    if change is None:
        return "untested"
    return "improved" if change > 1e-9 else "worse" if change < -1e-9 else "unchanged"


# -- baseline changelog ------------------------------------------------------------------------------------


def baselines_in_use(store: Store) -> list[str]:
    return sorted({store.load_run(rid).get("baseline") for rid in store.readable_run_ids()} - {None})


def set_status_override(store: Store, baseline: str, assignment: str) -> None:
    """Record a researcher's own status for a changelog row: KEY=TEXT."""
    key, sep, text = assignment.partition("=")
    snapshot = store.baseline(baseline)
    if not sep or not key or snapshot is None:
        raise LabError(f"--status takes KEY=TEXT for an existing baseline, got {assignment!r}")
    snapshot.setdefault("status_overrides", {})[key.strip()] = text.strip()
    store.write_baseline(snapshot)


def set_current(store: Store, baseline: str, run_id: str) -> None:
    """Make `run_id` the run a baseline's changelog calls current."""
    snapshot = store.baseline(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}")
    if store.load_run(run_id).get("baseline") != baseline:
        raise LabError(f"run {run_id} does not use baseline {baseline}")
    store.write_baseline({**snapshot, "current": run_id})


def changelog(store: Store, baseline: str) -> Path:
    """Write logs/changelogs/<baseline>.md: what every run changed from the baseline (config and code), and how
    it went against its parent and against the best run before it."""
    snapshot = store.baseline(baseline)
    if snapshot is None:
        raise LabError(f"no baseline {baseline!r}; baselines in use: {', '.join(baselines_in_use(store)) or 'none'}")
    base_config = snapshot["config"]
    runs = sorted((store.load_run(rid) for rid in store.readable_run_ids()),
                  key=lambda run: (run["created"], run["id"]))
    runs = [run for run in runs if run.get("baseline") == baseline]
    number = {run["id"]: index for index, run in enumerate(runs, start=1)}
    headlines = {run["id"]: headline_attempt(store, run["id"]) for run in runs}
    configs = {rid: attempt_config(store, rid, n) for rid, n in headlines.items()}
    families = {run["id"]: run.get("family") for run in runs}
    outcomes = {rid: results.attempt_result(store.attempt_dir(rid, n), configs[rid], families[rid])
               if n else None for rid, n in headlines.items()}
    reproductions = [r for r in runs if outcomes[r["id"]] and not config_tools.diff(base_config, configs[r["id"]])]
    first_with_result = next((r for r in runs if outcomes[r["id"]]), None)
    reference_run = reproductions[0] if reproductions else first_with_result
    baseline_result = outcomes[reference_run["id"]] if reproductions else None

    entries, best_entry = [], None
    for run in runs:
        rid = run["id"]
        parent = run.get("parent") if run.get("parent") in number else None
        reference_config = configs[parent] if parent else base_config
        reference_result = outcomes[parent] if parent else baseline_result
        code_changes = [{"component": e.get("component") or "code", "text": e["text"]}
                        for e in store.events(rid) if e["kind"] == "change" and isinstance(e.get("text"), str)]
        changes = config_tools.diff(reference_config, configs[rid])
        entry = {
            "number": number[rid],
            "run": run,
            "attempt": headlines[rid],
            "title": display_title(run),
            "against": f"Run #{number[parent]} ({parent})" if parent else "the baseline",
            "changes": changes,
            "code_changes": code_changes,
            "confounded": len(changes) + len(code_changes) > 1,
            "result": outcomes[rid],
            "reference_result": reference_result,
            "verdict": verdict(reference_result, outcomes[rid]),
            "best_earlier": best_entry,
            "beats_best_earlier": best_entry is None or verdict(best_entry["result"], outcomes[rid]) != "worse",
            "notes": {e["field"]: e["text"] for e in store.events(rid)
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
            status = introduced["verdict"] if introduced else "untested"
            table.append({
                "change": change,
                "status": overrides.get(change.key)
                or f"{STATUS_MARK[status]} {status}" + (f" (Run #{introduced['number']})" if introduced else "")
                + (", confounded" if introduced and introduced["confounded"] else ""),
            })
    improved = [e for e in entries if e["verdict"] == "improved" and (e["changes"] or e["code_changes"])]
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
        current_result=outcomes.get(current["id"]) if current else None,
        best=best_entry,
        reference_run=reference_run,
        reference_is_baseline=bool(reproductions),
        reference_result=outcomes[reference_run["id"]] if reference_run else None,
        vs_reference=results.improvement(outcomes[reference_run["id"]], best_entry["result"]) if best_entry else None,
        works=[e for e in improved if e["beats_best_earlier"]],
        weak_parent=[e for e in improved if not e["beats_best_earlier"]],
        fails=[e for e in entries if e["verdict"] == "worse" and (e["changes"] or e["code_changes"])],
    )


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
    store.load_run(run_id)
    if not number:
        return run_id, headline_attempt(store, run_id)
    if not number.isdigit():
        raise LabError(f"{spec!r}: write RUN or RUN:ATTEMPT, like nsd_004:2")
    store.load_attempt(run_id, int(number))
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
    runs = {rid: store.load_run(rid) for rid, _ in arms}
    configs = [read_json(store.attempt_dir(rid, n) / "config.json", None) if n else None for rid, n in arms]
    flat = [config_tools.flatten(config if config is not None else store.run_config(rid))
            for (rid, _), config in zip(arms, configs)]
    keys = sorted({k for values in flat for k in values})
    differing = [
        {"key": key, "values": [config_tools.format_value(values.get(key, config_tools.MISSING)) for values in flat]}
        for key in keys
        if len({repr(values.get(key, config_tools.MISSING)) for values in flat}) > 1
    ]
    tables = [{row["metric"]: row for row in results.final_and_best(store.attempt_dir(rid, n),
                                                                  family=runs[rid].get("family"))}
              if n else {} for rid, n in arms]
    names = sorted({metric for table in tables for metric in table})
    resources = ("train/loss", "train/samples_per_s", "train/peak_mem_mb")  # what an arm costs, beside how it scores
    shown = [m for m in names if m.startswith("val/")] + [m for m in resources if m in names]
    metric_tables, identical = [], []
    for metric in shown:
        if uninformative([table.get(metric) for table in tables]):
            if len(arms) > 1 and all(table.get(metric) for table in tables):
                identical.append(f"{metric} {format_number(tables[0][metric]['best'])}")
            continue
        base = tables[0].get(metric)
        rows = []
        for index, label in enumerate(labels):
            row = tables[index].get(metric)
            comparable = row and base and index and row["best"] is not None and base["best"] is not None
            delta = row["best"] - base["best"] if comparable else None
            mark = "" if delta is None or not row["mode"] or delta == 0 else \
                "✅" if (delta < 0) == (row["mode"] == "min") else "❌"
            rows.append({"run": label, "row": row, "delta": delta, "mark": mark})
        metric_tables.append({"metric": metric, "rows": rows, "plot": f"{name}/{metric_file(metric)}"})
    outcomes = [results.attempt_result(store.attempt_dir(rid, n), config or store.run_config(rid),
                                      runs[rid].get("family")) if n else None
               for (rid, n), config in zip(arms, configs)]
    folder = store.logs_dir / "ablations"
    if comparisons(store).get(name) != list(specs):
        append_jsonl(comparisons_index(store), {"name": name, "arms": list(specs)})
    for table in metric_tables:
        series = {}
        for label, (rid, n) in zip(labels, arms):
            points = metrics.series(metrics.load(store.attempt_dir(rid, n)), table["metric"], plots.MAX_POINTS) \
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
               "conclusions": [e["text"] for e in store.events(rid)
                               if e["kind"] == "note" and e.get("field") == "conclusion"],
               "result": result}
              for label, (rid, n), result in zip(labels, arms, outcomes)],
        winner=winner_line(labels, outcomes),
        run_ids=labels,
        differing=differing,
        metric_tables=metric_tables,
        identical=identical,
    )


def uninformative(rows: list[dict | None]) -> bool:
    """Whether a metric says nothing in a comparison: logged by no arm, all zero, or one value for every arm."""
    present = [row for row in rows if row]
    if not present:
        return True
    all_zero = all(row["final"] == 0 and row["best"] in (0, None) for row in present)
    same_everywhere = len(present) == len(rows) > 1 and len({(row["best"], row["final"]) for row in present}) == 1
    return all_zero or same_everywhere


def winner_line(labels: list[str], outcomes: list[dict | None]) -> str:
    """Which arm won on the reference arm's judged metric, with its figure against the reference."""
    reference = outcomes[0]
    if reference is None:
        return "No winner: the reference logged no value of the metric it is judged on."
    scored = [(label, result) for label, result in zip(labels, outcomes)
              if result and result["metric"] == reference["metric"]]
    label, best = scored[0]
    if len(scored) == len(outcomes) > 1 and len({(result["best"], result["final"]) for _, result in scored}) == 1:
        return (f"No winner: every arm logged the same {reference['metric']} ({format_number(reference['best'])}); "
                "the arms are identical (is the setting they vary wired into the script?).")
    for other, result in scored[1:]:
        if results.is_better(result["best"], best["best"], reference["mode"]):
            label, best = other, result
    if label == labels[0]:
        return (f"**{label}** (the reference) stays best on {reference['metric']} "
                f"({format_number(reference['best'])}); no arm beat it.")
    change = results.improvement(reference, best)
    gain = f", {change:+.1%}" if change is not None else ""
    return (f"**{label}** wins on {reference['metric']}: {format_number(best['best'])} vs "
            f"{format_number(reference['best'])} for {labels[0]}{gain}.")


def group_arms(store: Store, group: str) -> list[str]:
    """A group's runs for a comparison, led by the run they all branch from when it is outside the group."""
    ids = group_runs(store, group)
    parents = {store.load_run(rid).get("parent") for rid in ids}
    if len(parents) == 1 and (parent := parents.pop()) and parent not in ids and store.exists(parent):
        return [parent, *ids]
    return ids


def group_runs(store: Store, group: str) -> list[str]:
    ids = [rid for rid in store.readable_run_ids() if store.load_run(rid).get("group") == group]
    if not ids:
        raise LabError(f"no runs in group {group!r}")
    return ids


# -- training report ---------------------------------------------------------------------------------------


def evaluation_table(frame, metric: str, mode: str, gap_onset: int | None = None) -> list[dict]:
    """Per-evaluation rows: step, train loss before it, val loss, gap, judged metric and a status word.

    `frame` is the attempt's metric table (`metrics.load`); an evaluation is a row with a `val/` value. From
    `gap_onset` on (where the gap rule found overfitting) no row is called "best so far": it says
    "gap widening", as the health finding does.
    """
    evaluations = evaluation_rows(frame)
    if evaluations.empty:
        return []
    train_losses = column_values(frame, "train/loss").ffill()[evaluations.index]
    table = []
    best = min_val_loss = previous_gap = None
    for index, row in evaluations.iterrows():
        train_loss = health.finite(train_losses[index])
        val_loss = health.finite(row.get("val/loss"))
        value = health.finite(row.get(metric))
        gap = val_loss - train_loss if val_loss is not None and train_loss is not None else None
        status = []
        if value is not None and (best is None or results.is_better(value, best, mode)):
            best = value
            status.append("best so far")
        elif value is not None and abs(value - best) > health.METRIC_WORSE * abs(best):
            status.append("degrading")
        if val_loss is not None:
            if gap is not None and previous_gap is not None and gap > previous_gap and min_val_loss is not None \
                    and val_loss > min_val_loss:
                status.append("gap widening")
            min_val_loss = val_loss if min_val_loss is None else min(min_val_loss, val_loss)
        previous_gap = gap if gap is not None else previous_gap
        if gap_onset is not None and row["step"] >= gap_onset:
            status = [word for word in status if word != "best so far"]
            status += [] if "gap widening" in status else ["gap widening"]
        table.append({"step": int(row["step"]), "train_loss": train_loss, "val_loss": val_loss, "gap": gap,
                      "value": value, "status": ", ".join(status) or "-"})
    return table


def evaluation_rows(frame):
    """The rows of a metric table that carry a `val/` value."""
    columns = [column for column in frame.columns if column.startswith("val/")]
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
VERDICT_MARGIN = 0.01  # a relative change of the judged metric within 1% is inconclusive


def reference_changes(store: Store, run: dict, config: dict) -> list[tuple[str, list[config_tools.Change]]]:
    """(name, changes) of `config` against the run's parent (its headline attempt) and its baseline."""
    references = []
    if run.get("parent") and store.exists(run["parent"]):
        parent = run["parent"]
        references.append((f"parent {parent}", attempt_config(store, parent, headline_attempt(store, parent))))
    snapshot = store.baseline(run["baseline"]) if run.get("baseline") else None
    if snapshot:
        references.append((f"baseline {run['baseline']}", snapshot["config"]))
    return [(name, config_tools.diff(base, config)) for name, base in references]


def hypothesis_verdict(store: Store, run: dict, result: dict | None) -> str:
    """Supported / not supported / inconclusive, from the judged metric against the parent's headline attempt,
    with the figures."""
    if result is None:
        return "inconclusive: the attempt logged no value of the metric it is judged on"
    parent = run.get("parent")
    if not parent or not store.exists(parent):
        return (f"inconclusive: {result['metric']} {format_number(result['best'])}, with no parent run to "
                "compare it with (lab new-run --from)")
    number = headline_attempt(store, parent)
    before = results.attempt_result(store.attempt_dir(parent, number), attempt_config(store, parent, number),
                                    store.load_run(parent).get("family")) if number else None
    change = results.improvement(before, result)
    if change is None:
        return f"inconclusive: {parent} has no {result['metric']} to compare with"
    figures = (f"{result['metric']} {format_number(result['best'])} vs {format_number(before['best'])} for "
               f"{parent}:{number} ({change:+.1%} {'better' if change > 0 else 'worse'})")
    if abs(change) <= VERDICT_MARGIN:
        return f"inconclusive: {figures}, within {VERDICT_MARGIN:.0%}"
    return f"{'supported' if change > 0 else 'not supported'}: {figures}"


def report(store: Store, run_id: str, attempt_number: int | None = None) -> Path:
    """Write logs/reports/<id>.md for one attempt (default: the run's headline attempt, else the latest with
    metrics): verdict, notes, setup, per-evaluation table, plots, resources, environment, health."""
    run = store.load_run(run_id)
    headline = headline_attempt(store, run_id) if attempt_number is None else None
    with_metrics = headline is not None and (store.attempt_dir(run_id, headline) / "metrics.jsonl").exists()
    number = headline if with_metrics else chosen_attempt(store, run_id, attempt_number)
    if number is None:
        raise LabError(f"run {run_id} has no attempt with metrics to report on")
    attempt = store.load_attempt(run_id, number)
    folder = store.attempt_dir(run_id, number)
    config = read_json(folder / "config.json", store.run_config(run_id))
    frame = metrics.load(folder)
    family = run.get("family")
    metric, mode = results.judged_metric(config, list(frame.columns), family)
    summary = read_json(folder / "summary.json", {})
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
        plots.plot_panels(plot_path, panels)
    eval_times = column_values(evaluation_rows(frame), "time").dropna().tolist()
    eval_seconds = [later - earlier for earlier, later in zip(eval_times, eval_times[1:])]
    flat = config_tools.flatten(config)
    findings = health_events(store, run_id, number)
    gap_onsets = [event["step"] for event in findings if event.get("rule") == "gap_widening"]
    result = results.attempt_result(folder, config, family)
    events = store.events(run_id)
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
        metric=metric,
        evaluations=evaluation_table(frame, metric, mode, min(gap_onsets, default=None)),
        curves=f"{run_id}/curves.svg" if panels else None,
        panel_titles=[title for title, _ in panels],
        result=result,
        verdict=hypothesis_verdict(store, run, result),
        notes=[(NOTE_LABELS[e["field"]], e["text"]) for e in events
               if e["kind"] == "note" and e.get("attempt") in (None, number)],
        changes=[(name, changes[:CHANGES_SHOWN], len(changes) - CHANGES_SHOWN)
                 for name, changes in reference_changes(store, run, config)],
        attempts=[{"number": a["number"], "status": a["status"], "note": a.get("note"),
                   "duration": duration_text(a.get("started"), a.get("ended")),
                   "result": results.attempt_result(store.attempt_dir(run_id, a["number"]), attempt_config(
                       store, run_id, a["number"]), family)} for a in store.attempts(run_id)],
        duration=duration_text(attempt.get("started"), attempt.get("ended")),
        seconds_per_eval=sorted(eval_seconds)[len(eval_seconds) // 2] if eval_seconds else None,
        reproduce=reproduce_text(attempt),
        resumed=resumed_text(store, run_id, attempt),
        disagreements=attempt.get("config_disagreements") or {},
        findings=findings,
        metric_rows=results.final_and_best(folder, metric, mode, family),
        failure=failure_tail(folder) if attempt.get("status") in ("failed", "crashed", "killed") else None,
        verification=verification_rows(results.final_and_best(folder, metric, mode, family)),
        media=list(read_jsonl(folder / "media.jsonl"))[-MEDIA_SHOWN:],
    )


MEDIA_SHOWN = 12  # the latest generated samples listed in a report


def verification_rows(rows: list[dict]) -> list[dict]:
    """EER and minDCF per embedding dim (metrics val/eer_<dim>, val/mindcf_<dim>), smallest dim first."""
    by_name = {row["metric"]: row for row in rows}
    dims = sorted(int(name.rsplit("_", 1)[1]) for name in by_name
                  if re.fullmatch(r"val/eer_\d+", name) and by_name[name]["best"] is not None)
    return [{"dim": dim, "eer": by_name[f"val/eer_{dim}"], "mindcf": by_name.get(f"val/mindcf_{dim}")}
            for dim in dims]


FAILURE_LINES = 15


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


# -- doctor and render -------------------------------------------------------------------------------------


def render_all(store: Store) -> list[Path]:
    """Rebuild every page from the records: daily logs, changelogs, group ablations, reports."""
    written = [daily_log(store, day) for day in active_days(store)]
    written += [changelog(store, name) for name in baselines_in_use(store)]
    groups: dict[str, list[str]] = {}
    for rid in store.readable_run_ids():
        group = store.load_run(rid).get("group")
        if group:
            groups.setdefault(group, []).append(rid)
    written += [compare(store, group_arms(store, group), group) for group, ids in sorted(groups.items())
                if len(ids) > 1]
    readable = set(store.readable_run_ids())
    for name, specs in sorted(comparisons(store).items()):
        if name not in groups and all(spec.partition(":")[0] in readable for spec in specs):
            written.append(compare(store, specs, name))
    written += [report(store, rid) for rid in store.readable_run_ids() if latest_attempt_with_metrics(store, rid)]
    return written
