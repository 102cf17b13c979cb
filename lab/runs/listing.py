"""Reading runs back: `lab runs` (one row per run, filtered, as dicts or a table), `lab show` (everything
recorded about one run) and `lab diff` (a run's config against its reference, or two runs')."""

from __future__ import annotations

import json
from datetime import date

from lab.errors import LabError
from lab.pages import changes, results
from lab.pages.context import display_title, reference_config
from lab.records import config as config_tools
from lab.records.files import read_json
from lab.records import metrics as metric_tools
from lab.records.metrics import format_number
from lab.records.store import Store


TITLE_SHOWN = 50  # characters of a run's title in `lab runs`


def list_runs(
    store: Store, *, family: str | None = None, status: str | None = None, group: str | None = None,
    since: date | None = None,
) -> list[dict]:
    """One row per run matching the filters: id, status, family, group, attempts, created, tags, title (in words:
    `--title`, else the hypothesis, shortened), slug.

    A run whose records cannot be read is listed with status `unreadable` and the reason (as `error`).
    """
    rows = []
    readable = store.readable_run_ids()
    for run_id in store.run_ids():
        if run_id not in readable:
            if status in (None, "unreadable") and not (family or group or since):
                rows.append({"id": run_id, "status": "unreadable", "family": None, "group": None, "attempts": None,
                             "created": "", "tags": [], "title": None, "slug": None, "hypothesis": None,
                             "error": store.unreadable[run_id]})
            continue
        run = store.runs.load(run_id)
        row = {
            "id": run_id,
            "status": store.attempts.run_status(run_id),
            "family": run.get("family"),
            "group": run.get("group"),
            "attempts": len(store.attempts.numbers(run_id)),
            "created": run["created"],
            "tags": run.get("tags") or [],
            "title": display_title(run, TITLE_SHOWN),
            "slug": run["slug"],
            "hypothesis": run.get("hypothesis"),
        }
        if family and row["family"] != family or status and row["status"] != status:
            continue
        if group and row["group"] != group or since and date.fromisoformat(row["created"][:10]) < since:
            continue
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """A plain-text table of `list_runs` rows."""
    if not rows:
        return "no runs"
    columns = ["id", "status", "family", "group", "attempts", "created", "tags", "title"]
    cells = [[",".join(row[c]) or "-" if c == "tags" else str(row[c] if row[c] is not None else "-")
              for c in columns] for row in rows]
    for row in cells:
        row[5] = row[5][:16].replace("T", " ")
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def details(store: Store, run_id: str) -> dict:
    """Everything recorded about a run: run.json, config, attempts (with summaries; a running one with its
    `latest` metric values), events."""
    attempts = []
    for attempt in store.attempts.of(run_id):
        folder = store.attempt_dir(run_id, attempt["number"])
        attempts.append({**attempt, "summary": read_json(folder / "summary.json", {}),
                         **({"latest": latest_row(folder)} if attempt["status"] == "running" else {})})
    return {
        "run": store.runs.load(run_id),
        "status": store.attempts.run_status(run_id),
        "config": store.runs.config(run_id),
        "attempts": attempts,
        "events": store.events.of(run_id),
    }


def latest_row(folder) -> dict:
    """A running attempt's latest value of each metric: {"step": the last step logged, "metrics": {name: value}}
    ({} before its first row)."""
    rows = metric_tools.load(folder)
    if "step" not in rows or rows.empty:
        return {}
    values = {name: float(rows[name].dropna().iloc[-1]) for name in sorted(rows.columns)
              if name not in results.NOT_METRICS and rows[name].notna().any()}
    return {"step": int(rows["step"].max()), "metrics": values}


