"""Private temporary SQLite databases: per-file bookkeeping kept on disk, not in memory.

Used by the input list (``hpcacq.jobs.inputs.InputList``) and the results writer's
indexes (``hpcacq.results.index``), so rank 0's memory does not grow with the number of
files. Each database is a file in SQLite's temporary directory (``$SQLITE_TMPDIR``, else
``$TMPDIR``, else ``/var/tmp``, else ``/tmp``), unlinked at once and gone when the process
ends, with a 2 MiB page cache; a million paths of 100 characters take ~250 MB there.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import TemporaryStorageError

__all__ = ["TemporaryDatabase", "sqlite_temp_dir", "CACHE_KIB"]

CACHE_KIB = 2048  # SQLite page cache per database


def sqlite_temp_dir() -> str:
    """The folder SQLite puts its temporary files in (its own search order on Unix)."""
    for candidate in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return "."


class TemporaryDatabase:
    """A private on-disk SQLite database (``sqlite3.connect("")``), usable from any thread
    when the caller serialises access; SQLite errors become :class:`TemporaryStorageError`."""

    def __init__(self):
        self._connection = self._call(sqlite3.connect, "", isolation_level=None, check_same_thread=False)
        for pragma in (f"cache_size=-{CACHE_KIB}", "journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self.execute(f"PRAGMA {pragma}")

    @staticmethod
    def _call(function, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except sqlite3.Error as exc:
            raise TemporaryStorageError(
                f"hpcacq's temporary file lists in {sqlite_temp_dir()!r} failed ({exc}); they need about 250 "
                "bytes per input file: point SQLITE_TMPDIR or TMPDIR at a folder with space") from None

    def execute(self, sql: str, parameters: Iterable = ()) -> sqlite3.Cursor:
        return self._call(self._connection.execute, sql, tuple(parameters))

    def executemany(self, sql: str, rows: Iterable) -> sqlite3.Cursor:
        return self._call(self._connection.executemany, sql, rows)

    def fetch(self, sql: str, parameters: Iterable = (), *, size: int | None = None) -> list:
        """All rows of a query (``size``: at most that many, through ``fetchmany``)."""
        cursor = self.execute(sql, parameters)
        return self._call(cursor.fetchall if size is None else (lambda: cursor.fetchmany(size)))

    def paged(self, sql: str, after: Any, *, lock: Any = None, size: int = 4096) -> Iterator[tuple]:
        """Rows of ``sql`` a page at a time; ``sql`` ends ``WHERE key > ? ORDER BY key LIMIT ?``
        with ``key`` its first column, starting after ``after``. ``lock`` guards each page."""
        while True:
            if lock is None:
                block = self.fetch(sql, (after, size))
            else:
                with lock:
                    block = self.fetch(sql, (after, size))
            if not block:
                return
            after = block[-1][0]
            yield from block

    def close(self) -> None:
        self._connection.close()
