"""The training report, logs/reports/<id>.md: one attempt's verdict, notes, setup and its changes against its
parent and baseline, per-evaluation table, curves, resources, environment and health; and `render_all`, which
rebuilds every page from the records."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from lab.errors import LabError
from lab.families import registry
from lab.health import rules as health
from lab.health.diagnosis import chosen_attempt, run_findings, run_stages
from lab.pages import listening, plots, results, verdicts
from lab.pages.changelogs import changelog
from lab.pages.comparisons import compare, compare_page, comparisons
from lab.pages.incremental import Pages
from lab.pages.context import (
    NOTE_LABELS,
    command_text,
    daily_log,
    display_title,
    duration_text,
    latest_profile,
    listening_link,
    render,
    reproduce_text,
    resumed_text,
)
from lab.pages.results import attempt_config, headline_attempt
from lab.pages.verdicts import ENDED_BADLY, failure_line, failure_tail
from lab.records import config as config_tools
from lab.records import metrics
from lab.records.files import read_json, read_jsonl
from lab.records.store import Store


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


def median_seconds_between_evaluations(frame) -> float | None:
    """The median wall-clock seconds from one evaluation row of `frame` to the next; None with fewer than two."""
    times = column_values(evaluation_rows(frame), "time").dropna().tolist()
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    return sorted(gaps)[len(gaps) // 2] if gaps else None


def report(store: Store, run_id: str, attempt_number: int | None = None) -> Path:
    """Write logs/reports/<id>.md for one attempt (default: the run's headline attempt, else the latest with
    metrics): verdict, notes, setup, per-evaluation table, plots, resources, environment, health. LabError for
    a run or attempt that does not exist, or a run with no attempt that logged metrics."""
    run = store.runs.load(run_id)
    number = reported_attempt(store, run_id, attempt_number)
    attempt = store.attempts.load(run_id, number)
    folder = store.attempt_dir(run_id, number)
    config = attempt_config(store, run_id, number)
    frame = results.stream(store, run_id, number)
    metric, mode = results.judged_metric(config, list(frame.columns), run.get("family"))
    outcome = results.attempt_summary(store, run_id, number)
    result = outcome["result"]
    kept_step = result["best_step"] if result else None
    checkpointed = kept_step is not None and checkpoint_at(store, run_id, number, kept_step)
    stages = run_stages(run.get("family"), config, metrics.StreamRows(frame))
    panels = report_panels(frame, metric, run.get("family"))
    if panels:
        plots.plot_panels(store.logs_dir / "reports" / run_id / "curves.svg", panels, stages)
    findings = run_findings(store, run_id, number)
    gap_onset = min((finding.step for finding in findings if finding.rule == "gap_widening"), default=None)
    return render(
        store,
        "report.md.j2",
        store.logs_dir / "reports" / f"{run_id}.md",
        run=run,
        title=display_title(run),
        attempt=attempt,
        summary=read_json(folder / "summary.json", {}),
        **config_sections(config),
        metric=metric,
        evaluations=evaluation_table(frame, metric, mode, gap_onset, kept_step if checkpointed else None, stages),
        metric_column=metric not in ("val/loss", "train/loss"),
        curves=f"{run_id}/curves.svg" if panels else None,
        panel_titles=[title for title, _ in panels],
        result=result,
        verdict=verdicts.run_verdict(store, run, number),
        resumed_chain=results.stream_chain(store, run_id, number)[:-1],
        notes=[(NOTE_LABELS[e["field"]], e["text"]) for e in store.events.of(run_id)
               if e["kind"] == "note" and e.get("attempt") in (None, number)],
        changes=[(name, changes[:CHANGES_SHOWN], len(changes) - CHANGES_SHOWN)
                 for name, changes in reference_changes(store, run, config)],
        attempts=attempt_rows(store, run_id),
        duration=duration_text(attempt),
        seconds_per_eval=median_seconds_between_evaluations(frame),
        reproduce=reproduce_text(attempt),
        resumed=resumed_text(store, run_id, attempt),
        disagreements=attempt.get("config_disagreements") or {},
        unconfirmed=attempt.get("set_unconfirmed") or {},
        findings=findings,
        **metric_tables(outcome["rows"]),
        kept_step=kept_step,
        checkpointed=checkpointed,
        evaluation=results.size_text(result),
        failure=failure_tail(folder) if attempt.get("status") in ENDED_BADLY else None,
        verification=verification_rows(outcome["rows"]),
        media=list(read_jsonl(folder / "media.jsonl"))[-MEDIA_SHOWN:],
        listening=listening_link(store, run_id),
        profile=latest_profile(store, run_id),
    )


def attempt_rows(store: Store, run_id: str) -> list[dict]:
    """The report's table of every attempt: number, status, note, duration, result (or why it failed), command."""
    return [{"number": a["number"], "status": a["status"], "note": a.get("note"),
             "duration": duration_text(a),
             "result": results.attempt_result(store, run_id, a["number"]),
             "failure": failure_line(store, run_id, a), "command": command_text(a)} for a in store.attempts.of(run_id)]


