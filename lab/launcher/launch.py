"""Launching an attempt: prepare (every check before anything is written), the git capture, the attempt opened
with its W&B identity and environment, the command run under `supervise` with its output tee'd to stdout.log,
and close (printed rows, health, the records committed, one line for a failure).

Works for any command (`lab launch ID -- python train.py ...`) and for a family's built-in trainer.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.errors import LabError, say, warn
from lab.families import registry
from lab.launcher import printed, vcs, wandb_links
from lab.launcher.output import HEAD_MB, MB, TAIL_MB, OutputLog
from lab.launcher.supervise import KILL_GRACE_SECONDS, supervise
from lab.records.config import apply_overrides, arguments_config, free_value, set_values
from lab.records.files import TEMPORARY_SUFFIX, read_json, write_json, write_text
from lab.records.store import Store
from lab.tracking import autolog
from lab.tracking.autolog.handed import SET_VARIABLE

def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Host facts for the attempt record, gathered without importing torch."""
    facts = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": package_version("torch"),
        "cuda_runtime": package_version("nvidia-cuda-runtime-cu12"),
        "torch_xla": package_version("torch_xla"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pjrt_device": os.environ.get("PJRT_DEVICE"),
    }
    if shutil.which("nvidia-smi"):
        try:
            query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
            facts["gpus"] = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            facts["gpus"] = None
    return {key: value for key, value in facts.items() if value}


SCHEDULER_VARIABLES = {  # attempt.json `scheduler` key -> the variable the scheduler sets in a job
    "slurm_job_id": "SLURM_JOB_ID", "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID", "slurm_job_name": "SLURM_JOB_NAME",
    "slurm_nodelist": "SLURM_JOB_NODELIST", "slurm_ntasks": "SLURM_NTASKS", "pbs_job_id": "PBS_JOBID",
    "lsf_job_id": "LSB_JOBID",
}


def scheduler() -> dict | None:
    """The batch scheduler's job this launch runs in (SLURM's job id, array task and node list; PBS's and LSF's
    job ids), from the launch's environment; None outside one."""
    found = {key: os.environ[name] for key, name in SCHEDULER_VARIABLES.items() if os.environ.get(name)}
    if "slurm_nodelist" not in found and os.environ.get("SLURM_NODELIST"):
        found["slurm_nodelist"] = os.environ["SLURM_NODELIST"]
    return found or None


@dataclass(frozen=True)
class Nodes:
    """Where this launch stands in a multi-node one: `count` machines, this one `rank`, rendezvous at
    `main_address` ('HOST:PORT', node 0's). Node 0 records the attempt; the others only run and log."""

    count: int = 1
    rank: int = 0
    main_address: str | None = None

    def check(self) -> None:
        """LabError (one line) for options that cannot make one launch."""
        if self.count < 1:
            raise LabError("--nodes must be at least 1")
        if not 0 <= self.rank < self.count:
            raise LabError(f"--node-rank must lie in 0..{self.count - 1} for --nodes {self.count}")
        if self.count > 1:
            host, _, port = (self.main_address or "").rpartition(":")
            if not host or not port.isdigit():
                raise LabError("--nodes needs --main-address HOST:PORT (node 0's address, the same on every node)")

    def trainer_options(self) -> dict:
        """The keyword arguments of a family's `trainer_command` for these nodes (none on one machine)."""
        if self.count == 1:
            return {}
        return {"nodes": self.count, "node_rank": self.rank, "main_address": self.main_address}


def trainer_command(family: str, config_path: Path, processes: int, resume: str | None,
                    nodes: Nodes = Nodes()) -> list[str]:
    """The argv that trains `family` (its spec's `trainer_command`); LabError when it cannot run here."""
    spec = registry.get(family)
    spec.check_installed()
    if spec.trainer_command is None:
        raise LabError(f"the {family} family has no trainer to launch; pass a command after --")
    try:
        return spec.trainer_command(family, str(config_path), processes=processes, resume=resume,
                                    **nodes.trainer_options())
    except ValueError as error:
        raise LabError(str(error)) from None


