"""The lab as a table: `lab.api.runs` (a pandas DataFrame, one row per run or per attempt), `lab.api.history`
(metric rows), and what `lab runs --where/--sort/--columns/--format` prints and `lab export` writes.

A run's row speaks for its headline attempt, as its pages do; a running attempt counts with its latest row.
Columns, stable (README, "Ask the lab"):

    RECORD_COLUMNS         who and what: id, status, title, hypothesis, group, tags, ... (dtypes below)
    config.<key>           the config the row's attempt ran with (the run's resolved config, defaults included,
                           before any attempt), one column per leaf; a list or mapping as its JSON text
    <metric>.final         the metric's last finite value                                   float64
    <metric>.best          its best value (NaN for a metric with no better direction)       float64
    <metric>.best_step     the step of that best value                                      Int64
    verdict                what the run's pages conclude: supported, not supported, improved, worse, ...
"""

from __future__ import annotations

import difflib
import json
import keyword
import re
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from lab.errors import LabError, RecordError, warn
from lab.pages import results, verdicts
from lab.pages.context import display_title
from lab.pages.versions import run_version
from lab.records import config as config_tools
from lab.records import metrics as metric_tools
from lab.records.store import Store
from lab.records.store.attempts import run_status_of

TEXT, NUMBER, COUNT, TIME = "str", "float64", "Int64", "datetime64[s, UTC]"  # Int64: pandas' integers with NA
RECORD_COLUMNS = {
    "id": TEXT, "attempt": COUNT, "attempts": COUNT, "status": TEXT, "title": TEXT, "hypothesis": TEXT,
    "group": TEXT, "tags": TEXT, "family": TEXT, "preset": TEXT, "baseline": TEXT, "parent": TEXT,
    "created": TIME, "started": TIME, "ended": TIME, "duration_s": NUMBER, "exit_code": COUNT, "commit": TEXT,
    "wandb": TEXT, "note": TEXT, "slug": TEXT,
}
"""The columns every row has: `attempt` is the Test number of the row's attempt (NA before any), `attempts`
the run's count, `tags` comma-separated, `duration_s` seconds, `commit` the launch commit's sha."""

LISTED = ["id", "status", "family", "group", "attempts", "created", "tags", "title"]  # `lab runs` without --columns
WORDS = set(keyword.kwlist) | {"and", "or", "not", "in", "True", "False", "None", "nan", "inf", "str", "contains",
                               "startswith", "endswith", "isna", "notna", "abs"}


def frame(store: Store, *, attempts: bool = False, config: bool = True, measured: bool = True):
    """The runs table: one row per run (its headline attempt), or per attempt with `attempts`. `config` adds the
    config.<key> columns, `measured` the metric columns and `verdict` (both read every attempt's metrics: leave
    them out for a quick listing). Runs whose records cannot be read are rows with status `unreadable`."""
    import pandas as pd

    rows, seen = [], {}
    for run_id in store.run_ids():
        rows += kept_rows(store, run_id, attempts, config, measured, seen)
    table = pd.DataFrame(rows)
    for column in _whole_configs(rows):
        table[column] = pd.array([row.get(column) for row in rows], dtype=COUNT)
    for column, dtype in RECORD_COLUMNS.items():
        table[column] = _typed(table[column] if column in table else pd.Series([None] * len(table)), dtype)
    extra = sorted(column for column in table.columns if column not in RECORD_COLUMNS)
    configs = [column for column in extra if column.startswith("config.")]
    measures = [column for column in extra if not column.startswith("config.") and column != "verdict"]
    ordered = [*RECORD_COLUMNS, *(["verdict"] if measured else []), *configs, *measures]
    if measured and "verdict" not in table:
        table["verdict"] = None
    for column in measures:
        table[column] = _typed(table[column], COUNT if column.endswith(".best_step") else NUMBER)
    return table[ordered]


