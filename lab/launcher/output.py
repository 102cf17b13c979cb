"""An attempt's stdout.log: what a terminal would show, capped, with secrets redacted.

    log = OutputLog(path, detector.redact_lines, head_bytes=5_000_000, tail_bytes=5_000_000)
    log.feed(chunk)     # any piece of the child's output, as it comes
    log.close()         # -> the OSError that stopped the log early (a full disk), or None

Carriage-return redraws (tqdm, download bars) are collapsed the way a terminal overprints them, so a bar redrawn
700,000 times is one line. Past `head_bytes`, lines are only counted while the last `tail_bytes` are kept in
memory; `close` writes them after one line saying how much was left out. Only what is kept is redacted, so a flood
costs little more than copying it. Set in lab.json: {"launch": {"output_head_mb": 5, "output_tail_mb": 5}}.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable

MB = 1_000_000
LINE_LIMIT = 65536  # a line longer than this (no newline yet, after collapsing redraws) is written in pieces
HEAD_MB = TAIL_MB = 5.0


def overprint(line: bytes) -> bytes:
    """One line (no newline) as a terminal shows it: each carriage return goes back to column 0 and the text
    after it overwrites what was there, character by character (UTF-8 decoded; bytes that are not UTF-8 kept)."""
    if b"\r" not in line:
        return line
    pieces = line.decode("utf-8", errors="surrogateescape").split("\r")
    shown = pieces[-1]
    if max(map(len, pieces)) > len(shown):  # an earlier, longer draw still shows past the end of a later one
        for piece in reversed(pieces):
            if len(piece) > len(shown):
                shown += piece[len(shown):]
    return shown.encode("utf-8", errors="surrogateescape")


def overprint_lines(block: bytes) -> bytes:
    """`overprint` applied to every line of `block`."""
    if b"\r" not in block:
        return block
    return b"\n".join(overprint(line) for line in block.split(b"\n"))


class OutputLog:
    """Appends a child's output to `path` as a terminal shows it, keeping the first `head_bytes` and the last
    `tail_bytes` (cut at line ends) and redacting what it keeps with `redact` (bytes of whole lines -> bytes)."""

    def __init__(self, path: Path, redact: Callable[[bytes], bytes], *, head_bytes: int = int(HEAD_MB * MB),
                 tail_bytes: int = int(TAIL_MB * MB)):
        self.stream = open(path, "ab")
        self.redact, self.head_room, self.tail_bytes = redact, head_bytes, tail_bytes
        self.pending = b""  # the line being written (no newline yet)
        self.tail: deque[bytes] = deque()
        self.tail_size = self.dropped_bytes = self.dropped_lines = 0
        self.error: OSError | None = None

    def feed(self, data: bytes) -> None:
        """Take any piece of output; whole lines are written (or kept for the tail) at once."""
        self.pending += data
        end = self.pending.rfind(b"\n") + 1
        block, self.pending = self.pending[:end], self.pending[end:]
        if len(self.pending) > LINE_LIMIT:
            self.pending = overprint(self.pending)
            if len(self.pending) > LINE_LIMIT:
                block, self.pending = block + self.pending, b""
        if block:
            self._keep(overprint_lines(block))

    def close(self) -> OSError | None:
        """Write the unfinished line and the tail (after a line counting what was left out); the error, if any."""
        if self.pending:
            self._keep(overprint(self.pending))
        if self.tail:
            tail = b"".join(self.tail)
            if len(tail) > self.tail_bytes:
                cut = tail.find(b"\n", len(tail) - self.tail_bytes - 1) + 1 or len(tail) - self.tail_bytes
                self._drop(tail[:cut])
                tail = tail[cut:]
            if self.dropped_bytes:
                self._write(f"[lab: {self.dropped_lines:,} lines ({self.dropped_bytes / MB:,.1f} MB) of output left "
                            "out here; the terminal showed them]\n".encode())
            self._write(self.redact(tail))
        try:
            self.stream.close()
        except OSError as error:
            self.error = self.error or error
        return self.error

    def _keep(self, block: bytes) -> None:
        if self.head_room > 0:
            cut = len(block)
            if cut > self.head_room:  # the head ends at the last whole line that fits
                cut = block.rfind(b"\n", 0, self.head_room) + 1
            self.head_room -= cut
            self._write(self.redact(block[:cut]))
            block = block[cut:]
            if not block:
                return
            self.head_room = 0
        self.tail.append(block)
        self.tail_size += len(block)
        while self.tail_size - len(self.tail[0]) >= self.tail_bytes:
            self.tail_size -= len(self.tail[0])
            self._drop(self.tail.popleft())

    def _drop(self, block: bytes) -> None:
        self.dropped_bytes += len(block)
        self.dropped_lines += block.count(b"\n")

    def _write(self, data: bytes) -> None:
        if self.error is None and data:
            try:
                self.stream.write(data)
                self.stream.flush()
            except OSError as error:
                self.error = error
