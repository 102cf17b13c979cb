"""Launching an attempt: git capture, W&B identity, environment, tee'd output, exit status.

Works for any command (`lab launch ID -- python train.py ...`) and for a family's built-in trainer.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import importlib.metadata
import json
import os
import platform
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.capture import autolog, printed, vcs, wandb_links
from lab.capture.output import HEAD_MB, MB, TAIL_MB, OutputLog
from lab.errors import LabError
from lab.families import registry
from lab.records.config import apply_overrides, arguments_config
from lab.records.files import TEMPORARY_SUFFIX, read_json, write_json, write_text
from lab.records.store import Store


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
    first on PYTHONPATH (lab.capture.autolog), and REPRODUCE_DEFAULTS where the environment has none."""
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
        env["WANDB_MODE"] = wandb["mode"]
        env.setdefault("WANDB_SILENT", "true")  # W&B's banners only when the researcher asks (WANDB_SILENT=false)
        wandb_links.local_dir(store).mkdir(parents=True, exist_ok=True)
    return env


def launch_variables() -> dict:
    """The variables a launch sets for the command that the researcher did not export (the report's Reproduce
    section carries them)."""
    return {key: value for key, value in REPRODUCE_DEFAULTS.items() if key not in os.environ}


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

    Everything that can be checked is checked before the commit; once the attempt is open, any failure to
    start it still closes it as `failed`. `metrics_pattern` (else lab.json's `capture.metrics_pattern`) turns
    printed lines into rows (lab.capture.printed). `memory_plan(config, devices)` sizes the built-in trainer's
    run per device (its lines go to stderr, the plan into the attempt). On `nodes` other than node 0 the trainer
    runs without records (`run_node`).
    """
    run = store.load_run(run_id)
    if run.get("family"):
        config = registry.get(run["family"]).resolve(base=store.run_config(run_id), overrides=list(overrides))
    else:
        config = apply_overrides(store.run_config(run_id), list(overrides))
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
    resume_from = store.latest_checkpoint(run_id, "last") if resume else None
    if nodes.rank > 0:
        return run_node(store, run, config, processes, resume_from, nodes)
    plan = memory_plan(config, processes * nodes.count) if memory_plan and not command else None
    for line in (plan or {}).get("lines", []):
        print(f"lab: {line}", file=sys.stderr)
    remove_stale_temporaries(store, run_id)
    for other in store.attempts(run_id):
        if other["status"] == "running":
            print(f"lab: warning: Test {other['number']} of {run_id} is still running (pid {other.get('pid')} on "
                  f"{other.get('host')}); this launch runs beside it", file=sys.stderr)

    if commit:
        policy = vcs.CapturePolicy.from_settings(store.settings)
        git_info = vcs.commit_working_tree(store.root, run["slug"], policy=policy, records_dir=store.logs_dir)
        dirty_diff = ""
    else:
        git_info, dirty_diff = vcs.dirty_state(store.root, store.detector)

    attempt_dir = store.begin_attempt(
        run_id,
        command=list(command or []),
        pid=os.getpid(),
        note=note,
        overrides=list(overrides),
        git=git_info,
        wandb=wandb_links.attempt_identity(store, run),
        environment=environment(),
        resume_from=resume_from,
        invocation=invocation,
        config_source=config_source,
        launch_environment=launch_variables(),
        metrics_pattern=metrics_pattern,
        **({"memory_plan": {key: value for key, value in plan.items() if key != "lines"}} if plan else {}),
        **({"nodes": {"count": nodes.count, "main_address": nodes.main_address,
                      "logs": str(node_log_dir(store, run_id))}} if nodes.count > 1 else {}),
    )
    try:
        write_json(attempt_dir / "config.json", store.redact(config))
        if dirty_diff:
            write_text(attempt_dir / "dirty.diff", dirty_diff)
        builtin = not command
        if builtin:
            command = trainer_command(run["family"], attempt_dir / "config.json", processes, resume_from, nodes)
        attempt = store.update_attempt(attempt_dir, command=command, builtin_trainer=builtin)
        env = child_environment(store, run, attempt, attempt_dir)
        if builtin:
            env["LAB_AUTOLOG"] = "0"  # the trainer records through the tracker itself: its own options are not config
        env["LAB_CONFIG"] = json.dumps(store.redact(config), sort_keys=True, default=str)
        if resume_from:
            env["LAB_RESUME_FROM"] = resume_from
    except BaseException:
        store.end_attempt(attempt_dir, exit_code=None, status="failed")
        raise
    exit_code = _run_and_record(store, attempt_dir, command, env)
    number = store.attempt_number(run_id, attempt_dir.name) or attempt["number"]
    ended_dir = store.attempt_dir(run_id, number)  # the attempt has moved from the running folder into logs/
    if metrics_pattern:
        printed.record_printed_metrics(ended_dir, metrics_pattern)
    drop_unused_wandb_link(store, ended_dir)
    report_health(store, run_id, number)
    if commit:
        commit_attempt_records(store, run, number)
    if exit_code != 0:
        print(f"lab: error: {run_id} Test {number} {failure(exit_code, ended_dir / 'stdout.log')}; its records are "
              f"kept in {ended_dir.relative_to(store.root)}", file=sys.stderr)
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
    """An attempt whose command never started W&B (no W&B run reported by the capture, no copy the lab's mirror
    had to send, no local W&B folder with the lab's run id) keeps no W&B link: it would lead nowhere."""
    record = read_json(attempt_dir / "attempt.json", {})
    wandb = record.get("wandb")
    if wandb and not wandb.get("started") and not wandb.get("copy") and \
            wandb_links.local_folder(store, wandb["run_id"]) is None:
        store.update_attempt(attempt_dir, wandb=None)


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
    print(f"lab: node {nodes.rank} of {nodes.count}: output in {log_path} (node 0 records the attempt)",
          file=sys.stderr)
    log = OutputLog(log_path, store.detector.redact_lines)
    try:
        ended = supervise(command, env, log, _kill_grace(store))
    except OSError as error:
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    if ended.escalated:
        print(f"lab: node {nodes.rank}'s trainer ignored {ended.signal_name} for {ended.escalated:g} s and was "
              "killed", file=sys.stderr)
    if ended.exit_code != 0:
        print(f"lab: error: node {nodes.rank} of {run['id']} {failure(ended.exit_code, log_path)}; its output is "
              f"in {log_path}", file=sys.stderr)
    return ended.exit_code


def remove_stale_temporaries(store: Store, run_id: str) -> None:
    """Delete the half-written files (`.NAME.*.tmp`, from a kill mid-write) that ended attempts of the run
    left in their artefacts folders, naming them on stderr."""
    for attempt in store.attempts(run_id):
        folder = attempt.get("artefacts")
        if attempt["status"] == "running" or not folder or not Path(folder).is_dir():
            continue
        for path in Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"):
            path.unlink(missing_ok=True)
            print(f"lab: removed {path}, left half-written by attempt {attempt['number']}", file=sys.stderr)


def report_health(store: Store, run_id: str, number: int) -> None:
    """End-of-attempt health check: record findings the live checks did not, and name them on stderr."""
    from lab.health.diagnosis import diagnose, record_findings

    for finding in record_findings(store, run_id, number, diagnose(store, run_id, number)[1]):
        print(f"lab: health [{finding.rule}] step {finding.step}: {finding.message}", file=sys.stderr)


READ_BYTES = 1 << 20  # one read from the child's pipe; the pipe itself is raised to this size where Linux allows
BLOCK_BYTES = 4 << 20  # output gathered before the log writer takes it, so the redaction runs on large blocks
DRAIN_SECONDS = 1.0  # after the command exits, how long its output is still read (a child it left may hold the pipe)
QUIET_SECONDS = 0.05  # ... stopping sooner once the pipe has nothing more to give


class TextTerminal:
    """A text stream without a byte side (a StringIO given to `lab.cli.main`) taking the child's output as bytes:
    UTF-8, a character split between two reads decoded once whole, undecodable bytes replaced."""

    def __init__(self, stream):
        self.stream, self.decoder = stream, codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, chunk: bytes) -> None:
        self.stream.write(self.decoder.decode(chunk))

    def flush(self) -> None:
        self.stream.flush()


def _tee(process: subprocess.Popen, log: OutputLog) -> None:
    """Copy the child's output to the terminal as it comes, and hand it to `log` in a thread of its own, so the
    log's work never holds the child's pipe back. Returns once the command has exited and its output is read:
    a process it left behind holding the pipe open does not keep the attempt open. A closed terminal never stops
    the log, and a log that cannot be written (a full disk) never stops the child."""
    terminal = getattr(sys.stdout, "buffer", None) or TextTerminal(sys.stdout)
    handed: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def write_log() -> None:
        while (chunk := handed.get()) is not None:
            blocks = [chunk]
            while sum(map(len, blocks)) < BLOCK_BYTES and not handed.empty():
                if (chunk := handed.get()) is None:
                    log.feed(b"".join(blocks))
                    return
                blocks.append(chunk)
            log.feed(b"".join(blocks))

    writer = threading.Thread(target=write_log, name="lab-stdout-log")
    writer.start()
    pipe = process.stdout.fileno()
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, READ_BYTES)
    poller = select.poll()
    poller.register(pipe, select.POLLIN)
    drain_until = None
    try:
        while True:
            if drain_until is None and process.poll() is not None:
                drain_until = time.monotonic() + DRAIN_SECONDS
            if not poller.poll(200 if drain_until is None else QUIET_SECONDS * 1000):
                if drain_until is None:
                    continue
                break
            chunk = os.read(pipe, READ_BYTES)
            if not chunk:
                break
            handed.put(chunk)
            if terminal is not None:
                try:
                    terminal.write(chunk)
                    terminal.flush()
                except OSError:
                    terminal = None
            if drain_until is not None and time.monotonic() > drain_until:
                break
    finally:
        handed.put(None)
        writer.join()