def metric_tables(rows: list[dict]) -> dict[str, list[dict]]:
    """A report's `metric_rows` (results, own bests) and `detail_rows` (bookkeeping: `results.bookkeeping`) of
    `results.metric_rows`."""
    return {"metric_rows": [row for row in rows if not results.bookkeeping(row["metric"])],
            "detail_rows": [row for row in rows if results.bookkeeping(row["metric"])]}


def checkpoint_at(store: Store, run_id: str, number: int, step: int) -> bool:
    """Whether a checkpoint of attempt `number`, or of an attempt its stream resumed, was recorded at `step`
    (by the engine, or by the script through `tracker.checkpoint`)."""
    return any(entry.get("step") == step for earlier in results.stream_chain(store, run_id, number)
               for entry in (store.attempts.load(run_id, earlier).get("checkpoints") or {}).values())


def reported_attempt(store: Store, run_id: str, number: int | None) -> int:
    """The attempt a report is of: `number` when given (LabError when it does not exist), else the run's headline
    attempt when it logged metrics, else the latest attempt with metrics; LabError when there is none."""
    headline = headline_attempt(store, run_id) if number is None else None
    with_metrics = headline is not None and (store.attempt_dir(run_id, headline) / "metrics.jsonl").exists()
    chosen = headline if with_metrics else chosen_attempt(store, run_id, number)
    if chosen is None:
        raise LabError(f"run {run_id} has no attempt with metrics to report on")
    return chosen


def report_panels(frame, metric: str, family: str | None) -> list[tuple[str, dict]]:
    """(title, {metric: points}) of each panel of a report's curves: the losses, the judged metric, the gradient
    norm, the learning rate (unless constant) and the family's own `report_panels`, each where it was logged."""
    chosen = [("loss", ["train/loss", "val/loss"]), (metric, [metric]),
              ("grad norm (pre-clip)", ["train/grad_norm"]), ("learning rate", ["train/lr"])]
    chosen += [(panel.title, list(panel.metrics)) for panel in getattr(registry.find(family), "report_panels", ())]
    panels = []
    for title, names in chosen:
        series = {column: points for column in names
                  if (points := metrics.series(frame, column, plots.MAX_POINTS))}
        constant = title == "learning rate" and all(len(set(values)) == 1 for _, values in series.values())
        if series and not constant and not (title == metric and metric in ("train/loss", "val/loss")):
            panels.append((title, series))
    return panels


def config_sections(config: dict) -> dict[str, list[tuple[str, str]]]:
    """A report's setup tables: (key, value as text) of the config's optim and train keys (`hyper`), model,
    data and `other` keys."""
    flat = [(key, config_tools.format_value(value)) for key, value in config_tools.flatten(config).items()]
    section = {"optim": "hyper", "train": "hyper", "model": "model", "data": "data"}
    tables: dict[str, list[tuple[str, str]]] = {"hyper": [], "model": [], "data": [], "other": []}
    for key, value in flat:
        tables[section.get(key.split(".")[0], "other")].append((key, value))
    return tables


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


def render_all(store: Store) -> list[Path]:
    """Rebuild the pages whose records changed (`incremental.Pages`): daily logs, changelogs, group ablations,
    named comparisons, reports; every page's path."""
    pages = Pages(store)
    facts = pages.facts
    by_day: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    for rid, fact in facts.items():
        for day in fact["days"]:
            by_day.setdefault(day, []).append(rid)
        if fact["group"]:
            groups.setdefault(fact["group"], []).append(rid)
    days = sorted(set(by_day) | {store.day(event["time"]).isoformat() for event in store.events.journal()})
    written = [pages.write(f"daily:{day}", by_day.get(day, []),
                           lambda day=day: daily_log(store, date.fromisoformat(day), by_day.get(day, [])))
               for day in days]
    for name in sorted({fact["baseline"] for fact in facts.values()} - {None}):
        on_baseline = [rid for rid, fact in facts.items() if fact["baseline"] == name]
        written.append(pages.write(f"changelog:{name}", on_baseline, lambda name=name: changelog(store, name)))
    written += [pages.write(f"group:{group}", ids, lambda group=group: compare_page(store, group=group,
                                                                                    members=groups[group]))
                for group, ids in sorted(groups.items()) if len(ids) > 1]
    for name, specs in sorted(comparisons(store).items()):
        arms = [spec.partition(":")[0] for spec in specs]
        if name not in groups and all(arm in facts for arm in arms):
            written.append(pages.write(f"compare:{name}", arms, inputs=specs,
                                       make=lambda specs=specs, name=name: compare(store, specs, name)))
    reports = store.logs_dir / "reports"
    written += [pages.write(f"report:{rid}", [rid], lambda rid=rid: report(store, rid),
                            also=(reports / rid / "curves.svg",)) for rid, fact in facts.items() if fact["reported"]]
    return written + listening.render_all(store)
