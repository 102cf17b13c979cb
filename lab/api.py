"""The lab's Python API: one function per `lab` command, with the command's errors and the records it writes.

    from lab import api
    api.init(wandb_project="dia-music")
    run = api.new_run("dia_009", hypothesis="the full-size decoder needs the MusicGen delay")
    api.launch("dia_009", ["python", "train.py", "--lr", "2e-4"], note="batch 4")
    api.note("dia_009", findings="the loss falls twice as fast")
    print(api.report("dia_009").read_text())

Every function takes `root`: the lab's folder or any folder inside it (default: the working directory). Bad
input raises LabError, ConfigError or RecordError with a one-line message (the CLI prints it as `lab: error:`
and exits 2); warnings go to stderr as `lab: warning:` lines. The work itself lives in the layers below (run
operations in lab.runs, pages in lab.pages, the launcher in lab.launcher); each function here finds the lab and
hands over. Modules are imported when a function is first called, so `import lab.api` costs next to nothing.
"""

from __future__ import annotations

import functools
import os
from datetime import date
from pathlib import Path
from typing import Callable

from lab.records.store import Store


def lab_at(root: str | os.PathLike | None = None) -> Store:
    """The lab holding `root` (default: the working directory); LabError when there is none."""
    return Store.find(Path(root) if root is not None else None)


def init(root: str | os.PathLike | None = None, *, wandb_entity: str | None = None,
         wandb_project: str | None = None, wandb_mode: str | None = None, wandb: bool = True,
         prefixes: dict[str, str] | None = None) -> Store:
    """`lab init`: make `root` (default: the working directory) a lab, or update its settings; returns it.
    LabError for a prefix that cannot start a run id, ConfigError for a family that is not installed."""
    from lab.runs.setup_lab import init_lab

    return init_lab(Path(root) if root is not None else Path.cwd(), wandb_entity=wandb_entity,
                    wandb_project=wandb_project, wandb_mode=wandb_mode, wandb=wandb, prefixes=prefixes)


def new_run(run_id: str, *, hypothesis: str, next_free: bool = False, family: str | None = None,
            preset: str | None = None, title: str | None = None, group: str | None = None, tags: list[str] = (),
            parent: str | None = None, config_file: str | None = None, overrides: list[str] = (),
            init_from: str | None = None, baseline: str | None = None, expect: str | None = None,
            root: str | os.PathLike | None = None) -> dict:
    """`lab new-run`: create a run (with `next_free`, `run_id` is a prefix taking its next free number); returns
    its run.json with `summary_lines`. LabError, ConfigError for anything that cannot make the run, checked
    before anything is written (see `lab.runs.create.new_run`)."""
    from lab.runs.create import new_run as create

    return create(lab_at(root), run_id, next_free=next_free, hypothesis=hypothesis, family=family, preset=preset,
                  title=title, group=group, tags=list(tags), parent=parent, config_file=config_file,
                  overrides=list(overrides), init_from=init_from, baseline=baseline, expect=expect)


def launch(run_id: str, command: list[str] | None = None, *, overrides: list[str] = (), note: str | None = None,
           commit: bool = True, processes: int = 1, resume: bool = False, seeds: int | None = None,
           metrics_pattern: str | None = None, nodes: int = 1, node_rank: int = 0, main_address: str | None = None,
           invocation: str | None = None, root: str | os.PathLike | None = None) -> int:
    """`lab launch`: run `command` (None: the run's built-in trainer) as a new attempt, or with `seeds` the
    trainer that many times; returns the exit status (the first non-zero of several). The command's output goes
    to sys.stdout. LabError, ConfigError for a launch that cannot start (nothing recorded)."""
    from lab.launcher.launch import Nodes, launch as run, launch_seeds
    from lab.runs import sizing

    store = lab_at(root)
    family = store.runs.load(run_id).get("family")
    options = dict(overrides=list(overrides), note=note, commit=commit, processes=processes, invocation=invocation,
                   metrics_pattern=metrics_pattern, nodes=Nodes(nodes, node_rank, main_address),
                   memory_plan=functools.partial(sizing.memory_plan, store, family) if family else None)
    if seeds is not None:
        return launch_seeds(store, run_id, seeds, command, **options)
    return run(store, run_id, command, resume=resume, **options)


