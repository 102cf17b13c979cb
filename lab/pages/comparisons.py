"""The ablation comparison, logs/ablations/<name>.md: runs (or attempts) side by side, their differing config
keys, each validation metric at each arm's kept checkpoint against the first arm's with its noise, overlaid
curves, what each arm costs, and the winner; and the index of comparison pages that `lab render` rebuilds."""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import LabError
from lab.health.diagnosis import run_findings
from lab.pages import plots, results, verdicts
from lab.pages.context import display_title, latest_profile, render
from lab.pages.changes import parse_attempt
from lab.records import config as config_tools
from lab.records import metrics
from lab.records.files import append_jsonl, read_json, read_jsonl
from lab.records.metrics import format_number
from lab.records.store import Store


def metric_file(metric: str) -> str:
    """The SVG file name of a metric's plot: "val/eer_16" -> "val_eer_16.svg"."""
    return re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_") + ".svg"


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


def compare_page(store: Store, specs: list[str] = (), group: str | None = None, name: str | None = None,
                 members: list[str] | None = None) -> Path:
    """`lab compare`: the comparison of the runs `specs` (`RUN` or `RUN:ATTEMPT`), or of a `group`'s runs (led
    by the run they all branch from; `members`, its runs in the lab's order, when the caller knows them), named
    `name` (default: the group, or the arms joined by _vs_). LabError for both or neither, or as `compare`."""
    if group and specs:
        raise LabError("give run ids or --group, not both")
    if group:
        arms, reference = group_arms(store, group, members)
        return compare(store, arms, name or group, reference)
    return compare(store, list(specs), name)


def compare(store: Store, specs: list[str], name: str | None = None, reference: str | None = None) -> Path:
    """Write logs/ablations/<name>.md comparing runs (each `RUN` or `RUN:ATTEMPT`, the first the reference, which
    `reference` says why when given): differing config keys, best and final metrics, overlaid curves, each arm's
    health findings and the winner. Every figure on the page comes from the attempt named beside it. LabError
    for fewer than two arms, one named twice, or a run or attempt that does not exist."""
    if len(specs) < 2:
        raise LabError("compare needs at least two runs")
    arms = [parse_attempt(store, spec) for spec in specs]
    if len(set(arms)) < len(arms):
        raise LabError("compare needs different runs or attempts; the same one is named twice")
    labels = [f"{rid}:{n}" if n else rid for rid, n in arms]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "_vs_".join(specs)).strip("._") or "ablation"
    runs = {rid: store.runs.load(rid) for rid, _ in arms}
    differing = differing_keys(store, arms)
    summaries = [results.attempt_summary(store, rid, n) if n else {"result": None, "rows": []} for rid, n in arms]
    found = [verdicts.judged_result(store, rid, n) if ":" not in spec and n else summary["result"]
             for spec, (rid, n), summary in zip(specs, arms, summaries)]
    metric_tables, not_compared, identical = metric_comparison(summaries, found, labels, name)
    folder = store.logs_dir / "ablations"
    if comparisons(store).get(name) != list(specs):
        append_jsonl(comparisons_index(store), {"name": name, "arms": list(specs)})
    plot_arms(store, folder, metric_tables, labels, arms)
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
        reference=reference or f"reference: {labels[0]}, the first run named",
        same_config=same_config_arms(store, arms, labels),
        findings=[(label, run_findings(store, rid, n)) for label, (rid, n) in zip(labels, arms)],
        run_ids=labels,
        differing=differing,
        metric_tables=metric_tables,
        not_compared=not_compared,
        costs=[{"run": label, **arm_costs(store, rid, n)} for label, (rid, n) in zip(labels, arms)],
        identical=identical,
    )


def differing_keys(store: Store, arms: list[tuple[str, int | None]]) -> list[dict]:
    """The config keys whose values differ between the arms (each arm's attempt config, else its run's), with
    each arm's value as text."""
    configs = [read_json(store.attempt_dir(rid, n) / "config.json", None) if n else None for rid, n in arms]
    flat = [config_tools.flatten(config if config is not None else store.runs.config(rid))
            for (rid, _), config in zip(arms, configs)]
    keys = sorted({k for values in flat for k in values})
    return [
        {"key": key, "values": [config_tools.format_value(values.get(key, config_tools.MISSING)) for values in flat]}
        for key in keys
        if len({repr(values.get(key, config_tools.MISSING)) for values in flat}) > 1
    ]