def _whole_configs(rows: list[dict]) -> list[str]:
    """The config.<key> columns whose every given value is an integer (a bool aside): kept Int64, so a run
    without the key leaves a gap instead of turning the others into floats."""
    whole: dict[str, bool] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("config.") and value is not None:
                whole[key] = whole.get(key, True) and isinstance(value, int) and not isinstance(value, bool)
    return [key for key, every in whole.items() if every]


def _typed(column, dtype: str):
    import pandas as pd

    if dtype == TIME:
        return pd.to_datetime(column, utc=True, errors="coerce").astype(TIME)
    if dtype in (NUMBER, COUNT):
        return pd.to_numeric(column, errors="coerce").astype(dtype)
    return column.astype(object).where(column.notna(), None).astype(TEXT)


def kept_rows(store: Store, run_id: str, attempts: bool, config: bool, measured: bool,
              seen: dict | None = None) -> list[dict]:
    """`_run_rows`, kept in the lab's derived values while no file they come from changed (the run's, its
    parent's, and those of the runs its expectation names: `run_version`); a run with a running attempt is read
    afresh each time (its process may have ended). An unreadable run is one row with status `unreadable`, named
    once in a warning."""
    name = f"{run_id}:{'attempts' if attempts else 'run'}:{int(config)}{int(measured)}"
    try:
        version = run_version(store, run_id, seen)
        rows = store.derived.get("table", name, version)
        if rows is None:
            rows = _run_rows(store, run_id, attempts, config, measured)
            if all(row["status"] != "running" for row in rows):
                store.derived.put("table", name, version, rows)
        return rows
    except RecordError as error:
        if run_id not in store.unreadable:
            warn(f"run {run_id} is unreadable: {error}")
        store.unreadable[run_id] = str(error)
        return [{"id": run_id, "status": "unreadable", "attempts": 0}]




def _run_rows(store: Store, run_id: str, attempts: bool, config: bool, measured: bool) -> list[dict]:
    """The rows of one run: its headline attempt's, or one per attempt."""
    run = store.runs.load(run_id)
    records = store.attempts.of(run_id)
    status = run_status_of(records)
    headline = results.headline_attempt(store, run_id) if records else None
    picked = next((a for a in records if a["number"] == headline), records[-1] if records else None)
    chosen = records if attempts else [picked]
    rows = []
    for attempt in chosen:
        number = attempt["number"] if attempt else None
        row = _record(run, attempt, attempt["status"] if attempts else status, len(records))
        if config:
            row |= {f"config.{key}": _cell(value) for key, value in
                    config_tools.flatten(results.attempt_config(store, run_id, number)).items()}
        if measured:
            row |= _measures(store, run, number)
        rows.append(row)
    return rows


def _record(run: dict, attempt: dict | None, status: str, count: int) -> dict:
    attempt = attempt or {}
    seconds = attempt.get("seconds")
    return {
        "id": run["id"], "attempt": attempt.get("number"), "attempts": count, "status": status,
        "title": display_title(run, 10_000), "hypothesis": run.get("hypothesis"), "group": run.get("group"),
        "tags": ",".join(run.get("tags") or []) or None, "family": run.get("family"), "preset": run.get("preset"),
        "baseline": run.get("baseline"), "parent": run.get("parent"), "created": run.get("created"),
        "started": attempt.get("started"), "ended": attempt.get("ended"),
        "duration_s": seconds if isinstance(seconds, (int, float)) else None, "exit_code": attempt.get("exit_code"),
        "commit": (attempt.get("git") or {}).get("sha"), "wandb": (attempt.get("wandb") or {}).get("url"),
        "note": attempt.get("note"), "slug": run.get("slug"),
    }


