"""The launched command as a process: started in its own process group (signals reach the workers it starts),
its output copied to the terminal and to stdout.log as it comes, SIGINT, SIGTERM and SIGHUP passed on with a
kill after a grace, and what it left running when it exited.

    ended = supervise(["python", "train.py"], env, OutputLog(path, redact), grace=30)
    ended.exit_code, ended.interrupted, ended.escalated, ended.left

Knows nothing of runs and attempts: `lab.launcher.launch` records what `supervise` returns.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lab.launcher.output import OutputLog

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