def describe(info: dict) -> str:
    """A readable account of `details`."""
    run = info["run"]
    lines = [
        f"{run['id']}  {run['slug']}  [{info['status']}]",
        f"hypothesis: {run.get('hypothesis')}",
        *([f"expect: {run['expect']}"] if run.get("expect") else []),
        f"family: {run.get('family') or '-'}  preset: {run.get('preset') or '-'}"
        f"  baseline: {run.get('baseline') or '-'}"
        f"  parent: {run.get('parent') or '-'}  group: {run.get('group') or '-'}",
        *([f"tags: {', '.join(run['tags'])}"] if run.get("tags") else []),
    ]
    for attempt in info["attempts"]:
        link = (attempt.get("wandb") or {}).get("url") or ""
        pending = "" if not link or attempt["wandb"].get("synced") else " (pending sync)"
        sha = ((attempt.get("git") or {}).get("sha") or "")[:7]
        lines.append(
            f"  test {attempt['number']}: {attempt['status']}"
            f"{'' if attempt.get('exit_code') is None else ' exit ' + str(attempt['exit_code'])}"
            f"  {sha}  {attempt.get('note') or ''}  {link}{pending}".rstrip()
        )
        for other in (attempt.get("wandb") or {}).get("others", []):
            where = f": {other['url']}" if other.get("url") else \
                f", id {other['run_id']} (no link: no W&B entity known)"
            lines.append(f"    also W&B run {other.get('name') or other['run_id']} (metrics as {other['prefix']}...)"
                         f"{where}")
        if attempt.get("set"):
            lines.append(f"    {set_text(attempt)}")
        if attempt.get("latest"):
            latest = attempt["latest"]
            values = "  ".join(f"{name}={format_number(value)}" for name, value in latest["metrics"].items())
            lines.append(f"    at step {latest['step']}: {values}")
    for event in info["events"]:
        if event["kind"] == "note":
            where = f" (test {event['attempt']})" if event.get("attempt") else ""
            lines.append(f"  {event['field']}{where}: {event['text']}")
    return "\n".join(lines)


def set_text(attempt: dict) -> str:
    """What became of the `--set` values handed to an attempt's script, e.g. 'set: hidden=16 (the script ran
    with it)'."""
    unconfirmed = attempt.get("set_unconfirmed") or {}
    values = " ".join(f"{key}={json.dumps(value)}" for key, value in attempt["set"].items())
    if unconfirmed:
        return f"set: {values} (not confirmed for {', '.join(unconfirmed)}: the script reported no such value)"
    return f"set: {values} (the script ran with {'it' if len(attempt['set']) == 1 else 'them'})"


def diff_text(store: Store, first: str, second: str | None = None) -> str:
    """`lab diff`: a run (or `RUN:TEST`, an attempt) against what its pages describe it against (its parent, else
    its baseline), or against a second run or attempt, grouped by component, then the held-out metrics' deltas at
    each one's kept step. A run stands for its headline attempt, as on the pages."""
    rid, number = changes.parse_attempt(store, first)
    after = results.attempt_config(store, rid, number)
    if second is not None:
        other = changes.parse_attempt(store, second)
        name, before, after = f"{first} -> {second}", after, results.attempt_config(store, *other)
        measured = ((rid, number), other)
    else:
        reference = reference_config(store, store.runs.load(rid))
        if reference is None:
            raise LabError(f"run {first} has no baseline or parent: give a second run, lab diff {first} OTHER")
        parent = store.runs.load(rid).get("parent")
        kind = "parent" if reference[0] == parent else "baseline"
        name, before = f"{first} vs {reference[0]} ({kind})", reference[1]
        measured = ((parent, results.headline_attempt(store, parent)), (rid, number)) if kind == "parent" else None
    lines = [name]
    component = None
    for change in config_tools.diff(before, after):
        if change.component != component:
            component = change.component
            lines.append(f"[{component}]")
        lines.append(f"  {change.describe()}")
    if len(lines) == 1:
        lines[0] += ": no differences"
    metric_deltas = changes.metric_lines(store, *measured) if measured else []
    return "\n".join(lines + (["[metrics at each one's kept step]", *metric_deltas] if metric_deltas else []))