def note(run_id: str | None = None, *, findings: str | None = None, observations: str | None = None,
         conclusion: str | None = None, next: str | None = None, result: str | None = None,
         attempt: int | None = None, change: str | None = None, component: str | None = None,
         headline: int | None = None, insight: str | None = None, overview: str | None = None,
         root: str | os.PathLike | None = None) -> None:
    """`lab note`: notes on a run (on Test `attempt` when given), a code `change` it makes, its `headline`
    attempt; without a run id, the day's `insight` and `overview`. Committed once written. LabError for a note
    that says nothing, or mixes run and day notes."""
    from lab.runs.notes import note as write

    notes = {"findings": findings, "observations": observations, "conclusion": conclusion, "next": next,
             "result": result}
    write(lab_at(root), run_id, notes=notes, attempt=attempt, change=change, component=component,
          headline=headline, insight=insight, overview=overview)


def list_runs(*, family: str | None = None, status: str | None = None, group: str | None = None,
              since: date | None = None, root: str | os.PathLike | None = None) -> list[dict]:
    """`lab runs`: one dict per run matching the filters (id, status, family, group, attempts, created, title,
    slug, hypothesis; an unreadable run with status `unreadable` and its `error`). Each of this clone's runs
    whose id another clone reserved first is named in a warning."""
    from lab.runs import ids, listing

    store = lab_at(root)
    rows = listing.list_runs(store, family=family, status=status, group=group, since=since)
    ids.warn_taken_elsewhere(store)
    return rows


Names = str | list[str] | tuple[str, ...]


def runs(*, attempts: bool = False, where: str | None = None, sort: Names | None = None,
         columns: Names | None = None, limit: int | None = None, status: Names = (), family: str | None = None,
         group: str | None = None, since: date | None = None, until: date | None = None, tags: Names = (),
         search: str | None = None, config: bool = True, measured: bool = True,
         root: str | os.PathLike | None = None):
    """The runs as a pandas DataFrame, one row per run (its headline attempt; `attempts`: one per attempt), with
    the columns of `lab.runs.table` (the record, config.<key>, <metric>.final/.best/.best_step, verdict), filtered
    and sorted as `lab runs` does (`lab.runs.table.select`). `status`, `tags`, `sort` and `columns` each take a
    list or one text, comma-separated. `config`/`measured` False leave those columns out (quicker). LabError for
    an unknown column or an unreadable `where`.

        lab.api.runs(where="group == 'lr_ablation' and `val/loss.best` < 0.5", sort="val/loss.best")
    """
    from lab.runs import table

    store = lab_at(root)
    rows = table.frame(store, attempts=attempts, config=config, measured=measured)
    found = table.search(store, search) if search else None
    return table.select(rows, statuses=_names(status), family=family, group=group, since=since, until=until,
                        zone=store.zone if since or until else None, tags=_names(tags), found=found, where=where,
                        sort=",".join(_names(sort)) or None,
                        columns=",".join(_names(columns)) or None, limit=limit)


