"""ResultsWriter: one writer process, small fsynced shards, an always-complete root file.

See docs/HDF5.md for the design. In short: each input file's group is written into the
current shard ``OUT.h5.parts/shard-NNNNN.h5.tmp``; a flush closes it, fsyncs it, renames it
to ``shard-NNNNN.h5`` and replaces the root ``OUT.h5`` (manifest + one external link per
file group) by an extended copy, through ``OUT.h5.tmp`` and an atomic rename. Per stored
file only (shard, row count) stays in memory; rows are read back from the shards.
``close()`` consolidates all groups into one self-contained ``OUT.h5`` and removes the
parts folder.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import h5py
import numpy as np

from ..errors import ParameterError
from ..versions import software_versions
from .index import DoneIndex, GroupIndex
from .keep import keep_analyses, tag_rows
from .layout import (
    columns_to_rows,
    create_manifest,
    manifest_rows,
    manifest_slices,
    n_column_rows,
    rows_to_columns,
    to_json,
    write_file_group,
    write_manifest_columns,
)
from .records import FileRecord, group_name
from .salvage import OutputError, check_removable, ensure_space, output_error, read_root, record_bytes, set_aside
from .storable import failed_copy
from .store import (
    acquire_lock,
    commit,
    extend_linked_root,
    fsync_dir,
    open_h5,
    release_lock,
    remove_trash,
    remove_tree,
    shard_name,
    shard_numbers,
    utc_now,
    write_linked_root,
    write_root_attrs,
)

__all__ = ["ResultsWriter", "MODES"]

MODES = ("new", "resume", "overwrite")
# HDF5's memory for an open file grows with what is written through it: consolidation
# reopens its output every few shards, so its transient memory does not grow with the
# number of files, at no cost in time (figures: docs/SCALING.md, "Memory").
CONSOLIDATE_SHARDS_PER_OPEN = 4
# Each append to the root leaves ~4 KB of HDF5 free space (a new heap for its text): a
# root of 16-file flushes stays ~1.4x the size of a fresh one and is never rewritten for
# it; flushes of single files (slow files, the timer) reach this factor and trigger a
# full rewrite, whose transient memory (~1 KB per file) is why the factor is not smaller.
ROOT_BLOAT = 3
# Files per shard at most. While a shard is open, HDF5's memory grows with the groups in it
# (levelling off near 19 MiB at 256 velocity groups, docs/SCALING.md) and the process keeps
# that high-water mark; as the root grows each flush (a copy of it) gets
# slower and the flush-share rule lets shards grow. The cap makes the shard's share, and
# the pending rows held for it, independent of the number and rate of files.
MAX_SHARD_FILES = 256


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
        Upper bound on the share of time spent replacing the root; for jobs of many small
        files the writer waits longer than ``flush_every`` files (never than ``flush_seconds``
        nor ``max_shard_files``).
    max_shard_files : int, keyword-only
        Most files in one shard (default 256). HDF5's memory for the open shard grows with
        the groups written into it (up to ~19 MiB), and the process keeps that high-water
        mark; this bounds it, and the rows held for the shard, whatever the number and rate
        of files.
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
                 max_shard_files: int = MAX_SHARD_FILES,
                 fsync: bool = True, on_flush: Callable[[list[str]], None] | None = None):
        if mode not in MODES:
            raise ParameterError(f"mode={mode!r} is not one of {', '.join(map(repr, MODES))}")
        if int(flush_every) < 1 or not float(flush_seconds) > 0 or not 0 < float(max_flush_share) <= 1 \
                or int(max_shard_files) < int(flush_every):
            raise ParameterError("flush_every must be >= 1, flush_seconds > 0, 0 < max_flush_share <= 1 and "
                                 "max_shard_files >= flush_every")
        self.path = os.path.abspath(os.fspath(path))
        self.parts = self.path + ".parts"
        self.job_attrs = dict(job_attrs or {})
        self.flush_every, self.flush_seconds = int(flush_every), float(flush_seconds)
        self.max_shard_files = int(max_shard_files)
        self.max_flush_share, self.fsync, self.on_flush = float(max_flush_share), bool(fsync), on_flush
        self.versions = software_versions()
        self._versions_json = to_json(self.versions)
        self._lock = threading.RLock()
        # Flushed groups -> (shard, manifest rows) live in a temporary on-disk index, so memory
        # does not grow with the number of files; manifest rows are read back from the shards
        # when needed (resume, root rebuild, consolidation).
        self._groups = GroupIndex()
        self._pending: dict[str, tuple[list[dict], str]] = {}  # group -> (rows, path), open shard
        # os.stat of the root this writer committed last (None: build the next one from the
        # shards) and its size after the last full write (appends grow it by a few KB each)
        self._root_stat: tuple | None = None
        self._root_full = (0, 0)  # size and rows of the root at its last full write
        self._shard: h5py.File | None = None
        self._next_shard, self._base_unlinked, self._dirty = 1, False, False
        self._clean_consolidated = False  # resumed a consolidated output, nothing new yet
        self._created = utc_now()
        self._oldest = self._last_flush = time.monotonic()
        self._flush_cost = 0.0
        self._closed, self._error = False, None
        self.notes: list[str] = []  # what opening an existing output salvaged (resume)
        self.dropped: dict[str, int] = {}  # outcome -> files written but dropped unflushed by a write error
        try:
            self._lock_fd = acquire_lock(self.path + ".lock")
        except ParameterError:
            self._groups.close()
            raise
        except OSError as exc:  # read-only or missing folder, no permission
            self._groups.close()
            raise output_error(exc, self.path, "write the output") from None
        try:
            try:
                self._prepare(mode)
            except OutputError:
                raise
            except OSError as exc:
                raise output_error(exc, self.path, "open the output") from None
        except BaseException:
            self._groups.close()
            release_lock(self._lock_fd, self.path + ".lock")
            raise
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._timer_loop, name="hpcacq-results-flush", daemon=True)
        self._timer.start()

    # ----------------------------------------------------------------- opening
    def _prepare(self, mode: str) -> None:
        exists = os.path.lexists(self.path)
        remove_trash(self.parts)
        if os.path.exists(self.path + ".tmp"):
            os.remove(self.path + ".tmp")
        if mode == "new" and (exists or os.path.exists(self.parts)):
            what = self.path if exists else self.parts + " (left by an interrupted job)"
            raise ParameterError(f"output {what} already exists; pass --resume (mode='resume') to continue "
                                 "that job or --overwrite (mode='overwrite') to replace it")
        if mode == "overwrite":
            check_removable(self.path, self.parts)  # only hpcacq results are removed
            if exists:
                os.remove(self.path)
            remove_tree(self.parts)
        elif mode == "resume":
            self._load()

    def _load(self) -> None:
        layout, created, self.notes = read_root(self.path, self.parts)
        self._created = created or self._created
        if layout == "consolidated":
            remove_tree(self.parts)  # left by a consolidation killed before its clean-up
            self._adopt(0, self.path)
            self._base_unlinked = bool(self._groups)
            self._clean_consolidated = True
        elif os.path.isdir(self.parts):
            for number in shard_numbers(self.parts):
                shard = os.path.join(self.parts, shard_name(number))
                try:
                    self._check_shard(shard)
                except (OSError, KeyError, ValueError, RuntimeError) as exc:  # damaged: rerun its files
                    self.notes.append(set_aside(shard, exc))
                    continue
                self._adopt(number, shard)
                self._next_shard = max(self._next_shard, number + 1)
            self._next_shard = max([self._next_shard] + [n + 1 for n in _numbers_set_aside(self.parts)])

    @staticmethod
    def _check_shard(path: str) -> None:
        """Raise unless shard ``path`` opens and every group its manifest names is in /files."""
        with open_h5(path, "r") as handle:
            if handle.attrs.get("layout") not in ("shard", "consolidated") or "files" not in handle:
                raise ValueError("not a complete shard (no layout attr or /files)")
            files = handle["files"]
            for columns in manifest_slices(handle):
                for group in dict.fromkeys(columns["group"]):
                    if group not in files:
                        raise KeyError(f"manifest names group {group!r}, missing from /files")

    def _adopt(self, number: int, path: str) -> None:
        """Take the groups of one stored file as flushed in shard ``number`` (later shards win).

        The manifest is read a slice at a time (a consolidated output of any size); a group
        met again in the same file adds its rows (:meth:`GroupIndex.place`).
        """
        name, n_rows = None, 0
        with open_h5(path, "r") as handle:
            for columns in manifest_slices(handle):
                entries = []
                for group in columns["group"]:
                    if group != name:
                        if name is not None:
                            entries.append((name, number, n_rows))
                        name, n_rows = group, 0
                    n_rows += 1
                self._groups.place(entries)
        if name is not None:
            self._groups.place([(name, number, n_rows)])

    # ----------------------------------------------------------------- writing
    def write_file(self, record: FileRecord) -> FileRecord:
        """Store one input file's records (replacing an earlier group of the same path).

        The file is durable (survives a kill) after the next flush: at most ``flush_every``
        files or ``flush_seconds`` later, and at :meth:`close`.

        Returns
        -------
        FileRecord
            The record as stored: ``record`` itself, or its FAILED copy when a value of it
            cannot be stored (see :meth:`_write_group`).
        """
        with self._lock:
            self._check_open()
            ensure_space(self.path, 2 * record_bytes(record), "write results to")
            name = group_name(record.file_path)
            try:
                if self._shard is None:
                    self._open_shard()
                rows, record = self._write_group(self._shard.require_group("files"), name, record)
            except OSError as exc:  # the storage's, not the record's (see _write_group)
                raise self._fail(exc, "write results to") from None
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.pop(name, None)
            self._pending[name] = (rows, record.file_path)
            if self._flush_due():
                self._flush()
            return record

    def _write_group(self, files: h5py.Group, name: str, record: FileRecord) -> tuple[list[dict], FileRecord]:
        """Write ``record``'s group; return its manifest rows and the record stored.

        Analyses stored earlier for the same input that ``record`` does not replace (another
        analysis, channel or ROI) are kept in the new group (:mod:`~hpcacq.results.keep`).
        A record that cannot be stored (an id beyond int64, a column of Python objects...)
        is stored as a FAILED copy with the reason (:func:`~hpcacq.results.storable.failed_copy`),
        so one bad record never stops the job nor loses the other files. An error on the
        FAILED copy too is the storage's (disk full, I/O error) and is raised.
        """
        with self._previous(files, name) as old:
            try:
                return self._write_with(files, name, record, old), record
            except Exception as exc:  # noqa: BLE001 - any problem of this record becomes its FAILED row
                if name in files:
                    del files[name]
                record = failed_copy(record, exc)
            return self._write_with(files, name, record, old), record

    def _write_with(self, files: h5py.Group, name: str, record: FileRecord, old: h5py.Group | None) -> list[dict]:
        rows = manifest_rows(record, name)
        rows_to_columns(rows)  # every value fits the manifest's types
        write_file_group(files, name, record, self._versions_json)
        if old is not None:
            rows = rows + keep_analyses(old, files[name], rows)
        tag_rows(files[name], rows)
        return rows

    @contextlib.contextmanager
    def _previous(self, files: h5py.Group, name: str) -> Iterator[h5py.Group | None]:
        """The stored group of ``name`` (open shard, a flushed shard, or the resumed output)."""
        if name in files:  # written earlier into the open shard: set aside, dropped after
            aside = name + ".previous"
            files.move(name, aside)
            try:
                yield files[aside]
            finally:
                del files[aside]
            return
        stored = self._groups.get(name)
        if stored is None:
            yield None
            return
        try:
            source = open_h5(self._shard_path(stored[0]), "r")
        except OSError:  # unreadable: its analyses are lost anyway (a resume reruns them)
            yield None
            return
        with source:
            yield source["files"][name] if name in source.get("files", {}) else None

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
        if len(self._pending) >= self.max_shard_files:
            return True
        return len(self._pending) >= self.flush_every and now - self._last_flush >= wait

    def flush(self) -> None:
        """Make every file written so far durable (shard + root update)."""
        with self._lock:
            self._check_open()
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        ensure_space(self.path, self._root_bytes(), "update")
        try:
            self._flush_pending()
        except OutputError:
            raise  # the root update failed after the shard was committed: the next flush rebuilds it
        except OSError as exc:  # while finishing the shard: HDF5 must not touch it again
            raise self._fail(exc, "update") from None

    def _root_bytes(self) -> int:
        """Upper estimate of the bytes a flush needs: the next root and the shard's manifest."""
        root = os.path.getsize(self.path) if os.path.isfile(self.path) else 0
        return root + 4096 * (len(self._groups) + len(self._pending)) // 16 + (256 << 10)

    def _fail(self, exc: OSError, doing: str) -> OutputError:
        """The writer cannot write (full disk, I/O error): drop the open shard, keep what is flushed.

        Everything committed (shards, the root) stays valid for ``--resume``; files not
        flushed yet are not reported flushed and are run again. Later calls raise the error.
        """
        error = exc if isinstance(exc, OutputError) else output_error(exc, self.path, doing)
        self._error = error
        self._discard_shard()
        return error

    def _discard_shard(self) -> None:
        handle, self._shard = self._shard, None
        for rows, _ in self._pending.values():  # written, never flushed: not stored
            outcome = next((row["outcome"] for row in rows if row["outcome"] != "OK"), "OK")
            self.dropped[outcome] = self.dropped.get(outcome, 0) + 1
        self._pending.clear()
        if handle is None:
            return
        tmp = handle.filename
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - a broken file: its data is dropped anyway
            pass
        try:
            os.remove(tmp)
        except OSError:
            pass

    def abandon(self) -> None:
        """Stop without flushing nor consolidating (after an :class:`OutputError`); idempotent.

        The output stays as last committed: a linked root and its shards, which ``--resume``
        (or ``hpcacq repair``) completes.
        """
        with self._lock:
            if self._closed:
                return
            self._stop.set()
            self._closed = True
            self._discard_shard()
            release_lock(self._lock_fd, self.path + ".lock")
        self._timer.join(timeout=5)

    def _flush_pending(self) -> None:
        start = time.monotonic()
        number, handle = self._next_shard, self._shard
        columns = rows_to_columns([row for rows, _ in self._pending.values() for row in rows])
        n_rows = n_column_rows(columns)
        write_root_attrs(handle, layout="shard", job_attrs=self.job_attrs, versions=self.versions,
                         created=self._created, n_files=len(self._pending), n_rows=n_rows)
        write_manifest_columns(create_manifest(handle, n_rows), 0, columns)
        tmp = handle.filename
        handle.close()
        self._shard = None
        commit(tmp, os.path.join(self.parts, shard_name(number)), fsync=self.fsync)
        self._next_shard += 1
        replaced = self._groups.place((name, number, len(rows)) for name, (rows, _) in self._pending.items())
        flushed = [path for _, path in self._pending.values()]
        names = list(self._pending)
        self._pending.clear()
        self._dirty = True
        try:
            self._write_root(number, names, columns, replaced)
        except OSError as exc:
            if os.path.exists(self.path + ".tmp"):
                os.remove(self.path + ".tmp")
            raise (exc if isinstance(exc, OutputError) else output_error(exc, self.path, "update")) from None
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

    def _write_root(self, number: int, names: list[str], columns: dict[str, np.ndarray], replaced: set[str]) -> None:
        """Make OUT.h5 link shard ``number``'s new groups ``names`` (manifest rows ``columns``).

        Three ways, all written to ``OUT.h5.tmp`` and committed (crash-safe), none holding
        more than a slice of the manifest in memory:

        * extend a copy of the previous root (the usual flush: no file written again);
        * stream the previous root's manifest into a new root (files written again, whose
          old rows are left out; or when appends have bloated the root past
          ``ROOT_BLOAT`` times the size of a fresh root);
        * build it from the shards (the writer's first root, or when OUT.h5 is not the
          file this writer committed last, e.g. replaced by someone during the run).
        """
        self._link_base()
        folder = os.path.basename(self.parts)
        ours, self._root_stat = self._root_stat is not None and _stat(self.path) == self._root_stat, None
        if ours and not replaced and not self._root_bloated():
            target = f"{folder}/{shard_name(number)}"
            extend_linked_root(self.path, [(name, target) for name in names], columns, fsync=self.fsync,
                               **self._root_attrs())
        else:
            if ours:
                rows = itertools.chain(self._root_columns(exclude=replaced), [columns])
            else:
                rows = self._stored_columns()
            links = ((name, f"{folder}/{shard_name(shard)}") for name, shard in self._groups.items())
            write_linked_root(self.path, links, _batched(rows), fsync=self.fsync, **self._root_attrs())
            self._root_full = (os.path.getsize(self.path), self._groups.n_rows)
        self._root_stat = _stat(self.path)

    def _root_bloated(self) -> bool:
        """Has the root grown ROOT_BLOAT times the size of a fresh root with the same rows?"""
        size, rows = self._root_full
        fresh = size * max(1, self._groups.n_rows) / max(1, rows)
        return os.path.getsize(self.path) > ROOT_BLOAT * fresh

    def _root_columns(self, exclude: set[str]) -> Iterator[dict[str, np.ndarray]]:
        """Manifest rows of the current root, without those of the groups in ``exclude``."""
        with open_h5(self.path, "r") as root:
            for columns in manifest_slices(root):
                yield _rows_of_groups(columns, lambda name: name not in exclude)

    def _root_attrs(self) -> dict:
        return {"job_attrs": self.job_attrs, "versions": self.versions, "created": self._created,
                "n_files": len(self._groups), "n_rows": self._groups.n_rows}

    def _shard_path(self, number: int) -> str:
        if number == 0 and self._base_unlinked:
            return self.path  # the consolidated output being resumed, before the first flush
        return os.path.join(self.parts, shard_name(number))

    def _stored_columns(self, numbers: Iterable[int] | None = None, copy_groups_to: h5py.Group | None = None
                        ) -> Iterator[dict[str, np.ndarray]]:
        """Manifest rows of the flushed groups, shard by shard, read back from the shards.

        Each group's rows come from the shard that holds its latest version. With
        ``copy_groups_to``, each such group is also copied there (``H5Ocopy``).
        """
        if numbers is None:
            numbers = self._groups.shards()
        for number in numbers:
            with open_h5(self._shard_path(number), "r") as src:
                last = None
                for columns in manifest_slices(src):
                    latest = self._groups.latest_in(number, columns["group"])
                    columns = _rows_of_groups(columns, latest.__contains__)
                    if copy_groups_to is not None:
                        for name in columns["group"]:
                            if name != last and name not in copy_groups_to:
                                src.copy(src[f"files/{name}"], copy_groups_to, name=name)
                                last = name
                    yield columns

    # ----------------------------------------------------------------- resume
    def done_fingerprints(self) -> DoneIndex:
        """Input path -> what a resumed job needs to skip it, for files with at least one OK analysis.

        A read-only mapping kept on disk (:class:`~hpcacq.results.index.DoneIndex`), so a
        resume of a million files does not hold them in memory. Each value holds ``group``
        and ``records``: one per OK analysis, with ``analysis``, ``channel``, ``roi_id``,
        ``params``, ``fingerprint`` (``{"size", "mtime_ns", "sha256"}``) and ``resume`` (the
        companion files' fingerprints and job options, see :mod:`hpcacq.jobs.resume`);
        ``fingerprint``, ``analysis`` and ``params`` repeat the first record's.
        """
        with self._lock:
            def chunks() -> Iterator[list[dict]]:
                for columns in self._stored_columns():
                    yield [row for row in columns_to_rows(columns) if row["group"] not in self._pending]
                for rows, _ in self._pending.values():
                    yield rows

            return DoneIndex.build(chunks(), _done_entry)

    # ----------------------------------------------------------------- closing
    def close(self) -> None:
        """Flush, then consolidate everything into one self-contained ``OUT.h5`` (idempotent).

        A kill during consolidation leaves the previous (linked) ``OUT.h5`` and its parts valid.
        """
        with self._lock:
            if self._closed:
                return
            self._stop.set()
            error = self._error  # a write failed: keep what is committed
            if error is None:
                try:
                    self._flush()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after letting go
                    error = exc
        if error is not None:
            self.abandon()
            raise error
        with self._lock:
            self._closed = True
            try:
                if self._dirty or not self._clean_consolidated:
                    self._consolidate_safely()
            finally:
                release_lock(self._lock_fd, self.path + ".lock")
        self._timer.join(timeout=5)

    def _consolidate_safely(self) -> None:
        """Consolidate when there is room for the copy; an OSError leaves the linked output as it was."""
        numbers = self._groups.shards()
        need = 0
        while batch := list(itertools.islice(numbers, 256)):
            need += sum(os.path.getsize(self._shard_path(n)) for n in batch if os.path.exists(self._shard_path(n)))
        ensure_space(self.path, need, "consolidate")
        try:
            self._consolidate()
        except OSError as exc:
            if os.path.exists(self.path + ".tmp"):
                os.remove(self.path + ".tmp")
            raise (exc if isinstance(exc, OutputError) else output_error(exc, self.path, "consolidate")) from None

    def _consolidate(self) -> None:
        tmp = self.path + ".tmp"
        with open_h5(tmp, "w") as out:
            write_root_attrs(out, layout="consolidated", **self._root_attrs())
            out.create_group("files")
            create_manifest(out, self._groups.n_rows)
        numbers = self._groups.shards()
        start = 0
        while batch := list(itertools.islice(numbers, CONSOLIDATE_SHARDS_PER_OPEN)):
            with open_h5(tmp, "r+") as out:
                for columns in _batched(self._stored_columns(batch, copy_groups_to=out["files"])):
                    write_manifest_columns(out["manifest"], start, columns)
                    start += n_column_rows(columns)
        if start != self._groups.n_rows:
            raise RuntimeError(f"consolidating {self.path}: {start} manifest rows found in the shards, "
                               f"{self._groups.n_rows} expected")
        commit(tmp, self.path, fsync=self.fsync)
        self._groups.move_all(0)  # all in OUT.h5 now (done_fingerprints)
        self._base_unlinked = True
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

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsWriter({self.path!r}, files={len(self._groups) + len(self._pending)})"