RESOURCES = ("train/loss",)  # shown beside the judged metrics; what an arm costs is in `costs` (overall rates)


def metric_comparison(summaries: list[dict], found: list[dict | None], labels: list[str],
                      name: str) -> tuple[list[dict], list[str], list[str]]:
    """(one table per validation metric (and RESOURCES) with each arm's row against the first arm's, the metrics
    not compared and why, those every arm logged alike) from the arms' `results.attempt_summary`; on the metric an
    arm is judged on, its mark is the verdict's (`found`: the arms' judged results, trend and seeds included)."""
    tables = [{row["metric"]: row for row in summary["rows"]} for summary in summaries]
    names = sorted({metric for table in tables for metric in table})
    judged = [m for m in names if m.startswith("val/") and not m.endswith(results.SE_SUFFIX)
              and not results.size_metric(m)]
    metric_tables, not_compared, identical = [], [], []
    for metric in judged + [m for m in RESOURCES if m in names]:
        if reason := uninformative([table.get(metric) for table in tables]):
            not_compared.append(f"{metric} ({reason})")
            if len(tables) > 1 and all(table.get(metric) for table in tables):
                identical.append(f"{metric} {format_number(tables[0][metric]['best'])}")
            continue
        base = arm_figure(found[0], tables[0], metric)
        rows = []
        for index, label in enumerate(labels):
            row = tables[index].get(metric)
            figure = arm_figure(found[index], tables[index], metric)
            comparable = index and figure and base and row["mode"]
            outcome = verdicts.judge(base, figure, labels[0]) if comparable else None
            rows.append({"run": label, "row": row, "delta": figure["best"] - base["best"] if comparable else None,
                         "mark": outcome.mark if outcome else "", "why": outcome.why if outcome else None})
        metric_tables.append({"metric": metric, "rows": rows, "plot": f"{name}/{metric_file(metric)}"})
    return metric_tables, not_compared, identical


def plot_arms(store: Store, folder: Path, metric_tables: list[dict], labels: list[str],
              arms: list[tuple[str, int | None]]) -> None:
    """Each compared metric's curves of every arm, overlaid in one SVG (the table's `plot`, under `folder`)."""
    for table in metric_tables:
        series = {}
        for label, (rid, n) in zip(labels, arms):
            points = metrics.series(results.stream(store, rid, n), table["metric"], plots.MAX_POINTS) \
                if n else None
            if points:
                series[label] = points
        plots.plot_panels(folder / table["plot"], [(table["metric"], series)])


def arm_costs(store: Store, run_id: str, number: int | None) -> dict:
    """What an arm costs: its overall samples/s and process peak memory (MiB, summary.json) and its profiled
    peak tensor memory (MiB, `lab profile`); None where unknown."""
    summary = read_json(store.attempt_dir(run_id, number) / "summary.json", {}) if number else {}
    profile = latest_profile(store, run_id)
    return {"samples_per_s": summary.get("samples_per_s"), "peak_mem_mb": summary.get("peak_mem_mb"),
            "profile": profile}


def kept_figure(table: dict, metric: str) -> dict | None:
    """A metric's value at an arm's kept step as `verdicts.judge` reads it (its `_se` there as noise)."""
    row = table.get(metric)
    if not row or row["kept"] is None:
        return None
    se = table.get(metric + results.SE_SUFFIX)
    return {"metric": metric, "mode": row["mode"], "best": row["kept"], "best_step": row["kept_step"],
            "se": se["kept"] if se and se["kept_step"] == row["kept_step"] else None, "last_step": row["kept_step"]}


def arm_figure(result: dict | None, table: dict, metric: str) -> dict | None:
    """An arm's figure on `metric` as `verdicts.judge` reads it: its judged result (`result`, with its trend, scatter
    and seeds) when it is judged on `metric`, else the value at its kept step (`kept_figure`)."""
    return result if result and result["metric"] == metric else kept_figure(table, metric)


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


def final_figure(result: dict) -> dict:
    """A result read at the end of its run instead of at its best step; its noise is the one at the best step (the
    same evaluation's standard error, else the scatter of the last evaluations)."""
    return {**result, "best": result["final"], "best_step": result["last_step"], "seeds": None, "slope": None}