def _left_running(group: int) -> list[dict]:
    """The live processes (zombies aside) still in process group `group`: [{"pid", "command"}] from /proc
    (Linux), or one entry without a pid where only `killpg(group, 0)` can tell."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [{"pid": None, "command": f"process group {group}"}]
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group or fields[0] == "Z":
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        found.append({"pid": int(entry.name), "command": command})
    return sorted(found, key=lambda item: item["pid"])


LEFTOVER_GRACE_SECONDS = 1.0  # how long processes of the group may take to exit after the command before they count


def _leftovers(group: int) -> list[dict]:
    """What the command left running in its process group, after giving it LEFTOVER_GRACE_SECONDS to exit."""
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while (found := _left_running(group)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


KILL_GRACE_SECONDS = 30  # after a forwarded stop signal, how long the child has before it is killed


def _die_with_parent() -> None:
    """In the child before exec: its own process group (signals reach the trainer's workers too), SIGINT's
    default action (a launcher started in the background by a script inherits SIGINT ignored, and would pass
    that on, so the interrupt it forwards would do nothing), and a SIGKILL when the launcher dies, so a killed
    launcher leaves no orphan writing into its attempt."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


def mark_wandb_copy(store: Store, attempt_dir: Path, exit_code: int) -> None:
    """Mark W&B's copy of an attempt `incomplete` (and say so) when the script logged metrics but W&B did not
    finish with all of them (the tracker, or the capture of a script's own `run.finish()`, marks a finished copy
    `complete`): os._exit, SIGKILL, W&B off midway. A script's own W&B run that exits normally without calling
    `finish` is finished by W&B's exit hook, which the lab does not see: no mark either way."""
    wandb = read_json(attempt_dir / "attempt.json", {}).get("wandb")
    metrics = attempt_dir / "metrics.jsonl"
    if not wandb or wandb.get("copy") == "complete" or not metrics.is_file() or not metrics.stat().st_size:
        return
    if wandb.get("writer") == "script" and exit_code == 0:
        return
    store.update_attempt(attempt_dir, wandb={**wandb, "copy": "incomplete"})
    print("lab: warning: W&B's copy of this attempt is incomplete (the script ended before W&B had every row); the "
          "lab's own records are whole", file=sys.stderr)


@dataclass
class Ended:
    """How a supervised command ended: its exit status as a shell reports it (128 + N for signal N), the stop
    signals the launcher passed on, the grace after which it was killed (None: it stopped by itself), what the
    output log reported on closing, and the processes it left running in its group (`pid`)."""

    pid: int
    code: int
    interrupted: list[int]
    escalated: float | None
    log_error: OSError | None
    left: list[dict]

    @property
    def exit_code(self) -> int:
        return self.code if self.code >= 0 else 128 - self.code

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.interrupted[0]).name if self.interrupted else None