def _cell(value: Any) -> Any:
    """A config leaf as a table cell: a list or mapping as its JSON text, anything else as it is."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _measures(store: Store, run: dict, number: int | None) -> dict:
    """<metric>.final/.best/.best_step of attempt `number`'s stream, and the run's verdict on its pages."""
    if number is None:
        return {}
    summary = results.attempt_summary(store, run["id"], number)
    row = {}
    for metric in summary["rows"]:
        row |= {f"{metric['metric']}.final": metric["final"], f"{metric['metric']}.best": metric["best"],
                f"{metric['metric']}.best_step": metric["best_step"]}
    verdict = verdicts.run_verdict(store, run, number)
    row["verdict"] = verdict.word if verdict else None
    return row


def history(store: Store, run_ids: list[str] | None = None, metrics: list[str] | None = None,
            wide: bool = False):
    """Metric rows of the runs asked (default: every readable run), every attempt, running ones included: long,
    columns run, attempt, step, metric, value (float64); or `wide`, one column per metric. `metrics` keeps only
    those names. LabError for a run that does not exist."""
    import pandas as pd

    wanted = run_ids if run_ids is not None else sorted(store.readable_run_ids())
    parts = []
    for run_id in wanted:
        if not store.exists(run_id):
            raise LabError(f"no run {run_id}")
        for number in store.attempts.numbers(run_id):
            rows = metric_tools.load(store.attempt_dir(run_id, number))
            if "step" not in rows or rows.empty:
                continue
            names = [c for c in rows.columns if c not in results.NOT_METRICS and (metrics is None or c in metrics)]
            long = rows[["step", *names]].melt(id_vars="step", var_name="metric", value_name="value").dropna()
            parts.append(long.assign(run=run_id, attempt=number))
    columns = ["run", "attempt", "step", "metric", "value"]
    table = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    table = table.astype({"run": TEXT, "attempt": "int64", "step": "int64", "metric": TEXT, "value": NUMBER})
    if not wide:
        return table
    return table.pivot_table(index=["run", "attempt", "step"], columns="metric", values="value",
                             aggfunc="last").reset_index().rename_axis(columns=None)


def select(table, *, statuses: list[str] = (), family: str | None = None, group: str | None = None,
           since: date | None = None, until: date | None = None, zone: tzinfo | None = None, tags: list[str] = (),
           found: set[str] | None = None, where: str | None = None, sort: str | None = None,
           columns: str | None = None, limit: int | None = None):
    """The rows of `table` that match every filter, sorted and cut to the columns asked.

    `statuses` any of these; `since`/`until` created on or after / on or before those days, read in `zone` (the
    lab's, as the daily pages: `Store.zone`; default UTC); `tags` every one of
    them; `found` the run ids a text search found; `where` a pandas query expression over the column names as
    they are written (`val/loss.best < 0.5 and config.optim.lr >= 1e-3`: names holding / or . need no
    backticks); `sort` comma-separated columns, each `-name` for descending, missing values last; `columns`
    comma-separated names or patterns (`config.optim.*`; default every column); `limit` at most that many rows
    (1 or more). LabError (one line, with the
    closest column names) for an unknown column or an expression pandas cannot read."""
    if limit is not None and limit < 1:
        raise LabError(f"--limit {limit}: give at least 1 row")
    keep = table["id"].notna()
    if statuses:
        keep &= table["status"].isin(statuses)
    for column, value in (("family", family), ("group", group)):
        if value is not None:
            keep &= table[column] == value
    created = (table["created"].dt.tz_convert(zone) if zone is not None else table["created"]).dt.date
    if since is not None:
        keep &= created >= since
    if until is not None:
        keep &= created <= until
    for tag in tags:
        keep &= table["tags"].fillna("").str.split(",").apply(lambda names, tag=tag: tag in names)
    if found is not None:
        keep &= table["id"].isin(found)
    table = table[keep.fillna(False).astype(bool)]
    if where:
        table = query(table, where)
    if sort:
        names, ascending = sort_keys(table, sort)
        table = table.sort_values(names, ascending=ascending, na_position="last", kind="stable")
    if limit is not None:
        table = table.head(limit)
    return table[chosen_columns(table, columns)]


def parts_needed(*texts: str | None) -> tuple[bool, bool]:
    """(config, measured): whether the `--where`, `--sort` and `--columns` texts name config.<key> columns, and
    metric columns or the verdict (a pattern may name either), so that a listing reads only what it shows."""
    config = measured = False
    for text in filter(None, texts):
        for literal, word in NAME.findall(text):
            word = literal[1:-1] if literal.startswith("`") else word  # a backticked name is a column too
            if not word or word.split(".")[0] in WORDS or word.lstrip("-") in RECORD_COLUMNS:
                continue
            config = True  # one file a row: read for any other name, so that a misspelt one finds its match
            measured |= not word.startswith("config.")
        if any(character in text for character in "*?["):
            config = measured = True
    return config, measured


def sort_keys(table, sort: str) -> tuple[list[str], list[bool]]:
    """(columns, ascending) of a `--sort` text: comma-separated columns, each `-name` or `name desc` for
    descending (`name asc` ascending, the default)."""
    names, ascending = [], []
    for key in (part.strip() for part in sort.split(",") if part.strip()):
        name, _, order = key.rpartition(" ") if key.endswith((" desc", " asc")) else (key, "", "")
        descending = order == "desc" or name.startswith("-") and name not in table.columns
        names.append(known(table, name.strip().removeprefix("-") if descending and not order else name.strip(),
                           "--sort"))
        ascending.append(not descending)
    return names, ascending


def known(table, name: str, option: str) -> str:
    """`name` when it is a column of `table`, else LabError naming the closest columns."""
    if name in table.columns:
        return name
    close = difflib.get_close_matches(name, [str(column) for column in table.columns], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; lab runs --columns '*' lists every column"
    raise LabError(f"{option}: no column {name!r}{hint}")


def chosen_columns(table, columns: str | None) -> list[str]:
    """The columns `--columns` names, in its order (patterns as fnmatch; default: every column)."""
    import fnmatch

    if not columns:
        return list(table.columns)
    chosen: list[str] = []
    for name in (part.strip() for part in columns.split(",") if part.strip()):
        matched = fnmatch.filter(map(str, table.columns), name) if any(c in name for c in "*?[") else \
            [known(table, name, "--columns")]
        if not matched:
            raise LabError(f"--columns: no column matches {name!r}")
        chosen += [column for column in matched if column not in chosen]
    return chosen


def query(table, expression: str):
    """`table.query(expression)` with the column names written as they are (see `select`)."""
    columns = {str(column) for column in table.columns}

    def name(match: re.Match) -> str:
        literal, word = match.groups()
        if literal is not None:
            if literal.startswith("`"):
                known(table, literal[1:-1], "--where")
            return literal
        parts = word.split(".")
        for cut in range(len(parts), 0, -1):  # the longest column the word starts with: `title.str.contains`
            head = ".".join(parts[:cut])
            if head in columns:
                return (head if head.isidentifier() else f"`{head}`") + word[len(head):]
        if parts[0] in WORDS:
            return word
        known(table, word, "--where")

    import pandas as pd

    mapped = NAME.sub(name, expression)
    try:
        kept = table.eval(mapped, engine="python")
    except Exception as error:  # pandas raises SyntaxError, NameError, TypeError, ValueError, KeyError ...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise LabError(f"--where {expression!r} cannot be read: {reason}") from None
    if not isinstance(kept, pd.Series) or not pd.api.types.is_bool_dtype(kept.dtype):
        raise LabError(f"--where {expression!r} is not a condition on rows (for example val/loss.best < 0.5)")
    return table[kept.fillna(False).astype(bool)]  # NA (a missing value compared) is not a match


NAME = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(?<![\w.])([A-Za-z_][\w./]*)(?![\w./])"""
                  r"""(?!\s*=(?!=))""")  # a quoted text, or a name that is no call's keyword (`case=False`)


