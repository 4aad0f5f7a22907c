"""On-disk indexes that keep the results writer's memory flat whatever the number of files.

Both live in private temporary SQLite databases (:mod:`hpcacq.tempdb`), so a job of a
million files costs disk, not memory. Nothing here needs to survive a crash: a resumed
job rebuilds them from the shards.

* :class:`GroupIndex`: the results writer's group name -> (shard, manifest rows).
* :class:`DoneIndex`: input path -> what ``--resume`` needs to skip a file, a read-only
  mapping (``ResultsWriter.done_fingerprints()``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

from ..tempdb import TemporaryDatabase

__all__ = ["GroupIndex", "DoneIndex"]

_BATCH = 500  # names per "IN (...)" query
_BLOCK = 4096  # rows read at a time


def _key(path: str) -> bytes:
    """A path as SQLite BLOB: any str, undecodable file names (surrogates) included."""
    return path.encode("utf-8", "surrogatepass")


class GroupIndex:
    """Flushed file groups: name -> (shard number, manifest rows), in insertion order.

    Placing a name again in another shard moves it to the end (like deleting and re-adding
    a dict key), so iteration order is the order in which each group's latest version was
    stored. Callers serialise access (the writer holds its lock).
    """

    def __init__(self):
        self._db = TemporaryDatabase()
        self._db.execute("CREATE TABLE groups (name TEXT PRIMARY KEY, shard INTEGER NOT NULL, "
                         "n_rows INTEGER NOT NULL)")
        self._db.execute("CREATE INDEX groups_by_shard ON groups (shard)")
        self.n_groups = 0
        self.n_rows = 0

    def __len__(self) -> int:
        return self.n_groups

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> tuple[int, int] | None:
        """(shard, manifest rows) of group ``name``, None if not stored."""
        rows = self._db.fetch("SELECT shard, n_rows FROM groups WHERE name = ?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None

    def place(self, entries: Iterable[tuple[str, int, int]]) -> set[str]:
        """Store (name, shard, n_rows) entries; return the names stored before in another shard.

        A name placed again in the same shard adds its rows (a shard read a slice at a time).
        """
        replaced = set()
        for name, shard, n_rows in entries:
            old = self.get(name)
            if old is not None and old[0] == shard:
                self._db.execute("UPDATE groups SET n_rows = n_rows + ? WHERE name = ?", (n_rows, name))
                self.n_rows += n_rows
                continue
            if old is not None:
                replaced.add(name)
                self.n_rows -= old[1]
                self.n_groups -= 1
                self._db.execute("DELETE FROM groups WHERE name = ?", (name,))
            self._db.execute("INSERT INTO groups (name, shard, n_rows) VALUES (?, ?, ?)", (name, shard, n_rows))
            self.n_groups += 1
            self.n_rows += n_rows
        return replaced

    def shards(self) -> Iterator[int]:
        """Shard numbers that hold at least one latest group, ascending, read a page at a time."""
        rows = self._db.paged("SELECT DISTINCT shard FROM groups WHERE shard > ? ORDER BY shard LIMIT ?", -1)
        return (shard for shard, in rows)

    def latest_in(self, shard: int, names: Iterable[str]) -> set[str]:
        """Those of ``names`` whose latest version is in ``shard``."""
        names = list(dict.fromkeys(names))
        found: set[str] = set()
        for first in range(0, len(names), _BATCH):
            batch = names[first:first + _BATCH]
            marks = ",".join("?" * len(batch))
            found.update(row[0] for row in self._db.fetch(
                f"SELECT name FROM groups WHERE shard = ? AND name IN ({marks})", (shard, *batch)))
        return found

    def items(self) -> Iterator[tuple[str, int]]:
        """(name, shard) of every group, in the order they were (last) stored."""
        rows = self._db.paged("SELECT rowid, name, shard FROM groups WHERE rowid > ? ORDER BY rowid LIMIT ?", 0)
        return ((name, shard) for _, name, shard in rows)

    def move_all(self, shard: int) -> None:
        """Every group is now in ``shard`` (after consolidation into one file)."""
        self._db.execute("UPDATE groups SET shard = ?", (shard,))

    def close(self) -> None:
        self._db.close()


class DoneIndex(Mapping):
    """Input path -> done entry (a dict), read-only, kept on disk.

    :meth:`build` takes the manifest rows of every stored group (any order); a file is in
    the index when at least one row of its group is OK and ``make_entry(group, rows)``
    gives its value (not None). Reads like a dict (``get``, ``[]``, ``in``, ``len``, iteration,
    ``==``); values are decoded on each access.
    """

    def __init__(self):
        self._db = TemporaryDatabase()
        self._lock = threading.Lock()
        self._db.execute("CREATE TABLE done (path BLOB PRIMARY KEY, entry TEXT NOT NULL)")
        self._n = 0

    @classmethod
    def build(cls, row_chunks: Iterable[list[dict]], make_entry: Callable[[str, list[dict]], dict]) -> DoneIndex:
        """The index of manifest rows given as chunks of row dicts (``group``, ``file``, ``outcome``...)."""
        index = cls()
        db = index._db
        db.execute("CREATE TEMP TABLE staged (id INTEGER PRIMARY KEY, name TEXT NOT NULL, row TEXT NOT NULL)")
        for rows in row_chunks:
            db.executemany("INSERT INTO staged (name, row) VALUES (?, ?)",
                           ((row["group"], json.dumps(row)) for row in rows))
        name, rows, last = None, [], ("", 0)  # ids start at 1: ("", 0) is before every row
        while block := db.fetch("SELECT name, id, row FROM staged WHERE (name, id) > (?, ?) ORDER BY name, id "
                                "LIMIT ?", (*last, _BLOCK)):
            for row_name, _, text in block:
                if row_name != name:
                    index._finish_group(name, rows, make_entry)
                    name, rows = row_name, []
                rows.append(json.loads(text))
            last = (block[-1][0], block[-1][1])
        index._finish_group(name, rows, make_entry)
        db.execute("DROP TABLE staged")
        return index

    def _finish_group(self, name: str | None, rows: list[dict], make_entry) -> None:
        if name is None or not rows or not any(row["outcome"] == "OK" for row in rows):
            return
        entry = make_entry(name, rows)
        if entry is None:
            return
        path = rows[0]["file"]
        if path not in self:
            self._n += 1
        self._db.execute("INSERT OR REPLACE INTO done (path, entry) VALUES (?, ?)", (_key(path), json.dumps(entry)))

    def __getitem__(self, path: str) -> dict:
        if not isinstance(path, str):
            raise KeyError(path)
        with self._lock:
            rows = self._db.fetch("SELECT entry FROM done WHERE path = ?", (_key(path),))
        if not rows:
            raise KeyError(path)
        return json.loads(rows[0][0])

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        with self._lock:
            return bool(self._db.fetch("SELECT 1 FROM done WHERE path = ?", (_key(path),)))

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        rows = self._db.paged("SELECT rowid, path FROM done WHERE rowid > ? ORDER BY rowid LIMIT ?", 0, lock=self._lock)
        return (path.decode("utf-8", "surrogatepass") for _, path in rows)

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"DoneIndex({self._n} files)"
