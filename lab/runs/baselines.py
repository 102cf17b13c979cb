"""`lab baseline add`: a baseline of the researcher's own project registered for changelogs, its config taken
from a file or from what a run recorded, with its provenance (repository, config file, run, reference); and
`lab baseline attach`, which makes runs made before it (or without `--baseline`) join it."""

from __future__ import annotations

from lab.errors import LabError
from lab.pages.results import ran_config
from lab.records.config import flatten, read_config_file
from lab.records.store import Store


def add_baseline(store: Store, name: str, *, config_file: str | None = None, from_run: str | None = None,
                 repository: str | None = None, reference: str | None = None) -> dict:
    """Snapshot baseline `name` from `config_file` or from the config `from_run`'s headline attempt ran with
    (one of the two), secrets redacted; returns the snapshot. LabError when both or neither are given, or when
    the baseline exists (runs already diff against it); ConfigError for a config file that cannot be read."""
    if bool(config_file) == bool(from_run):
        raise LabError("give the baseline's config with --config FILE or --from-run RUN (one of them)")
    if store.baselines.get(name) is not None:
        raise LabError(f"baseline {name} exists ({store.baselines.path(name)}); runs already diff against it")
    if config_file:
        config = read_config_file(config_file)
    else:
        store.runs.load(from_run)
        config = ran_config(store, from_run)
    provenance = {key: value for key, value in (("repository", repository), ("config_file", config_file),
                                                ("from_run", from_run), ("reference", reference)) if value}
    return store.baselines.save(name, provenance, store.redact(config))


def baseline_line(name: str, snapshot: dict) -> str:
    """What `lab baseline add` prints: how many config keys the baseline holds and how to use it."""
    return (f"baseline {name}: {len(flatten(snapshot['config']))} config keys; use it with lab new-run ID "
            f"--baseline {name}")


def attach(store: Store, name: str, run_ids: list[str]) -> list[str]:
    """Make runs `run_ids` use baseline `name` (their run.json's `baseline`), as `lab new-run --baseline` would
    have; returns the ids attached now (a run that already uses it is left as it is). LabError for no run, a
    baseline not registered, a run that does not exist or a run that uses another baseline (nothing is changed
    then)."""
    if store.baselines.get(name) is None:
        raise LabError(f"no baseline {name!r}; register it first with lab baseline add {name} --config FILE")
    if not run_ids:
        raise LabError(f"name the runs to attach: lab baseline attach {name} RUN [RUN ...]")
    for run_id in run_ids:
        other = store.runs.load(run_id).get("baseline")
        if other not in (None, name):
            raise LabError(f"run {run_id} uses baseline {other}; a run belongs to one baseline")
    attached = [run_id for run_id in dict.fromkeys(run_ids) if store.runs.load(run_id).get("baseline") is None]
    for run_id in attached:
        store.runs.update(run_id, baseline=name)
    return attached