def _kill_grace(store: Store) -> float:
    return float(store.settings.get("launch", {}).get("kill_grace_seconds", KILL_GRACE_SECONDS))


def supervise(command: list[str], env: dict, log: OutputLog, grace: float, on_start=None) -> Ended:
    """Run `command` in its own process group, tee its output to `log`, and return how it ended.

    SIGINT, SIGTERM and SIGHUP to the launcher are passed on to the child's group (with any process the command
    started); a child still alive `grace` seconds after the first is killed. `on_start(pid)` is called once the
    child runs. OSError when the command cannot start (the log is closed).
    """
    interrupted: list[int] = []
    escalated: list[float] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        if len(interrupted) == 1:
            threading.Thread(target=escalate, daemon=True).start()

    def escalate():
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            escalated.append(grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_parent)
    except OSError:
        log.close()
        raise
    if on_start:
        on_start(process.pid)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _tee(process, log)
    finally:
        code = process.wait()
        process.stdout.close()
        log_error = log.close()
        left = _leftovers(process.pid)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return Ended(process.pid, code, interrupted, escalated[0] if escalated else None, log_error, left)


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
            store.update_attempt(attempt_dir, child_pid=pid)
        except (OSError, LabError) as error:
            print(f"lab: warning: the attempt does not name the command's pid {pid} "
                  f"({getattr(error, 'strerror', None) or error}); the command runs on", file=sys.stderr)

    try:
        ended = supervise(command, env, log, _kill_grace(store), on_start=record_child)
    except OSError as error:
        store.end_attempt(attempt_dir, exit_code=127, status="failed")
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    except BaseException:
        store.end_attempt(attempt_dir, exit_code=None, status="failed")
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
            print(f"lab: the command ignored {stop['signal']} for {ended.escalated:g} s and was killed",
                  file=sys.stderr)
        store.update_attempt(attempt_dir, stopped_by=stop)
    if left:
        left = [{**item, "command": store.detector.redact(item["command"])} for item in left]
        store.update_attempt(attempt_dir, left_running=left)
        named = ", ".join(f"pid {item['pid']}: {item['command'][:80]}" for item in left[:3])
        print(f"lab: the command exited but left {len(left)} process{'es' if len(left) > 1 else ''} running "
              f"({named}); the attempt is closed without them. Stop them with `kill -- -{ended.pid}`",
              file=sys.stderr)
    mark_wandb_copy(store, attempt_dir, exit_code)
    store.end_attempt(attempt_dir, exit_code=exit_code, status=status)
    if ended.log_error is not None:
        problem = ended.log_error.strerror or ended.log_error
        print(f"lab: warning: stdout.log stopped early ({problem}); the attempt's other records are complete",
              file=sys.stderr)
    return exit_code
