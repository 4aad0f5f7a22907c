"""Turn what a user typed (files, folders, globs, ``@list.txt``) into a list of input files.

Paths are kept exactly as they are: spaces, quotes, ``;``, unicode and newlines in names
survive, because nothing here goes through a shell. A path that exists is always taken
literally, even when it holds glob characters such as ``[`` or ``*``.

A list file holds one path per line, so a path containing a newline cannot come from a
list file: give such files on the command line or through their folder instead.

The expanded list is an :class:`InputList`, kept in a temporary on-disk database and read
back a block at a time, so a job of a million files does not hold a million paths in
memory (folders and globs are sorted and duplicates dropped on disk too).
"""

from __future__ import annotations

import glob
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from ..errors import InputError
from ..tempdb import TemporaryDatabase
from .folders import SUPPORTED_SUFFIXES, folder_files, results_kind, supported, walk_files

__all__ = ["SUPPORTED_SUFFIXES", "InputList", "expand_inputs", "read_list_file", "results_kind", "write_list_file"]

_GLOB_CHARS = ("*", "?", "[")


_BLOCK = 4096  # paths read or staged at a time
MAX_NOTES = 100  # skipped files listed one per line; more are counted


def _entry(base: str, line: str) -> str:
    """The path of one list line; trailing spaces/tabs are dropped unless the path with them exists."""
    path = os.path.join(base, line)
    stripped = line.rstrip(" \t")
    if stripped != line and not os.path.lexists(path):
        path = os.path.join(base, stripped)
    return path


def _list_entries(path: str) -> Iterator[str]:
    """The entries of a list file, one per line, read a block at a time (see :func:`read_list_file`)."""
    base = os.path.dirname(path)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise InputError(f"list file {path!r} is {kind}; '@' must name a text file with one path per line")
        handle = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputError(f"list file {path!r} does not exist; check the path after '@'") from None
    except OSError as exc:
        raise InputError(f"list file {path!r} cannot be read as UTF-8 text: {exc}") from None
    n_entries = 0
    with handle:
        tail = ""
        while True:
            try:
                block = handle.read(1 << 20)
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"list file {path!r} cannot be read as UTF-8 text: {exc}") from None
            lines = (tail + block).split("\n")
            tail = lines.pop() if block else ""
            for line in lines:
                line = line.rstrip("\r")
                if line.strip() and not line.startswith("#"):
                    n_entries += 1
                    yield _entry(base, line)
            if not block:
                break
    if n_entries == 0:
        raise InputError(f"list file {path!r} lists no files (only blank or # lines); put one path per line")


def read_list_file(path: str | os.PathLike) -> list[str]:
    """Paths listed in a text file, one per line (UTF-8).

    Blank lines and lines starting with ``#`` are ignored; a UTF-8 byte-order mark,
    trailing ``\\r`` and trailing spaces or tabs (unless the path with them exists) are
    dropped. Relative paths are taken relative to the folder of the list file, so a list
    works from any working directory (e.g. inside a SLURM job). A listed file that does
    not exist stays in the list: the job reports it as that file's FAILED row.

    Raises
    ------
    InputError
        The list file does not exist, is not UTF-8 text or lists nothing.
    """
    return list(_list_entries(os.fspath(path)))