def winner_line(labels: list[str], found: list[dict | None]) -> str:
    """Which arm won on the reference arm's judged metric (`verdicts.judge`): a lead outside the noise (the seeds'
    spread, a logged standard error, else the scatter of the arms' last evaluations) over the reference and over
    every other arm at the best step, that does not turn into a loss at the end of the run; arms whose lead over
    one another is inside the noise are named as tied; no winner when every arm logged the same value."""
    reference = found[0]
    if reference is None:
        return "No winner: the reference logged no value of the metric it is judged on."
    scored = [(label, result) for label, result in zip(labels, found)
              if result and result["metric"] == reference["metric"]]
    if len(scored) == len(found) > 1 and len({(result["best"], result["final"]) for _, result in scored}) == 1:
        return (f"No winner: every arm logged the same {reference['metric']} ({format_number(reference['best'])}); "
                "the arms are identical (is the setting they vary wired into the script?).")
    ranked = sorted(scored, key=lambda item: item[1]["best"], reverse=reference["mode"] == "max")  # stable: first wins
    label, best = ranked[0]
    if label == labels[0]:
        return (f"**{label}** (the reference) stays best on {reference['metric']} "
                f"({format_number(reference['best'])}, {results.size_text(reference)}); no arm beat it.")
    at_best = verdicts.judge(reference, best, labels[0])
    at_end = verdicts.judge(final_figure(reference), final_figure(best), labels[0])
    end = f"at the end of the run: {at_end.figures}" + (f", {at_end.why}" if at_end.why else "")
    if at_best.status != "improved":
        why = at_best.why or "the two are the same"
        return f"No clear winner on {reference['metric']}: **{label}** reads {at_best.figures}, but {why}; {end}."
    if at_end.status == "worse":
        return (f"No clear winner on {reference['metric']}: **{label}** leads at its best step ({at_best.figures}) "
                f"but not {end}.")
    tied = [(other, result) for other, result in ranked[1:] if other != labels[0]
            and verdicts.judge(result, best, other).status != "improved"]
    if tied:
        return tie_line(labels[0], reference, [(label, best), *tied])
    holds = "and holds" if at_end.status == "improved" else "though inside the noise"
    return (f"**{label}** wins on {reference['metric']}: {at_best.figures}; {results.size_text(best)}; {holds} "
            f"{end}.")


def tie_line(reference_label: str, reference: dict, tied: list[tuple[str, dict]]) -> str:
    """'No clear winner on val/loss: **h_003:1**, **h_002:1** and **h_001:1** are tied ...' for arms (`tied`, the
    leader first) whose differences from the leader are inside the noise, with whether they all beat the reference."""
    (label, best), (other, runner_up) = tied[0], tied[1]
    names = [f"**{name}**" for name, _ in tied]
    between = verdicts.judge(runner_up, best, other)
    against = [verdicts.judge(reference, result, reference_label).status == "improved" for _, result in tied]
    beat = ("all of them are better than the reference" if all(against) else
            "not all of them are better than the reference")
    return (f"No clear winner on {reference['metric']}: {', '.join(names[:-1])} and {names[-1]} are tied "
            f"({label} reads {between.figures}, {between.why or 'the same'}); {beat} {reference_label} "
            f"({format_number(reference['best'])}); {results.size_text(best)}.")


def same_config_arms(store: Store, arms: list[tuple[str, int | None]], labels: list[str]) -> list[str]:
    """'nsd_002:1 runs the same config as the reference nsd_001:1' for each arm whose config equals the first
    arm's (as each attempt ran), so that an arm is never taken for a change it does not make."""
    configs = [config_tools.flatten(results.attempt_config(store, rid, n)) for rid, n in arms]
    return [f"{label} runs the same config as the reference {labels[0]}"
            for label, config in zip(labels[1:], configs[1:]) if config == configs[0]]


def group_arms(store: Store, group: str, members: list[str] | None = None) -> tuple[list[str], str]:
    """(a group's runs for a comparison, which is its reference and why): led by the run they all branch from
    when it is outside the group, else by the group's first run. `members`: the group's runs when known, else
    every readable run is read."""
    ids = members or group_runs(store, group)
    parents = {store.runs.load(rid).get("parent") for rid in ids}
    if len(parents) == 1 and (parent := parents.pop()) and parent not in ids and store.exists(parent):
        return [parent, *ids], f"reference: {parent}, the run the group branched from (added to the group's runs)"
    return ids, f"reference: {ids[0]}, the group's first run"


def group_runs(store: Store, group: str) -> list[str]:
    ids = [rid for rid in store.readable_run_ids() if store.runs.load(rid).get("group") == group]
    if not ids:
        raise LabError(f"no runs in group {group!r}")
    return ids