def text(table, output: str) -> str:
    """The rows as `output`: table (aligned columns), csv, json (a list of objects), jsonl or md. In json and
    jsonl `tags` is a list, as in `lab runs --json` and run.json, times are ISO 8601 UTC and a missing value null."""
    if output == "csv":
        return table.to_csv(index=False).rstrip("\n")
    records = [{str(column): _json_value(value) for column, value in row.items()} for row in table.to_dict("records")]
    for record in records if "tags" in table.columns else ():
        record["tags"] = record["tags"].split(",") if record["tags"] else []
    if output == "json":
        return json.dumps(records, indent=2)
    if output == "jsonl":
        return "\n".join(json.dumps(record) for record in records)
    cells = [[" ".join(shown(table[column].iloc[index]).split("\n")) for column in table.columns]
             for index in range(len(table))]  # a newline a user typed would break the row
    if output == "md":
        escaped = [[cell.replace("|", "\\|") for cell in row] for row in cells]
        header = [str(column).replace("|", "\\|") for column in table.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in escaped])
    if not cells:
        return "no runs"
    widths = [max(len(str(column)), *(len(row[i]) for row in cells)) for i, column in enumerate(table.columns)]
    lines = ["  ".join(str(column).upper().ljust(width) for column, width in zip(table.columns, widths)).rstrip()]
    return "\n".join(lines + ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                              for row in cells])