CAPTURE_SITE = Path(autolog.__file__).parent / "site"  # its sitecustomize starts capture in the command
LAB_PACKAGE_ROOT = Path(autolog.__file__).parents[3]  # the folder holding the `lab` package
REPRODUCE_DEFAULTS = {"USE_TORCH_XLA": "0"}  # set unless the researcher exported them: no XLA unless asked


def child_environment(store: Store, run: dict, attempt: dict, attempt_dir: Path) -> dict:
    """The launcher's environment plus the lab and W&B variables of this attempt, the capture's sitecustomize
    first on PYTHONPATH (lab.tracking.autolog), and REPRODUCE_DEFAULTS where the environment has none."""
    env = dict(os.environ)
    env.update(
        LAB_RUN_ID=run["id"],
        LAB_ATTEMPT=str(attempt["number"]),
        LAB_ATTEMPT_DIR=str(attempt_dir),
        LAB_ARTEFACTS_DIR=attempt["artefacts"],
        LAB_ROOT=str(store.root),
        LAB_PACKAGE_ROOT=str(LAB_PACKAGE_ROOT),
        PYTHONPATH=os.pathsep.join([str(CAPTURE_SITE), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    env.update(launch_variables())
    wandb = attempt.get("wandb")
    if wandb:
        notes = run.get("hypothesis", "") + (
            f" | Test {attempt['number']}: {attempt['note']}" if attempt.get("note") else ""
        )
        env.update(
            LAB_WANDB="1",
            WANDB_RUN_ID=wandb["run_id"],
            WANDB_PROJECT=wandb["project"],
            WANDB_ENTITY=wandb.get("entity") or "",
            WANDB_RUN_GROUP=run.get("group") or "",
            WANDB_NOTES=notes,
            WANDB_NAME=f"{run['slug']}_test{attempt['number']}",
            WANDB_DIR=str(wandb_links.local_dir(store)),
        )
        if run.get("tags"):
            env["WANDB_TAGS"] = ",".join(run["tags"])  # W&B reads an empty one as a bad value
        env["WANDB_MODE"] = wandb["mode"]
        env.setdefault("WANDB_SILENT", "true")  # W&B's banners only when the researcher asks (WANDB_SILENT=false)
        wandb_links.local_dir(store).mkdir(parents=True, exist_ok=True)
    return env


def launch_variables() -> dict:
    """The variables a launch sets for the command that the researcher did not export (the report's Reproduce
    section carries them)."""
    return {key: value for key, value in REPRODUCE_DEFAULTS.items() if key not in os.environ}


@dataclass(frozen=True)
class Prepared:
    """A launch once everything that can be checked before the commit has been: the run, the attempt's config
    and where it came from ("run", or "command": guessed from the command's options until the script reports
    its own), the metrics pattern of printed lines, the checkpoint a resume starts from, and the values `--set`
    chose (the run's and the launch's, {dotted key: value}) that a wrapped command is handed (LAB_SET)."""

    run: dict
    config: dict
    config_source: str
    metrics_pattern: str | None
    resume_from: str | None
    handed: dict


def launch(
    store: Store,
    run_id: str,
    command: list[str] | None,
    *,
    overrides: list[str] = (),
    note: str | None = None,
    commit: bool = True,
    processes: int = 1,
    resume: bool = False,
    invocation: str | None = None,
    metrics_pattern: str | None = None,
    nodes: Nodes = Nodes(),
    memory_plan: Callable[[dict, int], dict | None] | None = None,
) -> int:
    """Run `command` (or the family's trainer) as a new attempt of `run_id`; returns its exit status.

    Everything that can be checked is checked before the commit (`prepare`: LabError, ConfigError); once the
    attempt is open, any failure to start it still closes it as `failed`. `metrics_pattern` (else lab.json's
    `capture.metrics_pattern`) turns printed lines into rows (lab.launcher.printed). `memory_plan(config,
    devices)` sizes the built-in trainer's run per device (its lines go to stderr, the plan into the attempt).
    On `nodes` other than node 0 the trainer runs without records (`run_node`).
    """
    ready = prepare(store, run_id, command, list(overrides), processes=processes, resume=resume,
                    metrics_pattern=metrics_pattern, nodes=nodes)
    if nodes.rank > 0:
        return run_node(store, ready.run, ready.config, processes, ready.resume_from, nodes)
    plan = memory_plan(ready.config, processes * nodes.count) if memory_plan and not command else None
    look_around(store, run_id, plan)
    git_info, dirty_diff = capture_git(store, ready.run, commit)
    attempt_dir = begin_attempt(store, ready, command, git_info, overrides=list(overrides), note=note,
                                invocation=invocation, plan=plan, nodes=nodes)
    try:
        write_json(attempt_dir / "config.json", store.redact(ready.config))
        if dirty_diff:
            write_text(attempt_dir / "dirty.diff", dirty_diff)
        command, env, attempt = command_and_environment(store, ready, attempt_dir, command, processes, nodes)
    except BaseException:
        store.attempts.end(attempt_dir, exit_code=None, status="failed")
        raise
    exit_code = _run_and_record(store, attempt_dir, command, env)
    close(store, ready, attempt_dir.name, attempt["number"], exit_code, commit)
    return exit_code


def prepare(store: Store, run_id: str, command: list[str] | None, overrides: list[str], *, processes: int,
            resume: bool, metrics_pattern: str | None, nodes: Nodes) -> Prepared:
    """Check a launch before anything is written: the run, its config with `overrides`, the options, the data
    a built-in trainer reads, the metrics pattern, the checkpoint to resume from. LabError (one line) else."""
    run = store.runs.load(run_id)
    if run.get("family"):
        config = registry.get(run["family"]).resolve(base=store.runs.config(run_id), overrides=overrides)
    else:
        config = apply_overrides(store.runs.config(run_id), overrides)
    config_source = "run" if config else "command"  # a config guessed from the options, until the script reports
    config = config or arguments_config(command or [])
    if not command and not run.get("family"):
        raise LabError(f"run {run_id} has no family, so there is no built-in trainer: give a command after --")
    if command and (processes != 1 or nodes.count != 1):
        raise LabError("--processes and --nodes are for the built-in trainer; wrap your own command, e.g. "
                       "-- accelerate launch ...")
    if processes < 1:
        raise LabError("--processes must be at least 1")
    nodes.check()
    if run.get("family") and not command and (missing := registry.get(run["family"]).missing_data(config)):
        raise LabError(f"{', '.join(missing)}: no such file or folder; point it at your data with "
                       f"lab launch {run_id} --set KEY=PATH (nothing was launched)")
    metrics_pattern = metrics_pattern or store.settings.get("capture", {}).get("metrics_pattern")
    if metrics_pattern:
        printed.compile_pattern(metrics_pattern)
    resume_from = store.attempts.latest_checkpoint(run_id, "last") if resume else None
    handed = set_values(config, overrides, run.get("set")) if command else {}
    check_command_agrees(command or [], handed)
    return Prepared(run, config, config_source, metrics_pattern, resume_from, handed)


def typed_values(command: list[str]) -> dict:
    """What a command line itself sets: its options (`--lr 0.1`, `--lr=0.1`, as `arguments_config` reads them)
    and its Hydra-style overrides (`optim.lr=0.1`, `+model.width=8`)."""
    typed = arguments_config(command)
    for token in command:
        name, sep, text = token.partition("=")
        if sep and not token.startswith("-") and name.lstrip("+~") and " " not in name:
            typed[name.lstrip("+~")] = free_value(text)
    return typed


def typed_list(command: list[str], key: str) -> list | None:
    """The values a command line types after `--key` up to its next option (`--layers 3 4 5`: [3, 4, 5]), or None
    where it does not type `--key` alone."""
    names = {f"--{key}", f"--{key.replace('_', '-')}"}
    for index, token in enumerate(command):
        if token in names:
            values = []
            for item in command[index + 1:]:
                if item.startswith("--"):
                    break
                values.append(free_value(item))
            return values
    return None


def check_command_agrees(command: list[str], handed: dict) -> None:
    """LabError (nothing launched) when the command line gives a key `--set` chose another value for."""
    typed = typed_values(command)
    for key, value in handed.items():
        got = typed.get(key, typed.get(key.replace("-", "_"), value))
        if isinstance(value, list) and (many := typed_list(command, key)) is not None:
            got = many
        if got != value:
            raise LabError(f"the command gives {key} {json.dumps(got)} but the run sets {key}={json.dumps(value)} "
                           f"(--set); drop one of them (nothing was launched)")


def look_around(store: Store, run_id: str, plan: dict | None) -> None:
    """Before the attempt opens: print the memory plan's lines, clear what killed attempts left half-written,
    and warn of the run's attempts still running."""
    for line in (plan or {}).get("lines", []):
        say(line)
    remove_stale_temporaries(store, run_id)
    for other in store.attempts.of(run_id):
        if other["status"] == "running":
            warn(f"Test {other['number']} of {run_id} is still running (pid {other.get('pid')} on "
                 f"{other.get('host')}); this launch runs beside it")


def capture_git(store: Store, run: dict, commit: bool) -> tuple[dict, str]:
    """(the attempt's git record, its dirty diff): the working tree committed with the run's slug as message
    (lab.json's `commit` policy), or with `commit` False the state as it is and its diff."""
    if commit:
        policy = vcs.CapturePolicy.from_settings(store.settings)
        return vcs.commit_working_tree(store.root, run["slug"], policy=policy, records_dir=store.logs_dir), ""
    return vcs.dirty_state(store.root, store.detector)


def begin_attempt(store: Store, ready: Prepared, command: list[str] | None, git_info: dict, *,
                  overrides: list[str], note: str | None, invocation: str | None, plan: dict | None,
                  nodes: Nodes) -> Path:
    """Open the attempt (status running) with everything known before its command runs; returns its folder."""
    run_id = ready.run["id"]
    return store.attempts.begin(
        run_id,
        command=list(command or []),
        pid=os.getpid(),
        note=note,
        overrides=overrides,
        git=git_info,
        wandb=wandb_links.attempt_identity(store, ready.run),
        environment=environment(),
        resume_from=ready.resume_from,
        invocation=invocation,
        config_source=ready.config_source,
        launch_environment=launch_variables(),
        metrics_pattern=ready.metrics_pattern,
        **({"set": ready.handed} if ready.handed else {}),
        **({"scheduler": job} if (job := scheduler()) else {}),
        **({"memory_plan": {key: value for key, value in plan.items() if key != "lines"}} if plan else {}),
        **({"nodes": {"count": nodes.count, "main_address": nodes.main_address,
                      "logs": str(node_log_dir(store, run_id))}} if nodes.count > 1 else {}),
    )


def command_and_environment(store: Store, ready: Prepared, attempt_dir: Path, command: list[str] | None,
                            processes: int, nodes: Nodes) -> tuple[list[str], dict, dict]:
    """(the command to run, its environment, the attempt's record): the family's trainer on the attempt's
    config.json when no command was given, recorded on the attempt."""
    builtin = not command
    if builtin:
        command = trainer_command(ready.run["family"], attempt_dir / "config.json", processes, ready.resume_from,
                                  nodes)
    attempt = store.attempts.update(attempt_dir, command=command, builtin_trainer=builtin)
    env = child_environment(store, ready.run, attempt, attempt_dir)
    if builtin:
        env["LAB_AUTOLOG"] = "0"  # the trainer records through the tracker itself: its own options are not config
    env["LAB_CONFIG"] = json.dumps(store.redact(ready.config), sort_keys=True, default=str)
    if ready.handed:
        env[SET_VARIABLE] = json.dumps(store.redact(ready.handed), default=str)
    if ready.resume_from:
        env["LAB_RESUME_FROM"] = ready.resume_from
    return command, env, attempt


def close(store: Store, ready: Prepared, key: str, started_as: int, exit_code: int, commit: bool) -> None:
    """Once the command has ended (its attempt moved into logs/): rows from printed lines, a W&B link that leads
    nowhere dropped, the end-of-attempt health check, the records committed, and one error line for a failure."""
    run_id = ready.run["id"]
    if not store.exists(run_id):
        removed_while_running(store, ready.run, key, started_as, commit)
        return
    number = store.attempt_number(run_id, key) or started_as
    ended_dir = store.attempt_dir(run_id, number)
    steps = [("the rows of printed lines", lambda: printed.record_printed_metrics(ended_dir, ready.metrics_pattern))
             if ready.metrics_pattern else None,
             ("dropping its unused W&B link", lambda: drop_unused_wandb_link(store, ended_dir)),
             ("checking its --set values", lambda: confirm_handed(store, ended_dir)),
             ("its end-of-attempt health check", lambda: report_health(store, run_id, number)),
             ("committing its records", lambda: commit_attempt_records(store, ready.run, number)) if commit else None]
    for what, step in filter(None, steps):
        try:
            step()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            status = read_json(ended_dir / "attempt.json", {}).get("status")
            warn(f"no space left on device: {run_id} Test {number} is recorded {status} (exit {exit_code}) in "
                 f"{ended_dir.relative_to(store.root)}, but {what} and what follows it did not happen; free space, "
                 f"then {'git add logs && git commit' if commit else 'lab log'}")
            break
    if exit_code != 0:
        say(f"error: {run_id} Test {number} {failure(exit_code, ended_dir / 'stdout.log')}; its records are kept "
            f"in {ended_dir.relative_to(store.root)}")


def confirm_handed(store: Store, attempt_dir: Path) -> None:
    """Check that the script ran with the `--set` values it was handed: each must be what the script itself
    reported for that key (argparse, Hydra, tracker.config, W&B config: attempt.json's `set_reported`), never the
    run's config laid under it. The others are kept in attempt.json as `set_unconfirmed`, named in one warning
    (with why, where the script's parser said: `set_unapplied`) and on the pages."""
    record = read_json(attempt_dir / "attempt.json", {})
    if not record.get("set"):
        return
    reported, why = record.get("set_reported") or {}, record.get("set_unapplied") or {}
    unconfirmed = {key: value for key, value in record["set"].items()
                   if not (key in reported and reported[key] == value)}
    if unconfirmed:
        store.attempts.update(attempt_dir, set_unconfirmed=unconfirmed)
        warn(unconfirmed_line(unconfirmed, reported, why, bool(record.get("config_reported")), record.get("exit_code")))


def unconfirmed_line(unconfirmed: dict, reported: dict, why: dict, read_config: bool, exit_code: int | None) -> str:
    """The warning naming `--set` values the script did not report running with, each with what it reported
    instead or why its parser did not take it (or that it ended, `exit_code`, before reporting any config)."""
    if not read_config:
        named = ", ".join(f"{key}={json.dumps(value)}" for key, value in unconfirmed.items())
        read = (f"ended (exit {exit_code}) before it reported a config" if exit_code else
                "read no config the lab could see")
        return (f"the script {read}, so {named} (--set, handed to it in {SET_VARIABLE} and LAB_CONFIG) is not "
                "confirmed as what it ran with")
    parts = []
    for key, value in unconfirmed.items():
        told = f"it reported {key}={json.dumps(reported[key])}" if key in reported else f"it reported no {key}"
        parts.append(f"{key}={json.dumps(value)} ({told}{'; ' + why[key] if key in why else ''})")
    return f"the script's config does not confirm {', '.join(parts)} (--set) as what it ran with"


def removed_while_running(store: Store, run: dict, key: str, number: int, commit: bool) -> None:
    """The run was removed while its attempt ran (`lab rm`, here or on another clone and pulled in): the ended
    attempt is kept with the removed run's archived records (`Place.home`), committed there, and one error line
    says where."""
    home = store.home(run["id"])
    if commit:
        vcs.commit_records_or_say(store.root, [home], f"{run['slug']} test {number} (run removed)",
                                  f"the records of {run['id']} test {number} are in {home}")
    warn(f"{run['id']} was removed while its Test {number} ran; the attempt is kept with the removed run's "
        f"records in {(home / 'attempts' / key).relative_to(store.root)} (it is on no page)")


def launch_seeds(store: Store, run_id: str, seeds: int, command: list[str] | None = None, *,
                 overrides: list[str] = (), note: str | None = None, **options) -> int:
    """`lab launch --seeds N`: the run's built-in trainer N times as N attempts, with train.seed the run's seed,
    +1, ... (each attempt's note says which); returns the first non-zero exit status, else 0. `options` are
    `launch`'s (not `resume`, nor several nodes). LabError (one line) for a launch that cannot take seeds."""
    run = store.runs.load(run_id)
    nodes = options.get("nodes", Nodes())
    if seeds < 1 or command or options.get("resume") or not run.get("family") or nodes.count != 1:
        raise LabError("--seeds N (N >= 1) launches the run's built-in trainer N times, one train.seed each; "
                       "not with a command after --, --resume, --nodes, or a run without a family")
    if any(item.partition("=")[0].strip() == "train.seed" for item in overrides):
        raise LabError("--seeds chooses train.seed itself; drop --set train.seed")
    first = (store.runs.config(run_id).get("train") or {}).get("seed", 0)
    exit_code = 0
    for seed in range(first, first + seeds):
        code = launch(store, run_id, None, overrides=[*overrides, f"train.seed={seed}"],
                      note=f"{note}, seed {seed}" if note else f"seed {seed}", **options)
        exit_code = exit_code or code
    return exit_code


def failure(exit_code: int, log: Path) -> str:
    """How a command ended, in words: its exit status (with the signal's name above 128) and the last line it
    printed, e.g. 'ended with exit 134 (SIGABRT), last printing "free(): invalid pointer"'."""
    words = f"ended with exit {exit_code}"
    with contextlib.suppress(ValueError):
        if exit_code > 128:
            words += f" ({signal.Signals(exit_code - 128).name})"
    try:
        with log.open("rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return f"{words}, last printing {json.dumps(lines[-1][:200], ensure_ascii=False)}" if lines else words


def drop_unused_wandb_link(store: Store, attempt_dir: Path) -> None:
    """An attempt whose command never started W&B (`wandb_started`) keeps no W&B link: it would lead nowhere."""
    wandb = read_json(attempt_dir / "attempt.json", {}).get("wandb")
    if wandb and not wandb_started(store, wandb):
        store.attempts.update(attempt_dir, wandb=None)


def wandb_started(store: Store, wandb: dict) -> bool:
    """Whether the command opened a W&B run for the attempt's W&B record: the capture saw the script's or the
    tracker's `wandb.init` (`started`), the tracker began sending rows to W&B (`mirrored`) or recorded W&B's
    folder, or W&B wrote a local folder with the lab's run id (a run the capture did not see)."""
    return bool(wandb.get("started") or wandb.get("mirrored") or wandb.get("folder")) or \
        wandb_links.local_folder(store, wandb["run_id"]) is not None


def commit_attempt_records(store: Store, run: dict, number: int) -> None:
    """Commit the run's records once its attempt has ended (moved from .git/lab/running into logs/), so that a
    `git push` after the launch shares the attempt. When git is mid-merge or HEAD is detached, the records stay
    on disk, named on stderr, for the next launch's commit."""
    vcs.commit_records_or_say(store.root, [store.run_dir(run["id"])], f"{run['slug']} test {number}",
                              f"the records of {run['id']} test {number} are in {store.run_dir(run['id'])}")


def node_log_dir(store: Store, run_id: str) -> Path:
    """Where the nodes other than node 0 of a run's multi-node launches write their output."""
    return store.artefacts_root / run_id / "nodes"


def run_node(store: Store, run: dict, config: dict, processes: int, resume_from: str | None, nodes: Nodes) -> int:
    """Node `nodes.rank` (> 0) of a multi-node launch: the trainer runs with no records of its own (node 0's
    attempt holds them: metrics, checkpoints and summary come from global rank 0); its config and output go
    to `node_log_dir`, as node<R>_<time>.json and .log, named on stderr. Returns the trainer's exit status."""
    folder = node_log_dir(store, run["id"])
    stem = f"node{nodes.rank}_{time.strftime('%Y%m%d-%H%M%S')}"
    config_path, log_path = folder / f"{stem}.json", folder / f"{stem}.log"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(config_path, store.redact(config))
    command = trainer_command(run["family"], config_path, processes, resume_from, nodes)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "WANDB_RUN_ID"))}
    say(f"node {nodes.rank} of {nodes.count}: output in {log_path} (node 0 records the attempt)")
    log = OutputLog(log_path, store.detector.redact_lines)
    try:
        ended = supervise(command, env, log, _kill_grace(store))
    except OSError as error:
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    if ended.escalated:
        say(f"node {nodes.rank}'s trainer ignored {ended.signal_name} for {ended.escalated:g} s and was "
            "killed")
    if ended.exit_code != 0:
        say(f"error: node {nodes.rank} of {run['id']} {failure(ended.exit_code, log_path)}; its output is "
            f"in {log_path}")
    return ended.exit_code


def remove_stale_temporaries(store: Store, run_id: str) -> None:
    """Delete the half-written files (`.NAME.*.tmp`, from a kill mid-write) that ended attempts of the run
    left in their artefacts folders, naming them on stderr."""
    for attempt in store.attempts.of(run_id):
        folder = attempt.get("artefacts")
        if attempt["status"] == "running" or not folder or not Path(folder).is_dir():
            continue
        for path in Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"):
            path.unlink(missing_ok=True)
            say(f"removed {path}, left half-written by attempt {attempt['number']}")


def report_health(store: Store, run_id: str, number: int) -> None:
    """End-of-attempt health check: record findings the live checks did not, and name them on stderr."""
    from lab.health.diagnosis import diagnose, record_findings

    for finding in record_findings(store, run_id, number, diagnose(store, run_id, number)[1]):
        say(f"health [{finding.rule}] step {finding.step}: {finding.message}")


def mark_wandb_copy(store: Store, attempt_dir: Path, exit_code: int) -> None:
    """Mark W&B's copy of an attempt `incomplete` (and say so) when the script logged metrics but W&B did not
    finish with all of them (the tracker, or the capture of a script's own `run.finish()`, marks a finished copy
    `complete`): os._exit, SIGKILL, W&B off midway. A script's own W&B run that exits normally without calling
    `finish` is finished by W&B's exit hook, which the lab does not see: no mark either way."""
    wandb = read_json(attempt_dir / "attempt.json", {}).get("wandb")
    metrics = attempt_dir / "metrics.jsonl"
    if not wandb or wandb.get("copy") == "complete" or not metrics.is_file() or not metrics.stat().st_size or \
            not wandb_started(store, wandb):  # rows from TensorBoard or printed lines: W&B has no copy to miss
        return
    if wandb.get("writer") == "script" and exit_code == 0:
        return
    store.attempts.update(attempt_dir, wandb={**wandb, "copy": "incomplete"})
    warn("W&B's copy of this attempt is incomplete (the script ended before W&B had every row); the "
         "lab's own records are whole")


def _kill_grace(store: Store) -> float:
    return float(store.settings.get("launch", {}).get("kill_grace_seconds", KILL_GRACE_SECONDS))


def _run_and_record(store: Store, attempt_dir: Path, command: list[str], env: dict) -> int:
    """Run `command` under `supervise`, tee its output to stdout.log, and record how it ended.

    A child still alive `launch.kill_grace_seconds` (lab.json) after a stop signal is killed, and the attempt
    records that it was. The attempt ends when the command does: processes it left running are named on the
    attempt (`left_running`) and on stderr, not waited for.
    """
    section = store.settings.get("launch", {})
    log = OutputLog(attempt_dir / "stdout.log", store.detector.redact_lines,
                    head_bytes=int(float(section.get("output_head_mb", HEAD_MB)) * MB),
                    tail_bytes=int(float(section.get("output_tail_mb", TAIL_MB)) * MB))
    def record_child(pid: int) -> None:  # a record that cannot be written must not stop the command
        try:
            store.attempts.update(attempt_dir, child_pid=pid)
        except (OSError, LabError) as error:
            warn(f"the attempt does not name the command's pid {pid} "
                 f"({getattr(error, 'strerror', None) or error}); the command runs on")

    try:
        ended = supervise(command, env, log, _kill_grace(store), on_start=record_child)
    except OSError as error:
        store.attempts.end(attempt_dir, exit_code=127, status="failed")
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    except BaseException:
        store.attempts.end(attempt_dir, exit_code=None, status="failed")
        raise
    exit_code, left = ended.exit_code, ended.left
    if ended.code == 0:
        status = "finished"
    else:
        status = "killed" if ended.interrupted or ended.code < 0 else "failed"
    if ended.interrupted:
        stop = {"signal": ended.signal_name}
        if ended.escalated:
            stop["escalated"] = f"SIGKILL after {ended.escalated:g} s"
            say(f"the command ignored {stop['signal']} for {ended.escalated:g} s and was killed")
        store.attempts.update(attempt_dir, stopped_by=stop)
    if left:
        left = [{**item, "command": store.detector.redact(item["command"])} for item in left]
        store.attempts.update(attempt_dir, left_running=left)
        named = ", ".join(f"pid {item['pid']}: {item['command'][:80]}" for item in left[:3])
        say(f"the command exited but left {len(left)} process{'es' if len(left) > 1 else ''} running "
            f"({named}); the attempt is closed without them. Stop them with `kill -- -{ended.pid}`")
    mark_wandb_copy(store, attempt_dir, exit_code)
    end_attempt(store, attempt_dir, exit_code, status, ended.log_error)
    return exit_code


def end_attempt(store: Store, attempt_dir: Path, exit_code: int, status: str, log_error: OSError | None) -> None:
    """Close the attempt as `status`; say how many rows a full disk cost the script (attempt.json `rows_lost`)
    and whether stdout.log stopped early. LabError where the disk is too full even to close it."""
    try:
        lost = store.attempts.end(attempt_dir, exit_code=exit_code, status=status).get("rows_lost", 0)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise LabError(f"no space left on device: the command ended ({status}, exit {exit_code}) but its attempt "
                       f"could not be closed; its records are in {attempt_dir} (the next lab command after space is "
                       "freed marks it crashed)") from None
    if lost:
        warn(f"no space left on device: {lost} row{'s' if lost > 1 else ''} the script logged could not be written "
             f"to metrics.jsonl (attempt.json rows_lost)")
    if log_error is not None:
        warn(f"stdout.log stopped early ({log_error.strerror or log_error})" +
             ("" if lost else "; the attempt's other records are complete"))
