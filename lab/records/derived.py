"""Values derived from the records, kept so that reading a large lab does not redo them: a key-value table in
SQLite (the standard library's) at `.git/lab/derived.sqlite`, out of git, one per clone.

The records stay the only source of truth. A value's `version` names everything it was derived from (the files'
versions, the code that derived it), so a changed record or a new version of the lab simply misses and the
value is derived again; a missing, locked or corrupt database is a cache that answers nothing (and a corrupt one is
deleted and made again), never an error.

    derived = Derived(store.lab_dir / "derived.sqlite")
    value = derived.get("summary", "nsd_001/20261130T145123Z-1a2b3c4d", version)   # None: absent or stale
    derived.put("summary", "nsd_001/20261130T145123Z-1a2b3c4d", version, {"rows": [...]})

One value is kept per (kind, name): a new `version` replaces the old, so the database grows with the lab, not
with its history.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

TIMEOUT_S = 2.0  # a writer holding the database longer than this: answer from the records instead


@functools.cache
def lab_code() -> str:
    """A digest of the lab's own code (every module file's path, mtime and size), part of every derived value's
    version: a new version of the lab derives everything again."""
    package = Path(__file__).resolve().parents[1]
    files = [[str(path.relative_to(package)), os.stat(path).st_mtime_ns, os.stat(path).st_size]
             for path in sorted(package.rglob("*.py"))]
    return hashlib.sha1(json.dumps(files).encode()).hexdigest()


class Derived:
    """Derived values by (kind, key), JSON-serialisable; see the module docstring."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=TIMEOUT_S, isolation_level=None)
                connection.execute("pragma synchronous=off")  # a cache: a crash loses a value, never a record
                connection.execute("create table if not exists derived (kind text, name text, version text, "
                                   "value text, primary key (kind, name))")
                self._connection = connection
            except sqlite3.DatabaseError:
                self._reset()
            except (OSError, sqlite3.Error):
                self._broken = True  # a read-only clone, a full disk: derive everything, keep nothing
        return self._connection

    def _reset(self) -> None:
        """Delete a corrupt database; the next call makes a new one."""
        with contextlib.suppress(OSError):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._connection = None

    def get(self, kind: str, name: str, version: str) -> Any:
        """The value kept for (kind, name) when it was derived from `version`, else None."""
        connection = self._connect()
        if connection is None:
            return None
        try:
            row = connection.execute("select value from derived where kind = ? and name = ? and version = ?",
                                     (kind, name, version)).fetchone()
            return json.loads(row[0]) if row else None
        except (sqlite3.Error, ValueError):
            return None

    def every(self, kind: str) -> dict[str, tuple[str, Any]]:
        """{name: (version, value)} of every value kept of `kind` (one query, for a reader that checks many);
        empty when the database cannot be read."""
        connection = self._connect()
        if connection is None:
            return {}
        try:
            rows = connection.execute("select name, version, value from derived where kind = ?", (kind,)).fetchall()
            return {name: (version, json.loads(value)) for name, version, value in rows}
        except (sqlite3.Error, ValueError):
            return {}

    def put(self, kind: str, name: str, version: str, value: Any) -> None:
        """Keep `value` (derived from `version`) for (kind, name); silently nothing when the database cannot be
        written now or the value is not JSON."""
        connection = self._connect()
        if connection is None:
            return
        try:
            connection.execute("insert or replace into derived values (?, ?, ?, ?)",
                               (kind, name, version, json.dumps(value)))
        except (TypeError, ValueError):
            return
        except sqlite3.DatabaseError as error:
            if not isinstance(error, sqlite3.OperationalError):  # corrupt: start again; locked or full: skip
                self._reset()
        except sqlite3.Error:
            return