def _names(value: Names | None) -> list[str]:
    """A list of names given as a list or as one text, comma-separated ("failed,crashed")."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [part.strip() for part in parts if part.strip()]


def history(run_ids: Names | None = None, *, metrics: Names | None = None, wide: bool = False,
            root: str | os.PathLike | None = None):
    """Metric rows of `run_ids` (default every run; one id or a list), every attempt, as a pandas DataFrame: long
    (run, attempt, step, metric, value) or `wide` (one column per metric). `metrics` keeps those names (one or a
    list). LabError for a run that does not exist."""
    from lab.runs import table

    return table.history(lab_at(root), None if run_ids is None else _names(run_ids),
                         [metrics] if isinstance(metrics, str) else metrics, wide)


def export(out: str | os.PathLike, *, format: str = "parquet", root: str | os.PathLike | None = None) -> list[Path]:
    """`lab export`: runs, attempts and metrics tables written into `out` as Parquet or CSV; their paths."""
    from lab.runs import table

    return table.export(lab_at(root), Path(out), format)


def tag(run_id: str, changes: list[str], root: str | os.PathLike | None = None) -> list[str]:
    """`lab tag`: add (`+name`) and remove (`-name`) tags of a run; its tags after. LabError for a bad tag."""
    from lab.runs import tags

    return tags.retag(lab_at(root), run_id, list(changes))


def show(run_id: str, root: str | os.PathLike | None = None) -> dict:
    """`lab show`: everything recorded about a run: {"run", "status", "config", "attempts", "events"}."""
    from lab.runs import listing

    return listing.details(lab_at(root), run_id)


def diff(first: str, second: str | None = None, root: str | os.PathLike | None = None) -> str:
    """`lab diff`: a run's config against its parent (else its baseline), or against run `second`, grouped by
    component. LabError for a run without a reference when `second` is not given."""
    from lab.runs import listing

    return listing.diff_text(lab_at(root), first, second)


def log(day: date | None = None, *, every_day: bool = False, root: str | os.PathLike | None = None) -> list[Path]:
    """`lab log`: write the daily page of `day` (default: today), or of every day with activity; their paths."""
    from lab.pages import context

    return context.daily_logs(lab_at(root), day, every_day)


def sync(progress: Callable[[str, int, bool, str], None] | None = None,
         root: str | os.PathLike | None = None) -> list[tuple[str, int, bool, str]]:
    """`lab sync`: send this clone's pending offline W&B runs; (run id, attempt, ok, message) for each, also
    passed to `progress` as each is done. LabError when the W&B server cannot be reached."""
    from lab.launcher import wandb_links

    return wandb_links.sync_pending(lab_at(root), progress)


def changelog(baseline: str | None = None, *, status: list[str] = (), current: str | None = None,
              root: str | os.PathLike | None = None) -> list[Path]:
    """`lab changelog`: write the changelog of `baseline` (with its own `status` rows, KEY=TEXT, and its
    `current` run set first), or of every baseline in use; their paths. LabError for a baseline not in use."""
    from lab.pages import changelogs

    return changelogs.changelogs(lab_at(root), baseline, status=list(status), current=current)


def add_baseline(name: str, *, config_file: str | None = None, from_run: str | None = None,
                 repository: str | None = None, reference: str | None = None,
                 root: str | os.PathLike | None = None) -> dict:
    """`lab baseline add`: register a baseline from a config file or a run's recorded config; its snapshot.
    LabError for both or neither, or a baseline that exists."""
    from lab.runs import baselines

    return baselines.add_baseline(lab_at(root), name, config_file=config_file, from_run=from_run,
                                  repository=repository, reference=reference)


def attach_baseline(name: str, run_ids: list[str], root: str | os.PathLike | None = None) -> list[str]:
    """`lab baseline attach NAME RUN...`: runs made before the baseline join it; the ids attached now (not those
    that already used it). LabError for a
    baseline not registered, a run that does not exist or one that uses another baseline."""
    from lab.runs import baselines

    return baselines.attach(lab_at(root), name, list(run_ids))


def compare(run_ids: list[str] = (), *, group: str | None = None, name: str | None = None,
            root: str | os.PathLike | None = None) -> Path:
    """`lab compare`: write the comparison of runs (`RUN` or `RUN:ATTEMPT`, the first the reference) or of a
    group's runs; its path. LabError for fewer than two arms, or both ids and a group."""
    from lab.pages import comparisons

    return comparisons.compare_page(lab_at(root), list(run_ids), group, name)


