"""`lab new-run`: a run created with its resolved config (the parent's, a family preset, a baseline's or a file,
then overrides), the weights it starts from, its baseline snapshot and the structural check of its model."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError, say
from lab.families import registry
from lab.pages import expectations
from lab.pages.results import ran_config
from lab.records import config as config_tools
from lab.records.config import set_values
from lab.records.store import Store
from lab.records.store.names import check_run_id
from lab.runs.ids import id_reserver
from lab.runs.sizing import cache_folder, file_settings, structural_check
from lab.runs.tags import check_tag


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


def new_run(
    store: Store, run_id: str, *, next_free: bool = False, hypothesis: str, family: str | None = None,
    preset: str | None = None, title: str | None = None, group: str | None = None, tags: list[str] = (),
    parent: str | None = None, config_file: str | None = None, overrides: list[str] = (),
    init_from: str | None = None, baseline: str | None = None, expect: str | None = None,
) -> dict:
    """Create a run with its resolved config and baseline snapshot; returns run.json with `summary_lines`, what
    `lab new-run` prints under its first line (model size, memory plan, structural findings).

    `baseline` names a registered baseline (`lab baseline add`) the run changes; a run without a family or a
    parent then starts from its config.

    `init_from` is where the run's weights start: 'best' or 'last' (the parent's checkpoint of that kind), or
    a weights file 'PATH[:KEY]'; it becomes `train.init_from`. `expect` is a checkable expectation
    (`lab.pages.expectations`) that the run's verdict evaluates. Everything that can fail (config, overrides,
    weights path, building the model) is checked before anything is written: LabError, ConfigError.
    """
    prefix = run_id if next_free else check_run_id(run_id).rsplit("_", 1)[0]
    if not next_free and store.exists(run_id):
        raise LabError(f"run {run_id} already exists")
    parent_record = store.runs.load(parent) if parent else None
    if expect is not None:
        expectations.parse(expect, store.exists)
    family, preset = starting_point(store, prefix, parent_record, family, preset)
    user_overrides = list(overrides)  # what `--set` chose, handed to a wrapped script (run.json `set`)
    if init_from is not None:
        overrides = weights_overrides(store, family, init_from, parent, list(overrides))
    snapshot = store.baselines.get(baseline) if baseline is not None else None
    if baseline is not None and snapshot is None:
        raise LabError(f"no baseline {baseline!r}: register it with lab baseline add {baseline} --config FILE")
    values = resolve_config(
        store, family=family, preset=preset, parent=parent_record, config_file=config_file, overrides=list(overrides),
        baseline_config=snapshot["config"] if snapshot and not family and not parent_record else None,
    )
    lines, findings = [], []
    if family:
        reference = ((parent, store.runs.config(parent)) if parent
                     else (f"preset {preset}", registry.get(family).preset(preset)))
        lines, findings = structural_check(family, values, *reference, store.settings.get("device_memory_gb"),
                                           cache_folder())
    baseline = baseline or (parent_record.get("baseline") if parent_record else None)
    if family and not baseline:
        spec = registry.get(family)
        baseline = spec.provenance["baseline"]
        store.baselines.save(baseline, spec.provenance, spec.preset("baseline"))
    record = store.runs.create(
        None if next_free else run_id, prefix=prefix, reserve=id_reserver(store), hypothesis=hypothesis,
        title_text=title, family=family, preset=preset, baseline=baseline, parent=parent, group=group,
        tags=list(dict.fromkeys(check_tag(name) for name in tags)), config_source=config_file,
        **({"expect": expect.strip()} if expect is not None else {}),
        **({"set": chosen} if (chosen := set_values(values, user_overrides, (parent_record or {}).get("set")))
           else {}),
        config=values,
    )
    for finding in findings:
        store.events.add(record["id"], "health", **finding.to_dict())
    return {**record, "summary_lines": lines}


def starting_point(store: Store, prefix: str, parent: dict | None, family: str | None,
                   preset: str | None) -> tuple[str | None, str | None]:
    """(family, preset) of a new run: its parent's (which --family may repeat, and --preset may not change),
    else as given, else the family lab.json maps the id's prefix to; preset `baseline` by default. LabError for
    options that disagree, or a family not installed here."""
    if parent is not None:
        if family and family != parent.get("family"):
            raise LabError(f"--family {family} differs from {parent['id']}'s family {parent.get('family')}")
        if preset:
            raise LabError(f"--preset and --from both choose the starting config: {parent['id']} already sets it")
        family, preset = parent.get("family"), parent.get("preset")
    family = family or store.settings.get("prefixes", {}).get(prefix)
    if preset and not family:
        raise LabError("--preset needs a family (--family NAME)")
    if family:
        preset = preset or "baseline"
        registry.get(family).check_installed()
    return family, preset


def weights_overrides(store: Store, family: str | None, init_from: str, parent: str | None,
                      overrides: list[str]) -> list[str]:
    """`overrides` with `train.init_from` set to the weights `init_from` means (`initial_weights`), and the
    settings that weights file fixes (`sizing.file_settings`) that the overrides do not choose, named on stderr.
    LabError without a family, or for weights that do not exist."""
    if not family:
        raise LabError("--init-from needs a family with a built-in trainer (--family NAME)")
    source = initial_weights(store, init_from, parent)
    chosen = {item.partition("=")[0].strip() for item in overrides}
    fixed = {key: value for key, value in file_settings(family, source).items() if key not in chosen}
    if fixed:
        say(f"set from the weights file (its format fixes them, with no weights to show it): "
            f"{' '.join(f'{key}={value}' for key, value in fixed.items())}")
    return [*overrides, *(f"{key}={value}" for key, value in fixed.items()), f"train.init_from={source}"]


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