def _json_value(value: Any) -> Any:
    """A cell as JSON takes it: every digit of a number (to_json keeps 15 at most), a time as ISO 8601 UTC to
    the second, None for a missing value."""
    import pandas as pd

    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.item() if hasattr(value, "item") else value  # a numpy scalar as Python's


def shown(value: Any) -> str:
    """A cell as the text table shows it: '-' for a missing value, times to the minute, numbers as the pages."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else metric_tools.format_number(value)
    return str(value)


def search(store: Store, words: str) -> set[str]:
    """The runs whose hypothesis, title, notes or attempts' notes (`lab launch --note`) hold `words`
    (case-insensitive)."""
    wanted = words.casefold()
    found = set()
    for run_id in store.readable_run_ids():
        run = store.runs.load(run_id)
        texts = [run.get("hypothesis"), run.get("title_text"), run.get("title"),
                 *(event.get("text") for event in store.events.of(run_id) if event.get("kind") == "note"),
                 *_attempt_notes(store, run_id)]
        if any(isinstance(text, str) and wanted in text.casefold() for text in texts):
            found.add(run_id)
    return found


def _attempt_notes(store: Store, run_id: str) -> list:
    """The notes of the run's attempts (`lab launch --note`); none where an attempt record cannot be read."""
    try:
        return [attempt.get("note") for attempt in store.attempts.of(run_id)]
    except RecordError:
        return []


EXPORTS = ("parquet", "csv")


def export(store: Store, out: Path, output: str = "parquet") -> list[Path]:
    """Write runs.<ext> (one row per run, every column), attempts.<ext> (one per attempt) and metrics.<ext>
    (every metric row, long: run, attempt, step, metric, value) into `out`: Parquet (zstd) or CSV, readable by
    pandas, DuckDB or polars without the lab. Returns the paths written."""
    from lab.records.files import atomic_write

    if output not in EXPORTS:
        raise LabError(f"--format {output}: export writes {' or '.join(EXPORTS)}")
    tables = {"runs": frame(store), "attempts": frame(store, attempts=True), "metrics": history(store)}
    paths = []
    for name, table in tables.items():
        path = Path(out) / f"{name}.{output}"
        if output == "csv":
            data = table.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").encode()
        else:
            data = _parquet(table)
        atomic_write(path, lambda stream, data=data: stream.write(data))
        paths.append(path)
    return paths


def _parquet(table) -> bytes:
    """`table` as Parquet bytes (zstd); a column of mixed kinds (a config key that is a number in one run and
    text in another) is written as text."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = table.copy()
    for column in table.columns:
        try:
            pa.array(table[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            table[column] = table[column].map(lambda v: None if v is None or v != v else str(v)).astype("str")
    buffer = io.BytesIO()  # pandas' metadata kept: read back, Int64 and the UTC times keep their dtypes
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()
