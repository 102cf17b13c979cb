"""Launching an attempt: git capture, W&B identity, environment, tee'd output, exit status.

Works for any command (`lab launch ID -- python train.py ...`) and for a family's built-in trainer.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lab.capture import vcs, wandb_links
from lab.errors import LabError
from lab.families import registry
from lab.records.config import apply_overrides, arguments_config
from lab.records.files import TEMPORARY_SUFFIX, write_json, write_text
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


def trainer_command(family: str, config_path: Path, processes: int, resume: str | None) -> list[str]:
    """The argv that trains `family` (its spec's `trainer_command`); LabError when it cannot run here."""
    spec = registry.get(family)
    spec.check_installed()
    if spec.trainer_command is None:
        raise LabError(f"the {family} family has no trainer to launch; pass a command after --")
    try:
        return spec.trainer_command(family, str(config_path), processes=processes, resume=resume)
    except ValueError as error:
        raise LabError(str(error)) from None


def child_environment(store: Store, run: dict, attempt: dict, attempt_dir: Path) -> dict:
    """The launcher's environment plus the lab and W&B variables of this attempt."""
    env = dict(os.environ)
    env.update(
        LAB_RUN_ID=run["id"],
        LAB_ATTEMPT=str(attempt["number"]),
        LAB_ATTEMPT_DIR=str(attempt_dir),
        LAB_ARTEFACTS_DIR=attempt["artefacts"],
        LAB_ROOT=str(store.root),
    )
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
) -> int:
    """Run `command` (or the family's trainer) as a new attempt of `run_id`; returns its exit status.

    Everything that can be checked is checked before the commit; once the attempt is open, any failure to
    start it still closes it as `failed`.
    """
    run = store.load_run(run_id)
    if run.get("family"):
        config = registry.get(run["family"]).resolve(base=store.run_config(run_id), overrides=list(overrides))
    else:
        config = apply_overrides(store.run_config(run_id), list(overrides)) or arguments_config(command or [])
    if not command and not run.get("family"):
        raise LabError(f"run {run_id} has no family, so there is no built-in trainer: give a command after --")
    if command and processes != 1:
        raise LabError("--processes is for the built-in trainer; wrap your own command, e.g. -- accelerate launch ...")
    if processes < 1:
        raise LabError("--processes must be at least 1")
    if run.get("family") and not command and (missing := registry.get(run["family"]).missing_data(config)):
        raise LabError(f"{', '.join(missing)}: no such file or folder; point it at your data with "
                       f"lab launch {run_id} --set KEY=PATH (nothing was launched)")
    remove_stale_temporaries(store, run_id)
    resume_from = store.latest_checkpoint(run_id, "last") if resume else None
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
    )
    try:
        write_json(attempt_dir / "config.json", store.redact(config))
        if dirty_diff:
            write_text(attempt_dir / "dirty.diff", dirty_diff)
        builtin = not command
        if builtin:
            command = trainer_command(run["family"], attempt_dir / "config.json", processes, resume_from)
        attempt = store.update_attempt(attempt_dir, command=command, builtin_trainer=builtin)
        env = child_environment(store, run, attempt, attempt_dir)
        env["LAB_CONFIG"] = json.dumps(store.redact(config), sort_keys=True, default=str)
        if resume_from:
            env["LAB_RESUME_FROM"] = resume_from
    except BaseException:
        store.end_attempt(attempt_dir, exit_code=None, status="failed")
        raise
    exit_code = _run_and_record(store, attempt_dir, command, env)
    report_health(store, run_id, attempt["number"])
    return exit_code


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


LOG_LINE_LIMIT = 65536  # a line longer than this (no newline yet) is written to the log in pieces


def _tee(process: subprocess.Popen, log_path: Path, redact) -> OSError | None:
    """Copy the child's output to the terminal as it comes and to stdout.log line by line with secrets
    redacted. A closed terminal never stops the log, and a log that cannot be written (a full disk) never
    stops the child: the output is still drained, and the error is returned."""
    terminal = sys.stdout.buffer
    pending = b""
    log_error = None
    with open(log_path, "ab") as log:

        def write_log(data: bytes) -> None:
            nonlocal log_error
            if log_error is None:
                try:
                    log.write(redact(data.decode("utf-8", errors="replace")).encode("utf-8"))
                    log.flush()
                except OSError as error:
                    log_error = error

        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            pending += chunk
            end = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
            if end == 0 and len(pending) > LOG_LINE_LIMIT:
                end = len(pending)
            if end:
                write_log(pending[:end])
                pending = pending[end:]
            if terminal is not None:
                try:
                    terminal.write(chunk)
                    terminal.flush()
                except OSError:
                    terminal = None
        if pending:
            write_log(pending)
        with contextlib.suppress(OSError):
            log.close()
    return log_error


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


def _run_and_record(store: Store, attempt_dir: Path, command: list[str], env: dict) -> int:
    """Run `command` in its own process group, tee its output to stdout.log, and record how it ended.

    SIGINT, SIGTERM and SIGHUP to the launcher are passed on to the child's group; a child still alive
    `launch.kill_grace_seconds` (lab.json) later is killed, and the attempt records that it was.
    """
    grace = float(store.settings.get("launch", {}).get("kill_grace_seconds", KILL_GRACE_SECONDS))
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)
        if len(interrupted) == 1:
            threading.Thread(target=escalate, daemon=True).start()

    def escalate():
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            escalated.append(grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    escalated: list[float] = []
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_parent)
    except OSError as error:
        store.end_attempt(attempt_dir, exit_code=127, status="failed")
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    store.update_attempt(attempt_dir, child_pid=process.pid)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    log_error = None
    try:
        log_error = _tee(process, attempt_dir / "stdout.log", store.detector.redact)
    finally:
        code = process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if code == 0:
            status = "finished"
        else:
            status = "killed" if interrupted or code < 0 else "failed"
        exit_code = code if code >= 0 else 128 - code
        if interrupted:
            stop = {"signal": signal.Signals(interrupted[0]).name}
            if escalated:
                stop["escalated"] = f"SIGKILL after {escalated[0]:g} s"
                print(f"lab: the command ignored {stop['signal']} for {escalated[0]:g} s and was killed",
                      file=sys.stderr)
            store.update_attempt(attempt_dir, stopped_by=stop)
        store.end_attempt(attempt_dir, exit_code=exit_code, status=status)
    if log_error is not None:
        print(f"lab: warning: stdout.log stopped early ({log_error.strerror or log_error}); the attempt's other "
              "records are complete", file=sys.stderr)
    return exit_code
