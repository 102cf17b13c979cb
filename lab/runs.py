"""Run-level operations behind the CLI: creating runs with resolved configs, listing, showing, diffing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from lab.errors import ConfigError, LabError
from lab.families import registry
from lab.pages import expectations
from lab.pages.results import attempt_config, headline_attempt
from lab.records import config as config_tools
from lab.records.store import Store, check_run_id


def resolve_config(
    store: Store, *, family: str | None, preset: str | None, parent: dict | None,
    config_file: str | None, overrides: list[str], baseline_config: dict | None = None,
) -> dict:
    """The run's config: the parent's, else the family preset, else `baseline_config`, else {}; a JSON file merged
    in; then overrides.

    A family config goes through the family's one config path (`FamilySpec.resolve`): checked against its
    dataclass, the engine's limits and the family's own checks, with defaults filled in.
    """
    base = store.run_config(parent["id"]) if parent is not None else None
    if parent is not None and not family and not base:  # a script's run: start from what its script reported
        base = attempt_config(store, parent["id"], headline_attempt(store, parent["id"]))
    file_values = config_tools.read_config_file(config_file) if config_file else None
    if family:
        return registry.get(family).resolve(preset=preset, base=base, file_values=file_values, overrides=overrides)
    values = config_tools.merge(base or baseline_config or {}, file_values or {})
    return config_tools.apply_overrides(values, overrides)


def parameter_count(family: str, values: dict) -> int:
    """Parameters of the family's model for a config, from the family's `parameter_count` hook (which builds it
    without weights). ConfigError when the family cannot size its model or the model cannot be built."""
    spec = registry.get(family)
    if spec.parameter_count is None:
        raise ConfigError(f"the {family} family does not say how to count its parameters")
    return spec.parameter_count(spec, config_tools.from_dict(spec.config.Config, values))


BUILD_SECONDS = 60  # a model that takes longer than this to build on the meta device has an absurd size


def parameter_counts(family: str, configs: list[dict], seconds: float | None = None) -> list[int]:
    """`parameter_count` of each config, in a child process killed after `seconds` (default BUILD_SECONDS), so
    that an absurd size (100,000 layers) is refused in bounded time instead of hanging `lab new-run`."""
    seconds = BUILD_SECONDS if seconds is None else seconds
    request = json.dumps({"family": family, "configs": configs})
    code = "from lab.runs import count_from_stdin; count_from_stdin()"
    try:
        result = subprocess.run([sys.executable, "-c", code], input=request, capture_output=True, text=True,
                                timeout=seconds)
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"the {family} model took over {seconds:g} s to build without weights; check its sizes (layers, "
            "widths) in the config") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise ConfigError(lines[-1].removeprefix("lab: error: "))
    return json.loads(result.stdout)


def count_from_stdin() -> None:
    """The child of `parameter_counts`: {"family", "configs"} on stdin, the counts as JSON on stdout."""
    request = json.load(sys.stdin)
    try:
        counts = [parameter_count(request["family"], values) for values in request["configs"]]
    except ConfigError as error:
        print(f"lab: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(counts))


def structural_check(family: str, values: dict, reference: str, reference_values: dict) -> tuple[list[str], list]:
    """Model size against where a new run starts (`reference`) and structural smells of its config.

    Returns (the lines `lab new-run` prints, the health findings to record).
    """
    from lab.health import rules as health

    count, reference_count = parameter_counts(family, [values, reference_values])
    findings = health.structural_findings(values, count, reference_count)
    lines = [f"parameters: {count:,} ({reference}: {reference_count:,})"]
    lines += [f"health [{finding.rule}]: {finding.message}. {finding.suggestion}" for finding in findings]
    return lines, findings


def new_run(
    store: Store, run_id: str, *, next_free: bool = False, hypothesis: str, family: str | None = None,
    preset: str | None = None, title: str | None = None, group: str | None = None, tags: list[str] = (),
    parent: str | None = None, config_file: str | None = None, overrides: list[str] = (),
    init_from: str | None = None, baseline: str | None = None, expect: str | None = None,
) -> dict:
    """Create a run with its resolved config and baseline snapshot; returns run.json.

    `baseline` names a registered baseline (`lab baseline add`) the run changes; a run without a family or a
    parent then starts from its config.

    `init_from` is where the run's weights start: 'best' or 'last' (the parent's checkpoint of that kind), or
    a weights file 'PATH[:KEY]'; it becomes `train.init_from`. `expect` is a checkable expectation
    (`lab.pages.expectations`) that the run's verdict evaluates. Everything that can fail (config, overrides,
    weights path, building the model) is checked before anything is written.
    """
    prefix = run_id if next_free else check_run_id(run_id).rsplit("_", 1)[0]
    if not next_free and store.exists(run_id):
        raise LabError(f"run {run_id} already exists")
    parent_record = store.load_run(parent) if parent else None
    if expect is not None:
        expectations.parse(expect, store.exists)
    if parent_record is not None:
        if family and family != parent_record.get("family"):
            raise LabError(f"--family {family} differs from {parent}'s family {parent_record.get('family')}")
        if preset:
            raise LabError(f"--preset and --from both choose the starting config: {parent} already sets it")
        family, preset = parent_record.get("family"), parent_record.get("preset")
    family = family or store.settings.get("prefixes", {}).get(prefix)
    if preset and not family:
        raise LabError("--preset needs a family (--family NAME)")
    if family:
        preset = preset or "baseline"
        registry.get(family).check_installed()
    if init_from is not None:
        if not family:
            raise LabError("--init-from needs a family with a built-in trainer (--family NAME)")
        overrides = [*overrides, f"train.init_from={initial_weights(store, init_from, parent)}"]
    snapshot = None
    if baseline is not None:
        snapshot = store.baseline(baseline)
        if snapshot is None:
            raise LabError(f"no baseline {baseline!r}: register it with lab baseline add {baseline} --config FILE")
    values = resolve_config(
        store, family=family, preset=preset, parent=parent_record, config_file=config_file, overrides=list(overrides),
        baseline_config=snapshot["config"] if snapshot and not family and not parent_record else None,
    )
    lines, findings = [], []
    if family:
        reference = ((parent, store.run_config(parent)) if parent
                     else (f"preset {preset}", registry.get(family).preset(preset)))
        lines, findings = structural_check(family, values, *reference)
    baseline = baseline or (parent_record.get("baseline") if parent_record else None)
    if family and not baseline:
        spec = registry.get(family)
        baseline = spec.provenance["baseline"]
        store.save_baseline(baseline, spec.provenance, spec.preset("baseline"))
    record = store.create_run(
        None if next_free else run_id,
        prefix=prefix,
        hypothesis=hypothesis,
        title_text=title,
        family=family,
        preset=preset,
        baseline=baseline,
        parent=parent,
        group=group,
        tags=list(tags),
        config_source=config_file,
        **({"expect": expect.strip()} if expect is not None else {}),
        config=values,
    )
    for finding in findings:
        store.add_event(record["id"], "health", **finding.to_dict())
    return {**record, "summary_lines": lines}


def initial_weights(store: Store, source: str, parent: str | None) -> str:
    """The absolute 'PATH[:KEY]' that `lab new-run --init-from SOURCE` means; LabError when it does not exist."""
    if source in ("best", "last"):
        if not parent:
            raise LabError(f"--init-from {source} takes the {source} checkpoint of the --from run: give --from RUN")
        return store.latest_checkpoint(parent, source)
    path, key = Path(source), ""
    if not path.exists() and ":" in source:
        name, _, key = source.rpartition(":")
        path, key = Path(name), f":{key}"
    if not path.is_file():
        raise LabError(f"--init-from {source}: no such weights file")
    return f"{path.resolve()}{key}"


def list_runs(
    store: Store, *, family: str | None = None, status: str | None = None, group: str | None = None,
    since: date | None = None,
) -> list[dict]:
    """One row per run matching the filters: id, status, family, group, attempts, created, title, slug.

    A run whose records cannot be read is listed with status `unreadable` and the reason (as `error`).
    """
    rows = []
    readable = store.readable_run_ids()
    for run_id in store.run_ids():
        if run_id not in readable:
            if status in (None, "unreadable") and not (family or group or since):
                rows.append({"id": run_id, "status": "unreadable", "family": None, "group": None, "attempts": None,
                             "created": "", "title": None, "slug": None, "hypothesis": None,
                             "error": store.unreadable[run_id]})
            continue
        run = store.load_run(run_id)
        row = {
            "id": run_id,
            "status": store.run_status(run_id),
            "family": run.get("family"),
            "group": run.get("group"),
            "attempts": len(store.attempt_numbers(run_id)),
            "created": run["created"],
            "title": run["title"],
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
    columns = ["id", "status", "family", "group", "attempts", "created", "title"]
    cells = [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
    for row in cells:
        row[5] = row[5][:16].replace("T", " ")
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def details(store: Store, run_id: str) -> dict:
    """Everything recorded about a run: run.json, config, attempts (with summaries), events."""
    from lab.records.files import read_json

    attempts = []
    for attempt in store.attempts(run_id):
        folder = store.attempt_dir(run_id, attempt["number"])
        attempts.append({**attempt, "summary": read_json(folder / "summary.json", {})})
    return {
        "run": store.load_run(run_id),
        "status": store.run_status(run_id),
        "config": store.run_config(run_id),
        "attempts": attempts,
        "events": store.events(run_id),
    }


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
    ]
    for attempt in info["attempts"]:
        link = (attempt.get("wandb") or {}).get("url", "")
        pending = "" if not link or attempt["wandb"].get("synced") else " (pending sync)"
        sha = ((attempt.get("git") or {}).get("sha") or "")[:7]
        lines.append(
            f"  test {attempt['number']}: {attempt['status']}"
            f"{'' if attempt.get('exit_code') is None else ' exit ' + str(attempt['exit_code'])}"
            f"  {sha}  {attempt.get('note') or ''}  {link}{pending}".rstrip()
        )
    for event in info["events"]:
        if event["kind"] == "note":
            where = f" (test {event['attempt']})" if event.get("attempt") else ""
            lines.append(f"  {event['field']}{where}: {event['text']}")
    return "\n".join(lines)


def diff_text(store: Store, first: str, second: str | None = None) -> str:
    """`lab diff`: a run against its baseline (or parent when it has none), or two runs, grouped by component."""
    run = store.load_run(first)
    if second is not None:
        store.load_run(second)
        name, before, after = f"{second} vs {first}", store.run_config(first), store.run_config(second)
    elif run.get("baseline") and store.baseline(run["baseline"]):
        name, before, after = (f"{first} vs {run['baseline']} (baseline)",
                               store.baseline(run["baseline"])["config"], store.run_config(first))
    elif run.get("parent"):
        name, before, after = (f"{first} vs {run['parent']} (parent)",
                               store.run_config(run["parent"]), store.run_config(first))
    else:
        raise LabError(f"run {first} has no baseline or parent: give a second run, lab diff {first} OTHER")
    changes = config_tools.diff(before, after)
    if not changes:
        return f"{name}: no differences"
    lines = [name]
    component = None
    for change in changes:
        if change.component != component:
            component = change.component
            lines.append(f"[{component}]")
        lines.append(f"  {change.describe()}")
    return "\n".join(lines)
