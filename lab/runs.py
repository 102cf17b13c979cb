"""Run-level operations behind the CLI: creating runs with resolved configs, listing, showing, diffing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from lab.launcher import remote, vcs
from lab.errors import ConfigError, LabError, say, warn
from lab.families import registry
from lab.pages import expectations
from lab.pages.context import reference_config
from lab.pages.reports import comparisons, comparisons_index
from lab.pages.results import attempt_config, headline_attempt
from lab.records import config as config_tools
from lab.records.files import append_jsonl, conflict_sides, read_json, read_jsonl_lines, write_json, write_text
from lab.records.store import Store
from lab.records.store.ids import same_run
from lab.records.store.names import check_run_id


def resolve_config(
    store: Store, *, family: str | None, preset: str | None, parent: dict | None,
    config_file: str | None, overrides: list[str], baseline_config: dict | None = None,
) -> dict:
    """The run's config: the parent's, else the family preset, else `baseline_config`, else {}; a JSON file merged
    in; then overrides.

    A family config goes through the family's one config path (`FamilySpec.resolve`): checked against its
    dataclass, the engine's limits and the family's own checks, with defaults filled in.
    """
    base = store.runs.config(parent["id"]) if parent is not None else None
    if parent is not None and not family and not base:  # a script's run: start from what its script reported
        base = ran_config(store, parent["id"])
    file_values = config_tools.read_config_file(config_file) if config_file else None
    if family:
        return registry.get(family).resolve(preset=preset, base=base, file_values=file_values, overrides=overrides)
    values = config_tools.merge(base or baseline_config or {}, file_values or {})
    return config_tools.apply_overrides(values, overrides)


def parameter_count(family: str, values: dict) -> int | dict[str, int]:
    """Parameters of the family's model for a config, from the family's `parameter_count` hook (which builds it
    without weights): an int, or {"model": n, "training head": m} for a model with a training-only head.
    ConfigError when the family cannot size its model or the model cannot be built."""
    spec = registry.get(family)
    if spec.parameter_count is None:
        raise ConfigError(f"the {family} family does not say how to count its parameters")
    return spec.parameter_count(spec, config_tools.from_dict(spec.config.Config, values))


BUILD_SECONDS = 60  # a model that takes longer than this to build on the meta device has an absurd size


def parameter_counts(family: str, configs: list[dict], seconds: float | None = None) -> list[int | dict[str, int]]:
    """`parameter_count` of each config, in a child process killed after `seconds` (default BUILD_SECONDS), so
    that an absurd size (100,000 layers) is refused in bounded time instead of hanging `lab new-run`."""
    return sizes(family, configs, seconds=seconds)[0]


def sizes(family: str, configs: list[dict], *, plan: dict | None = None,
          seconds: float | None = None) -> tuple[list[int | dict[str, int]], dict | None]:
    """The parameter count of each config and, with `plan` ({"processes": N, "device_gb": X or None}), the
    family's memory plan of the first (its `memory_plan` hook: bytes per device and the `lines` to print),
    computed in one child process killed after `seconds`. ConfigError when a model cannot be built."""
    seconds = BUILD_SECONDS if seconds is None else seconds
    answer = _in_child("count_from_stdin", {"family": family, "configs": configs, "plan": plan}, seconds,
                       f"the {family} model took over {seconds:g} s to build without weights; check its sizes "
                       "(layers, widths) in the config")
    return answer["counts"], answer["plan"]


def file_settings(family: str, source: str) -> dict[str, str]:
    """The settings without weights that the weights file `source` fixes for its model, as override values
    ({"model.cross_rope": "false"} for Dia-1.6B-0626), from the family's `weights_settings` hook run in a child
    process (it reads the file with torch); {} when the family has no such hook. ConfigError when the file
    cannot be read."""
    if registry.get(family).weights_settings is None:
        return {}
    return _in_child("settings_from_stdin", {"family": family, "source": source}, READ_SECONDS,
                     f"reading {source} took over {READ_SECONDS} s")


READ_SECONDS = 600  # reading a weights file's keys and config (a 6 GB Dia-1.6B file takes seconds)


def _in_child(function: str, request: dict, seconds: float, too_long: str):
    """JSON answer of `lab.runs.<function>()` run in a child process with `request` (JSON) on stdin, killed after
    `seconds` (ConfigError `too_long`); a child's `lab: error:` line becomes a ConfigError."""
    code = f"from lab.runs import {function}; {function}()"
    try:
        result = subprocess.run([sys.executable, "-c", code], input=json.dumps(request), capture_output=True,
                                text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise ConfigError(too_long) from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise ConfigError(lines[-1].removeprefix("lab: error: "))
    return json.loads(result.stdout)


def count_from_stdin() -> None:
    """The child of `sizes`: {"family", "configs", "plan"} on stdin, {"counts", "plan"} as JSON on stdout."""
    request = json.load(sys.stdin)
    family, plan = request["family"], request.get("plan")
    try:
        counts = [parameter_count(family, values) for values in request["configs"]]
        spec = registry.get(family)
        if plan is not None and spec.memory_plan is not None:
            config = config_tools.from_dict(spec.config.Config, request["configs"][0])
            plan = spec.memory_plan(spec, config, processes=plan["processes"], device_gb=plan.get("device_gb"))
        else:
            plan = None
    except ConfigError as error:
        say(f"error: {error}")
        raise SystemExit(2) from None
    print(json.dumps({"counts": counts, "plan": plan}))


def settings_from_stdin() -> None:
    """The child of `file_settings`: {"family", "source"} on stdin, the settings as JSON on stdout."""
    request = json.load(sys.stdin)
    try:
        settings = registry.get(request["family"]).weights_settings(request["source"])
    except ConfigError as error:
        say(f"error: {error}")
        raise SystemExit(2) from None
    print(json.dumps(settings))


def model_part(count: int | dict[str, int]) -> int:
    """The model's parameters of a `parameter_count`: the int itself, or the "model" part of a split count."""
    return count["model"] if isinstance(count, dict) else count


def count_text(count: int | dict[str, int]) -> str:
    """'2,155,098', or for a split count '1,012,345 model + 1,142,753 training head'."""
    if isinstance(count, dict):
        return " + ".join(f"{value:,} {name}" for name, value in count.items())
    return f"{count:,}"


def memory_plan(store: Store, family: str, values: dict, processes: int) -> dict | None:
    """The family's memory plan of `values` on `processes` devices (None when it has none), sized against
    `device_memory_gb` of lab.json when set (TPU chips, whose size torch cannot read)."""
    device_gb = store.settings.get("device_memory_gb")
    return sizes(family, [values], plan={"processes": processes, "device_gb": device_gb})[1]


def structural_check(family: str, values: dict, reference: str, reference_values: dict,
                     device_gb: float | None = None) -> tuple[list[str], list]:
    """Model size against where a new run starts (`reference`), its memory plan on one device (sized against
    `device_gb` when given) and structural smells of its config.

    Returns (the lines `lab new-run` prints, the health findings to record).
    """
    from lab.health import rules as health

    (count, reference_count), plan = sizes(family, [values, reference_values],
                                           plan={"processes": 1, "device_gb": device_gb})
    findings = health.structural_findings(values, model_part(count), model_part(reference_count))
    lines = [f"parameters: {count_text(count)} ({reference}: {count_text(reference_count)})",
             *(plan["lines"] if plan else [])]
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
    parent_record = store.runs.load(parent) if parent else None
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
        source = initial_weights(store, init_from, parent)
        chosen = {item.partition("=")[0].strip() for item in overrides}
        fixed = {key: value for key, value in file_settings(family, source).items() if key not in chosen}
        if fixed:
            say(f"set from the weights file (its format fixes them, with no weights to show it): "
                f"{' '.join(f'{key}={value}' for key, value in fixed.items())}")
        overrides = [*overrides, *(f"{key}={value}" for key, value in fixed.items()), f"train.init_from={source}"]
    snapshot = None
    if baseline is not None:
        snapshot = store.baselines.get(baseline)
        if snapshot is None:
            raise LabError(f"no baseline {baseline!r}: register it with lab baseline add {baseline} --config FILE")
    values = resolve_config(
        store, family=family, preset=preset, parent=parent_record, config_file=config_file, overrides=list(overrides),
        baseline_config=snapshot["config"] if snapshot and not family and not parent_record else None,
    )
    lines, findings = [], []
    if family:
        reference = ((parent, store.runs.config(parent)) if parent
                     else (f"preset {preset}", registry.get(family).preset(preset)))
        lines, findings = structural_check(family, values, *reference, store.settings.get("device_memory_gb"))
    baseline = baseline or (parent_record.get("baseline") if parent_record else None)
    if family and not baseline:
        spec = registry.get(family)
        baseline = spec.provenance["baseline"]
        store.baselines.save(baseline, spec.provenance, spec.preset("baseline"))
    record = store.runs.create(
        None if next_free else run_id,
        prefix=prefix,
        reserve=id_reserver(store),
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
        store.events.add(record["id"], "health", **finding.to_dict())
    return {**record, "summary_lines": lines}


def id_reserver(store: Store):
    """`reserve(id)` for `store.runs.create`: claims the id through the git remote (lab.json
    `remote.timeout_s`, default 10 s); with no answer it goes ahead, saying so in one line."""
    timeout = float(store.settings.get("remote", {}).get("timeout_s", remote.RESERVE_TIMEOUT_S))

    def reserve(run_id: str) -> bool:
        outcome = remote.reserve_id(store.root, run_id, store.clone_id, timeout)
        if outcome == "offline":
            warn(f"the git remote did not answer, so {run_id} is reserved on this clone only; if "
                 "another clone takes it too, git pull shows it and lab rename fixes it")
        return outcome != "taken"

    return reserve


def taken_elsewhere(store: Store) -> list[str]:
    """This clone's runs whose id another clone reserved on the remote first (an id taken offline, seen once
    `git fetch` or `git pull` brought the reservations): each needs `lab rename` before the merge."""
    holders = remote.id_holders(store.root)
    clashes = []
    for run_id in store.readable_run_ids():
        creator = store.runs.load(run_id).get("clone")
        if creator == store.clone_id and run_id in holders and creator not in holders[run_id]:
            clashes.append(run_id)
    return clashes


def rename_run(store: Store, old: str, new: str) -> str:
    """Give run `old` the id `new`, with every reference: its records, the parent of runs made from it, a
    baseline's current run, comparison pages, and the W&B names its attempts record. Returns a summary line.

    After a merge that brought in another clone's run under the same id (run.json in conflict), only this
    clone's run (and its attempts and events) moves to `new`; the other keeps `old` and the conflict is
    resolved (git add), ready to commit.
    """
    check_run_id(new)
    if store.exists(new):
        raise LabError(f"run {new} already exists: choose another id")
    if store.running_dir(old).is_dir() and any(store.running_dir(old).iterdir()):
        raise LabError(f"run {old} has an attempt running on this clone: rename it once the attempt has ended")
    sides = store.ids.conflicted(old)
    if sides is not None and not same_run(*sides):
        return split_collision(store, old, new, sides)
    run = store.runs.load(old)
    claim(store, new)
    with store.lock():
        os.replace(store.run_dir(old), store.run_dir(new))
    moved = adopt(store, store.run_dir(new), run, old, new)
    for page in (store.logs_dir / "reports" / f"{old}.md", store.logs_dir / "reports" / old):
        shutil.rmtree(page, ignore_errors=True) if page.is_dir() else page.unlink(missing_ok=True)
    references = rewrite_references(store, old, new, lambda record: True)
    for baseline in sorted((store.logs_dir / "baselines").glob("*.json")):
        snapshot = read_json(baseline, {})
        if snapshot.get("current") == old:
            write_json(baseline, {**snapshot, "current": new})
            references += 1
    renamed = {name: [rename_arm(arm, old, new) for arm in arms] for name, arms in comparisons(store).items()}
    for name, arms in renamed.items():
        if arms != comparisons(store).get(name):
            append_jsonl(comparisons_index(store), {"name": name, "arms": arms})
            references += 1
    store.events.add(new, "renamed", from_id=old)
    return f"renamed {old} to {new}: {moved} attempt(s), {references} reference(s) updated"


def claim(store: Store, run_id: str) -> None:
    """Reserve `run_id` for this clone through the remote; LabError when another clone holds it."""
    if not id_reserver(store)(run_id):
        raise LabError(f"run id {run_id} is already taken by another clone: choose another id")


def rename_arm(arm: str, old: str, new: str) -> str:
    run_id, colon, attempt = arm.partition(":")
    return f"{new}{colon}{attempt}" if run_id == old else arm


def adopt(store: Store, folder: Path, run: dict, old: str, new: str) -> int:
    """Write `run` as run `new` in `folder` (id, slug) and point its attempts there (run, W&B name); returns
    how many attempts it has."""
    slug = run["slug"].replace(f"_{old}_", f"_{new}_", 1)
    write_json(folder / "run.json", {**run, "id": new, "slug": slug})
    attempts = sorted((folder / "attempts").glob("*/attempt.json")) if (folder / "attempts").is_dir() else []
    for path in attempts:
        record = read_json(path, {})
        wandb = record.get("wandb")
        number = store.attempt_number(new, path.parent.name) or record.get("number")
        if wandb:
            wandb = {**wandb, "name": f"{slug}_test{number}"}
        write_json(path, {**record, "run": new, **({"wandb": wandb} if wandb else {})})
    return len(attempts)


def rewrite_references(store: Store, old: str, new: str, owned) -> int:
    """Point runs made from `old` (`parent`) at `new`, for the run.json records `owned(record)` accepts."""
    count = 0
    for run_id in store.run_ids():
        path = store.run_dir(run_id) / "run.json"
        record = read_json(path, {})
        if record.get("parent") == old and run_id != new and owned(record):
            write_json(path, {**record, "parent": new})
            count += 1
    return count


def split_collision(store: Store, old: str, new: str, sides: tuple[dict, dict]) -> str:
    """Two clones created `old` apart and a merge put both in one folder: this clone's run (the side it
    created, else git's `ours`) with its attempts and events moves to `new`; the other keeps `old`."""
    index = next((i for i, side in enumerate(sides) if side.get("clone") == store.clone_id), 0)
    moving, staying = sides[index], sides[1 - index]
    owner = moving.get("clone")
    old_folder, new_folder = store.run_dir(old), store.run_dir(new)
    configs = conflict_sides((old_folder / "config.json").read_text(encoding="utf-8")) \
        if (old_folder / "config.json").is_file() else None
    if configs is not None:
        configs = tuple(json.loads(text) for text in configs)
    else:
        configs = (read_json(old_folder / "config.json", {}),) * 2
    claim(store, new)
    new_folder.mkdir(parents=True)
    write_json(new_folder / "config.json", configs[index])
    write_json(old_folder / "config.json", configs[1 - index])
    write_json(old_folder / "run.json", staying)
    events_path = old_folder / "events.jsonl"
    lines = events_path.read_text(encoding="utf-8") if events_path.is_file() else ""
    both = conflict_sides(lines)
    lines = (both[0] + "".join(line for line in both[1].splitlines(keepends=True) if line not in both[0])
             if both else lines)
    kept, moved = [], []
    for line in lines.splitlines(keepends=True):
        event = next(read_jsonl_lines([line.encode("utf-8")]), {})
        (moved if event.get("clone") == owner else kept).append(line)
    write_text(events_path, "".join(kept))
    write_text(new_folder / "events.jsonl", "".join(moved))
    count = 0
    for path in sorted((old_folder / "attempts").glob("*/attempt.json")) if (old_folder / "attempts").is_dir() else []:
        if read_json(path, {}).get("clone") == owner:
            (new_folder / "attempts").mkdir(exist_ok=True)
            os.replace(path.parent, new_folder / "attempts" / path.parent.name)
            count += 1
    adopt(store, new_folder, moving, old, new)
    rewrite_references(store, old, new, lambda record: record.get("clone") == owner)
    store.events.add(new, "renamed", from_id=old)
    vcs.stage(store.root, [old_folder, new_folder])
    return (f"renamed this clone's {old} to {new} ({count} attempt(s)); {old} is the other clone's run again. "
            "Commit the merge: git commit")


def initial_weights(store: Store, source: str, parent: str | None) -> str:
    """The absolute 'PATH[:KEY]' that `lab new-run --init-from SOURCE` means; LabError when it does not exist."""
    if source in ("best", "last"):
        if not parent:
            raise LabError(f"--init-from {source} takes the {source} checkpoint of the --from run: give --from RUN")
        return store.attempts.latest_checkpoint(parent, source)
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
        run = store.runs.load(run_id)
        row = {
            "id": run_id,
            "status": store.attempts.run_status(run_id),
            "family": run.get("family"),
            "group": run.get("group"),
            "attempts": len(store.attempts.numbers(run_id)),
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
    for attempt in store.attempts.of(run_id):
        folder = store.attempt_dir(run_id, attempt["number"])
        attempts.append({**attempt, "summary": read_json(folder / "summary.json", {})})
    return {
        "run": store.runs.load(run_id),
        "status": store.attempts.run_status(run_id),
        "config": store.runs.config(run_id),
        "attempts": attempts,
        "events": store.events.of(run_id),
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


def ran_config(store: Store, run_id: str) -> dict:
    """The config a run's headline attempt ran with (the run's own before any attempt)."""
    return attempt_config(store, run_id, headline_attempt(store, run_id))


def diff_text(store: Store, first: str, second: str | None = None) -> str:
    """`lab diff`: a run against what its pages describe it against (its parent, else its baseline), or two
    runs, grouped by component. A run's config is the one its headline attempt ran with, as on the pages."""
    run = store.runs.load(first)
    if second is not None:
        store.runs.load(second)
        name, before, after = f"{first} -> {second}", ran_config(store, first), ran_config(store, second)
    else:
        reference = reference_config(store, run)
        if reference is None:
            raise LabError(f"run {first} has no baseline or parent: give a second run, lab diff {first} OTHER")
        kind = "parent" if reference[0] == run.get("parent") else "baseline"
        name, before, after = f"{first} vs {reference[0]} ({kind})", reference[1], ran_config(store, first)
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
