"""ResultsWriter: one writer process, small fsynced shards, an always-complete root file.

See docs/HDF5.md for the design. In short: each input file's group is written into the
current shard ``OUT.h5.parts/shard-NNNNN.h5.tmp``; a flush closes it, fsyncs it, renames it
to ``shard-NNNNN.h5`` and rewrites the root ``OUT.h5`` (manifest + one external link per
file group) through ``OUT.h5.tmp`` and an atomic rename. ``close()`` consolidates all
groups into one self-contained ``OUT.h5`` and removes the parts folder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable

import h5py

from ..errors import ParameterError
from .layout import ManifestRow, to_json, write_file_group, write_manifest, manifest_rows
from .records import FileRecord, group_name, software_versions
from .store import (open_h5, acquire_lock, check_format, commit, fsync_dir, read_rows, release_lock, remove_trash,
                    remove_tree, shard_name, shard_numbers, utc_now, write_linked_root, write_root_attrs)

__all__ = ["ResultsWriter", "MODES"]

MODES = ("new", "resume", "overwrite")


class ResultsWriter:
    """Write one job's results to a single HDF5 file, safely against kills at any moment.

    Parameters
    ----------
    path : str or path-like
        Output file ``OUT.h5``. While the job runs, shards live in ``OUT.h5.parts/``.
    mode : {"new", "resume", "overwrite"}, keyword-only
        ``"new"`` refuses an existing output, ``"resume"`` keeps every file already stored
        (a file written again replaces its group), ``"overwrite"`` deletes the old output.
    job_attrs : dict, keyword-only
        JSON-friendly job description stored as root attributes (``job_json`` and ``job_<name>``).
    flush_every : int, keyword-only
        Files per shard (default 16); a shard is also flushed when its oldest file has waited
        ``flush_seconds`` (default 10 s, checked by a background thread).
    max_flush_share : float, keyword-only
        Upper bound on the share of time spent rewriting the root; for jobs of many small
        files the writer waits longer than ``flush_every`` files (never than ``flush_seconds``).
    fsync : bool, keyword-only
        fsync files and folders before each rename (default True; False only for tests).
    on_flush : callable, optional, keyword-only
        Called as ``on_flush(list_of_input_paths)`` once these files are durably stored.

    Raises
    ------
    ParameterError
        Unknown mode, or ``mode="new"`` and the output (or its parts folder) exists.
    """

    def __init__(self, path: str | os.PathLike, *, mode: str = "new", job_attrs: dict | None = None,
                 flush_every: int = 16, flush_seconds: float = 10.0, max_flush_share: float = 0.2,
                 fsync: bool = True, on_flush: Callable[[list[str]], None] | None = None):
        if mode not in MODES:
            raise ParameterError(f"mode={mode!r} is not one of {', '.join(map(repr, MODES))}")
        if int(flush_every) < 1 or not float(flush_seconds) > 0 or not 0 < float(max_flush_share) <= 1:
            raise ParameterError("flush_every must be >= 1, flush_seconds > 0 and 0 < max_flush_share <= 1")
        self.path = os.path.abspath(os.fspath(path))
        self.parts = self.path + ".parts"
        self.job_attrs = dict(job_attrs or {})
        self.flush_every, self.flush_seconds = int(flush_every), float(flush_seconds)
        self.max_flush_share, self.fsync, self.on_flush = float(max_flush_share), bool(fsync), on_flush
        self.versions = software_versions()
        self._versions_json = to_json(self.versions)
        self._lock = threading.RLock()
        self._groups: dict[str, tuple[int, list[ManifestRow]]] = {}  # group -> (shard, rows), flushed
        self._pending: dict[str, tuple[list[ManifestRow], str]] = {}  # group -> (rows, path), open shard
        self._strings: dict[str, str] = {}  # one copy of each text that repeats across rows
        self._shard: h5py.File | None = None
        self._next_shard, self._base_unlinked, self._dirty = 1, False, False
        self._clean_consolidated = False  # resumed a consolidated output, nothing new yet
        self._created = utc_now()
        self._oldest = self._last_flush = time.monotonic()
        self._flush_cost = 0.0
        self._closed, self._error = False, None
        self._lock_fd = acquire_lock(self.path + ".lock")
        try:
            self._prepare(mode)
        except BaseException:
            release_lock(self._lock_fd, self.path + ".lock")
            raise
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._timer_loop, name="hpcacq-results-flush", daemon=True)
        self._timer.start()

    # ----------------------------------------------------------------- opening
    def _prepare(self, mode: str) -> None:
        exists = os.path.exists(self.path)
        remove_trash(self.parts)
        if os.path.exists(self.path + ".tmp"):
            os.remove(self.path + ".tmp")
        if mode == "new" and (exists or os.path.exists(self.parts)):
            what = self.path if exists else self.parts + " (left by an interrupted job)"
            raise ParameterError(f"output {what} already exists; pass --resume (mode='resume') to continue "
                                 "that job or --overwrite (mode='overwrite') to replace it")
        if mode == "overwrite":
            if exists:
                os.remove(self.path)
            remove_tree(self.parts)
        elif mode == "resume":
            self._load()

    def _load(self) -> None:
        layout = None
        if os.path.exists(self.path):
            try:
                handle = h5py.File(self.path, "r")
            except OSError as exc:
                raise ParameterError(f"cannot resume: {self.path} is not a readable HDF5 file ({exc}); "
                                     "pass --overwrite to replace it") from None
            with handle:
                layout = check_format(handle, self.path)
                self._created = str(handle.attrs.get("created_utc", self._created))
        if layout == "consolidated":
            remove_tree(self.parts)  # left by a consolidation killed before its clean-up
            for row in read_rows(self.path):
                self._groups.setdefault(row["group"], (0, []))[1].append(self._compact(row))
            self._base_unlinked = bool(self._groups)
            self._clean_consolidated = True
        elif os.path.isdir(self.parts):
            for number in shard_numbers(self.parts):
                self._adopt_shard(number)

    def _adopt_shard(self, number: int) -> None:
        by_group: dict[str, list[dict]] = {}
        for row in read_rows(os.path.join(self.parts, shard_name(number))):
            by_group.setdefault(row["group"], []).append(self._compact(row))
        for name, rows in by_group.items():
            self._groups.pop(name, None)
            self._groups[name] = (number, rows)
        self._next_shard = max(self._next_shard, number + 1)

    # ----------------------------------------------------------------- writing
    def write_file(self, record: FileRecord) -> None:
        """Store one input file's records (replacing an earlier group of the same path).

        The file is durable (survives a kill) after the next flush: at most ``flush_every``
        files or ``flush_seconds`` later, and at :meth:`close`.
        """
        with self._lock:
            self._check_open()
            name = group_name(record.file_path)
            if self._shard is None:
                self._open_shard()
            write_file_group(self._shard.require_group("files"), name, record, self._versions_json)
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.pop(name, None)
            self._pending[name] = ([self._compact(row) for row in manifest_rows(record, name)], record.file_path)
            if self._flush_due():
                self._flush()

    def _compact(self, row: dict) -> ManifestRow:
        return ManifestRow(row, self._strings)

    def _open_shard(self) -> None:
        if not os.path.isdir(self.parts):
            os.makedirs(self.parts)
            if self.fsync:
                fsync_dir(os.path.dirname(self.parts))
        tmp = os.path.join(self.parts, shard_name(self._next_shard) + ".tmp")
        self._shard = open_h5(tmp, "w")

    def _flush_due(self) -> bool:
        now = time.monotonic()
        if now - self._oldest >= self.flush_seconds:
            return True
        wait = self._flush_cost * (1.0 / self.max_flush_share - 1.0)
        return len(self._pending) >= self.flush_every and now - self._last_flush >= wait

    def flush(self) -> None:
        """Make every file written so far durable (shard + root rewrite)."""
        with self._lock:
            self._check_open()
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        start = time.monotonic()
        number, handle = self._next_shard, self._shard
        rows = [row for rows, _ in self._pending.values() for row in rows]
        write_root_attrs(handle, layout="shard", job_attrs=self.job_attrs, versions=self.versions,
                         created=self._created, rows=rows)
        write_manifest(handle, rows)
        tmp = handle.filename
        handle.close()
        self._shard = None
        commit(tmp, os.path.join(self.parts, shard_name(number)), fsync=self.fsync)
        self._next_shard += 1
        flushed = []
        for name, (rows, path) in self._pending.items():
            self._groups.pop(name, None)
            self._groups[name] = (number, rows)
            flushed.append(path)
        self._pending.clear()
        self._dirty = True
        self._write_root()
        self._last_flush = time.monotonic()
        self._flush_cost = self._last_flush - start
        if self.on_flush is not None:
            self.on_flush(flushed)

    def _link_base(self) -> None:
        """Resume of a consolidated output: keep its groups reachable as shard 0."""
        if not self._base_unlinked:
            return
        target = os.path.join(self.parts, shard_name(0))
        try:
            os.link(self.path, target)
        except OSError:  # no hard links here: copy, then rename
            import shutil

            shutil.copyfile(self.path, target + ".tmp")
            commit(target + ".tmp", target, fsync=self.fsync)
        if self.fsync:
            fsync_dir(self.parts)
        self._base_unlinked = False

    def _write_root(self) -> None:
        self._link_base()
        folder = os.path.basename(self.parts)
        links = [(name, f"{folder}/{shard_name(number)}") for name, (number, _) in self._groups.items()]
        write_linked_root(self.path, links, self._rows(), fsync=self.fsync, **self._root_attrs())

    def _rows(self) -> list[dict]:
        return [row for _, rows in self._groups.values() for row in rows]

    def _root_attrs(self) -> dict:
        return {"job_attrs": self.job_attrs, "versions": self.versions, "created": self._created}

    # ----------------------------------------------------------------- resume
    def done_fingerprints(self) -> dict[str, dict]:
        """Input path -> what a resumed job needs to skip it, for files whose records are all OK.

        Each value holds ``fingerprint`` (``{"size", "mtime_ns", "sha256"}``), ``analysis`` and
        ``params`` (of the first record), ``group`` and ``records`` (analysis, channel, roi_id,
        params of each record).
        """
        with self._lock:
            entries = [(name, rows) for name, (_, rows) in self._groups.items()]
            entries += [(name, rows) for name, (rows, _) in self._pending.items()]
        done = {}
        for name, rows in entries:
            if rows and all(row["outcome"] == "OK" for row in rows):
                done[rows[0]["file"]] = _done_entry(name, rows)
        return done

    # ----------------------------------------------------------------- closing
    def close(self) -> None:
        """Flush, then consolidate everything into one self-contained ``OUT.h5`` (idempotent).

        A kill during consolidation leaves the previous (linked) ``OUT.h5`` and its parts valid.
        """
        with self._lock:
            if self._closed:
                return
            self._stop.set()
            self._flush()
            self._closed = True
            try:
                if self._dirty or not self._clean_consolidated:
                    self._consolidate()
            finally:
                release_lock(self._lock_fd, self.path + ".lock")
        self._timer.join(timeout=5)

    def _consolidate(self) -> None:
        tmp = self.path + ".tmp"
        by_shard: dict[int, list[str]] = {}
        for name, (number, _) in self._groups.items():
            by_shard.setdefault(number, []).append(name)
        with open_h5(tmp, "w") as out:
            rows = self._rows()
            write_root_attrs(out, layout="consolidated", rows=rows, **self._root_attrs())
            files = out.create_group("files")
            for number, names in sorted(by_shard.items()):
                with open_h5(os.path.join(self.parts, shard_name(number)), "r") as src:
                    for name in names:
                        src.copy(src[f"files/{name}"], files, name=name)
            write_manifest(out, rows)
        commit(tmp, self.path, fsync=self.fsync)
        remove_tree(self.parts)

    def _timer_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.flush_seconds / 4)):
            with self._lock:
                if self._closed or self._error is not None:
                    return
                if self._pending and time.monotonic() - self._oldest >= self.flush_seconds:
                    try:
                        self._flush()
                    except BaseException as exc:  # reported by the next write_file / close
                        self._error = exc
                        return

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ParameterError(f"ResultsWriter({self.path}) is closed; open a new one with mode='resume'")

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsWriter({self.path!r}, files={len(self._groups) + len(self._pending)})"


def _done_entry(name: str, rows: list[dict]) -> dict:
    first = rows[0]
    fingerprint = {"size": None if first["size"] < 0 else first["size"],
                   "mtime_ns": None if first["mtime_ns"] < 0 else first["mtime_ns"],
                   "sha256": first["sha256"] or None}
    records = [{"analysis": row["analysis"], "channel": row["channel"],
                "roi_id": None if row["roi_id"] < 0 else row["roi_id"], "params": json.loads(row["params_json"])}
               for row in rows]
    return {"fingerprint": fingerprint, "analysis": first["analysis"], "params": records[0]["params"],
            "group": name, "records": records}