def group_reference(group: str, root: str | os.PathLike | None = None) -> str:
    """Which run `lab compare --group` compares a group's runs with, and why: 'reference: nsd_001, the run the
    group branched from (added to the group's runs)'. LabError for a group with no runs."""
    from lab.pages import comparisons

    return comparisons.group_arms(lab_at(root), group)[1]


def report(run_id: str, attempt: int | None = None, root: str | os.PathLike | None = None) -> Path:
    """`lab report`: write the training report of an attempt (default: the run's headline attempt); its path.
    LabError for a run with no attempt that logged metrics."""
    from lab.pages import reports

    return reports.report(lab_at(root), run_id, attempt)


def doctor(run_id: str, attempt: int | None = None, *, record: bool = True,
           root: str | os.PathLike | None = None) -> list:
    """`lab doctor`: the health findings of an attempt (default: the latest with metrics), the rules run again
    and those recorded live; new ones are recorded unless `record` is False."""
    from lab.health import diagnosis

    return diagnosis.doctor(lab_at(root), run_id, attempt, record=record)


def render(root: str | os.PathLike | None = None) -> list[Path]:
    """`lab render`: rebuild every page from the records; their paths."""
    from lab.pages import reports

    return reports.render_all(lab_at(root))


def site(out: str | os.PathLike | None = None, *, branch: bool = False,
         root: str | os.PathLike | None = None) -> list[Path]:
    """`lab site`: write the lab's pages in HTML (interactive charts, sortable tables) under `out` (default:
    logs/site/); their paths, the index first (see `lab.site.build`). With `branch`, also commit the site to the
    lab-pages branch (`publish_site`; LabError outside a git repository)."""
    from lab.site import build

    store = lab_at(root)
    pages = build.build_site(store, Path(out) if out is not None else build.site_folder(store))
    if branch:
        publish_site(out, root=root)
    return pages


def publish_site(out: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> dict:
    """`lab site --branch` after the build: commit the site built under `out` (default: logs/site/) to the
    lab-pages branch and make every remote's plain `git push` carry it (`remote.configure_remotes`). Returns
    {"commit": sha, "new": whether a commit was made, "remotes": the remotes a push carries it to, "added":
    the remotes whose push settings were added now}. LabError outside a git repository."""
    from lab.launcher import remote
    from lab.site import build, publish

    store = lab_at(root)
    commit, new = publish.publish(store, Path(out) if out is not None else build.site_folder(store))
    before = remote.pushed_by(store.root)
    remote.configure_remotes(store.root)
    remotes = remote.pushed_by(store.root)
    return {"commit": commit, "new": new, "remotes": remotes, "added": [name for name in remotes if name not in before]}


def serve(host: str = "127.0.0.1", port: int = 8000, root: str | os.PathLike | None = None):
    """`lab serve`: a read-only server of the lab's HTML site on `host`:`port` (0: a free one), not yet started
    (call its `serve_forever()`; `server_address` says where it listens); LabError when the port cannot be had."""
    from lab.errors import LabError
    from lab.site import serve as serving

    store = lab_at(root)
    try:
        return serving.make_server(store, host, port)
    except OSError as error:
        raise LabError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None


def remove(run_id: str, root: str | os.PathLike | None = None) -> str:
    """`lab rm --yes`: archive a run's records (logs/archive/) and delete its artefacts; the line saying where
    the records went. LabError for no such run."""
    from lab.runs import removal

    return removal.remove_run(lab_at(root), run_id)


def rename(old: str, new: str, root: str | os.PathLike | None = None) -> str:
    """`lab rename`: give run `old` the id `new` with every reference to it; a summary line. LabError for an id
    that is taken or invalid, or a run with an attempt running."""
    from lab.runs import rename as renaming

    return renaming.rename_run(lab_at(root), old, new)
