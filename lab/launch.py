"""Launching an attempt: git capture, W&B identity, environment, tee'd output, exit status.

Works for any command (`lab launch ID -- python train.py ...`) and for a family's built-in trainer.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from lab import vcs, wandb_links
from lab.config import apply_overrides
from lab.records import write_json, write_text
from lab.store import LabError, Store
from trainers import registry

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
    from trainers.launch import launch_command

    try:
        return launch_command(family, str(config_path), processes=processes, resume=resume)
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
        config = apply_overrides(store.run_config(run_id), list(overrides))
    if not command and not run.get("family"):
        raise LabError(f"run {run_id} has no family, so there is no built-in trainer: give a command after --")
    if command and processes != 1:
        raise LabError("--processes is for the built-in trainer; wrap your own command, e.g. -- accelerate launch ...")
    if processes < 1:
        raise LabError("--processes must be at least 1")
    resume_from = store.latest_checkpoint(run_id, "last") if resume else None

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
        if resume_from:
            env["LAB_RESUME_FROM"] = resume_from
    except BaseException:
        store.end_attempt(attempt_dir, exit_code=None, status="failed")
        raise
    exit_code = _run_and_record(store, attempt_dir, command, env)
    report_health(store, run_id, attempt["number"])
    return exit_code


def report_health(store: Store, run_id: str, number: int) -> None:
    """End-of-attempt health check: record findings the live checks did not, and name them on stderr."""
    from lab.reports import diagnose, record_findings

    for finding in record_findings(store, run_id, number, diagnose(store, run_id, number)[1]):
        print(f"lab: health [{finding.rule}] step {finding.step}: {finding.message}", file=sys.stderr)


LOG_LINE_LIMIT = 65536  # a line longer than this (no newline yet) is written to the log in pieces


def _tee(process: subprocess.Popen, log_path: Path, redact) -> None:
    """Copy the child's output to the terminal as it comes and to stdout.log line by line with secrets
    redacted; a closed terminal never stops the log."""
    terminal = sys.stdout.buffer
    pending = b""
    with open(log_path, "ab") as log:
        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            pending += chunk
            end = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
            if end == 0 and len(pending) > LOG_LINE_LIMIT:
                end = len(pending)
            if end:
                log.write(redact(pending[:end].decode("utf-8", errors="replace")).encode("utf-8"))
                log.flush()
                pending = pending[end:]
            if terminal is not None:
                try:
                    terminal.write(chunk)
                    terminal.flush()
                except OSError:
                    terminal = None
        if pending:
            log.write(redact(pending.decode("utf-8", errors="replace")).encode("utf-8"))


def _run_and_record(store: Store, attempt_dir: Path, command: list[str], env: dict) -> int:
    """Run `command`, tee its output to stdout.log, and record how it ended."""
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        if signum != signal.SIGINT and process.poll() is None:
            process.send_signal(signum)

    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as error:
        store.end_attempt(attempt_dir, exit_code=127, status="failed")
        raise LabError(f"cannot start {command[0]!r}: {error.strerror}") from None
    store.update_attempt(attempt_dir, child_pid=process.pid)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _tee(process, attempt_dir / "stdout.log", store.detector.redact)
    finally:
        code = process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if interrupted or code < 0:
            status = "killed"
        else:
            status = "finished" if code == 0 else "failed"
        exit_code = code if code >= 0 else 128 - code
        store.end_attempt(attempt_dir, exit_code=exit_code, status=status)
    return exit_code