def write_list_file(path: str | os.PathLike, files: Iterable[str | os.PathLike]) -> None:
    """Write ``files`` one per line (absolute paths) so :func:`read_list_file` reads them back.

    Raises
    ------
    InputError
        A path contains a newline: it cannot be stored in a list file (nothing is written).
    """
    lines = []
    for file in files:
        text = os.path.abspath(os.fspath(file))
        if "\n" in text or "\r" in text:
            raise InputError(f"{text!r} contains a newline and cannot be written to a list file "
                             "(one path per line); pass it on the command line or rename it")
        lines.append(text)
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _encode(text: str) -> bytes:
    """Any str as bytes whose order is the str's order (code points), surrogates included."""
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class InputList(Sequence):
    """Input files in order, without duplicates, kept on disk (constant memory at any length).

    Build it with :meth:`from_specs`; it reads like a tuple of str (``len``, ``[i]``,
    iteration, ``==`` with a list or tuple). Paths live in a private temporary SQLite
    database (:mod:`hpcacq.tempdb`: ``$SQLITE_TMPDIR``, else ``$TMPDIR``, else
    ``/var/tmp``; deleted on :meth:`close` or with the object); a million paths of 100
    characters take ~250 MB of disk and ~3 MB of memory. Folders and globs are sorted by
    code point like Python's ``sorted``. Pickles as a plain tuple.
    """

    def __init__(self):
        self._db = TemporaryDatabase()
        self._lock = threading.Lock()
        self._db.execute("CREATE TABLE paths (seq INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, path BLOB NOT NULL)")
        self._db.execute("CREATE TEMP TABLE staged (sort BLOB NOT NULL, key BLOB NOT NULL, path BLOB NOT NULL)")
        self._n = 0
        self._files: list[str] = []  # files given one by one, not yet added
        self._recursive = False
        self.notes: list[str] = []  # files left out on purpose, one line each (at most MAX_NOTES)
        self.n_skipped = 0

    @classmethod
    def from_specs(cls, specs: Iterable[str | os.PathLike], *, recursive: bool = False) -> InputList:
        """Expand input specifications (see :func:`expand_inputs`) onto disk.

        What was left out on purpose (hpcacq results files, ``.parts`` folders) is in
        :attr:`notes`, one line each (the CLI prints them).
        """
        specs = [os.fspath(spec) for spec in specs]
        if not specs:
            raise InputError("no input given: name files, folders, glob patterns or @list.txt files")
        inputs = cls()
        inputs._recursive = bool(recursive)
        try:
            for spec in specs:
                if spec.startswith("@") and not os.path.exists(spec):
                    for entry in _list_entries(spec[1:]):
                        inputs._expand(entry, from_list=spec[1:])
                else:
                    inputs._expand(spec, from_list=None)
            inputs._add_files()
            inputs._db.execute("DROP TABLE staged")
            if not len(inputs):
                raise InputError("no input files left: " + "; ".join(inputs.notes[:3]))
        except BaseException:
            inputs.close()
            raise
        return inputs

    def _note(self, line: str) -> None:
        self.n_skipped += 1
        if len(self.notes) < MAX_NOTES:
            self.notes.append(line)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("... more skipped files not listed")

    def _keep(self, path: str) -> bool:
        """False (with a note) for an hpcacq results file or its parts folder: results are never inputs."""
        why = results_kind(path)
        if why is None:
            return True
        self._note(f"skipped {path}: {why} (results are never inputs)")
        return False

    def _expand(self, spec: str, *, from_list: str | None) -> None:
        where = f" (listed in {from_list!r})" if from_list else ""
        try:
            is_dir = stat.S_ISDIR(os.stat(spec).st_mode)
        except (OSError, ValueError):
            is_dir = None if not os.path.lexists(spec) else False  # a dangling link or loop is a file row
        if is_dir is None and from_list is not None:
            is_dir = False  # a missing listed file is that file's FAILED row, as in a folder
        if is_dir is False:
            if from_list is not None or self._keep(spec):  # listed results files: the reader refuses them
                self._files.append(spec)  # consecutive files go in together (long @lists)
            if len(self._files) >= _BLOCK:
                self._add_files()
            return
        self._add_files()
        if is_dir:
            if not self._keep(spec):
                return
            n_notes = self.n_skipped
            walk = walk_files(spec, self._note) if self._recursive else folder_files(spec)
            if not self._add_sorted((key, path) for key, path in walk if self._keep(path)):
                skipped = f" ({self.n_skipped - n_notes} skipped)" if self.n_skipped > n_notes else ""
                hint = "" if self._recursive else "; to search its subfolders too, add --recursive " \
                    "(recursive=True)"
                raise InputError(f"folder {spec!r}{where} holds no {'/'.join(SUPPORTED_SUFFIXES)} files{skipped}{hint}")
        elif any(char in spec for char in _GLOB_CHARS):
            matches = ((m, m) for m in glob.iglob(spec) if supported(m) and self._keep(m))
            if not self._add_sorted(matches):
                raise InputError(f"pattern {spec!r}{where} matches no {'/'.join(SUPPORTED_SUFFIXES)} file")
        else:
            raise InputError(f"input {spec!r}{where} does not exist; check the path (folders, globs and "
                             "@list.txt files are accepted too)")

    def _add_files(self) -> None:
        """Append the files gathered by :meth:`_expand`, in the order given."""
        files, self._files = self._files, []
        if files:
            self._add_sorted(("", path) for path in files)

    def _add_sorted(self, entries: Iterable[tuple[str, str]]) -> int:
        """Append (sort key, path) entries in sort-key order, skipping paths already listed.

        Returns the number of entries given (duplicates included)."""
        n_given = 0
        entries = iter(entries)
        while block := list(islice(entries, _BLOCK)):
            n_given += len(block)
            self._db.executemany("INSERT INTO staged (sort, key, path) VALUES (?, ?, ?)",
                                 ((_encode(sort), _encode(os.path.normpath(os.path.abspath(path))), _encode(path))
                                  for sort, path in block))
        cursor = self._db.execute("INSERT OR IGNORE INTO paths (key, path) SELECT key, path FROM staged "
                                  "ORDER BY sort, rowid")
        self._n += max(0, cursor.rowcount)
        self._db.execute("DELETE FROM staged")
        return n_given

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        rows = self._db.paged("SELECT seq, path FROM paths WHERE seq > ? ORDER BY seq LIMIT ?", 0, lock=self._lock)
        return (_decode(path) for _, path in rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        index = int(index)
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(f"input index {index} out of range ({self._n} files)")
        with self._lock:
            ((path,),) = self._db.fetch("SELECT path FROM paths WHERE seq = ?", (index + 1,))
        return _decode(path)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (InputList, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable-looking container semantics, like list

    def __reduce__(self):
        return tuple, (tuple(self),)

    def close(self) -> None:
        """Delete the on-disk list (the object is unusable afterwards)."""
        self._db.close()

    def __enter__(self) -> InputList:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InputList({self._n} files)"


def expand_inputs(specs: Iterable[str | os.PathLike], *, recursive: bool = False) -> list[str]:
    """Expand input specifications into a list of files, in order, without duplicates.

    Parameters
    ----------
    specs : iterable of str or path-like
        Each one is a file (taken as is, whatever its suffix), a folder (its
        ``.tif .tiff .npy .h5 .hdf5`` entries, sorted by name; with ``recursive`` its
        subfolders too, sorted by relative path), a glob pattern (``data/*.tif``; quote
        it from the shell) or ``@list.txt`` (one path, folder or pattern per line, see
        :func:`read_list_file`). A spec that exists as a file or folder is never treated
        as a pattern or list. hpcacq results files (HDF5 with ``format="hpcacq-results"``)
        and ``.parts`` folders are left out: results are never inputs. Entries named like
        images that are not regular files (FIFOs, dangling links, folders named ``x.tif``)
        are kept, so the job reports each as a row.
    recursive : bool, keyword-only
        Search folders' subfolders too (hidden ones excluded; linked folders followed once).

    Returns
    -------
    list of str
        File paths; the first occurrence of a duplicate wins. For very long lists use
        :meth:`InputList.from_specs` (same expansion, kept on disk).

    Raises
    ------
    InputError
        A spec matches nothing (the message names it), or no spec was given.
    """
    with InputList.from_specs(specs, recursive=recursive) as inputs:
        return list(inputs)
