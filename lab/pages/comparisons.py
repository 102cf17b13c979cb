"""The ablation comparison, logs/ablations/<name>.md: runs (or attempts) side by side, their differing config
keys, each validation metric at each arm's kept checkpoint against the first arm's with its noise, overlaid
curves, what each arm costs, and the winner; and the index of comparison pages that `lab render` rebuilds."""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import LabError
from lab.pages import plots, results
from lab.pages.context import display_title, latest_profile, render
from lab.pages.results import STATUS_MARK, headline_attempt
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


def compare_page(store: Store, specs: list[str] = (), group: str | None = None, name: str | None = None) -> Path:
    """`lab compare`: the comparison of the runs `specs` (`RUN` or `RUN:ATTEMPT`), or of a `group`'s runs (led
    by the run they all branch from), named `name` (default: the group, or the arms joined by _vs_). LabError
    for both or neither, or as `compare`."""
    if group and specs:
        raise LabError("give run ids or --group, not both")
    return compare(store, group_arms(store, group) if group else list(specs), name or group)


def compare(store: Store, specs: list[str], name: str | None = None) -> Path:
    """Write logs/ablations/<name>.md comparing runs (each `RUN` or `RUN:ATTEMPT`): differing config keys, best
    and final metrics, overlaid curves. Every figure on the page comes from the attempt named beside it.
    LabError for fewer than two arms, one named twice, or a run or attempt that does not exist."""
    if len(specs) < 2:
        raise LabError("compare needs at least two runs")
    arms = [parse_arm(store, spec) for spec in specs]
    if len(set(arms)) < len(arms):
        raise LabError("compare needs different runs or attempts; the same one is named twice")
    labels = [f"{rid}:{n}" if n else rid for rid, n in arms]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "_vs_".join(specs)).strip("._") or "ablation"
    runs = {rid: store.runs.load(rid) for rid, _ in arms}
    differing = differing_keys(store, arms)
    summaries = [results.attempt_summary(store, rid, n) if n else {"result": None, "rows": []} for rid, n in arms]
    metric_tables, not_compared, identical = metric_comparison(summaries, labels, name)
    found = [summary["result"] for summary in summaries]
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


def metric_comparison(summaries: list[dict], labels: list[str], name: str) -> tuple[list[dict], list[str], list[str]]:
    """(one table per validation metric (and RESOURCES) with each arm's row against the first arm's, the metrics
    not compared and why, those every arm logged alike) from the arms' `results.attempt_summary`."""
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