def _numbers_set_aside(parts: str) -> list[int]:
    """Numbers of shards set aside as damaged (never reused for a new shard)."""
    return [int(entry[6:-11]) for entry in os.listdir(parts) if entry.startswith("shard-")
            and entry.endswith(".h5.damaged") and entry[6:-11].isdigit()]


def _stat(path: str) -> tuple | None:
    """Identity of a file (device, inode, size, mtime), None if it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _rows_of_groups(columns: dict[str, np.ndarray], keep: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """The rows of manifest ``columns`` whose group name passes ``keep``."""
    groups = columns["group"]
    mask = np.fromiter((keep(name) for name in groups), dtype=bool, count=len(groups))
    return {name: column[mask] for name, column in columns.items()}


def _batched(chunks: Iterable[dict[str, np.ndarray]], rows: int = 4096) -> Iterator[dict[str, np.ndarray]]:
    """Join consecutive small column chunks into chunks of at least ``rows`` rows (fewer writes)."""
    held: list[dict[str, np.ndarray]] = []
    n = 0
    for chunk in chunks:
        held.append(chunk)
        n += n_column_rows(chunk)
        if n >= rows:
            yield _join(held)
            held, n = [], 0
    if n:
        yield _join(held)


def _join(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(chunks) == 1:
        return chunks[0]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _done_entry(name: str, rows: list[dict]) -> dict | None:
    """What resume needs of one stored input: its OK analyses with their fingerprints (None: none OK)."""
    records = []
    for row in rows:
        if row["outcome"] != "OK":
            continue
        fingerprint = {"size": None if row["size"] < 0 else row["size"],
                       "mtime_ns": None if row["mtime_ns"] < 0 else row["mtime_ns"],
                       "sha256": row["sha256"] or None}
        records.append({"analysis": row["analysis"], "channel": row["channel"],
                        "roi_id": None if row["roi_id"] < 0 else row["roi_id"], "outcome": "OK",
                        "params": json.loads(row["params_json"] or "{}"), "fingerprint": fingerprint,
                        "resume": json.loads(row.get("resume_json") or "{}")})
    if not records:
        return None
    first = records[0]
    return {"fingerprint": first["fingerprint"], "analysis": first["analysis"], "params": first["params"],
            "group": name, "records": records}
