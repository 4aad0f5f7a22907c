"""Turn what a user typed (files, folders, globs, ``@list.txt``) into a list of input files.

Paths are kept exactly as they are: spaces, quotes, ``;``, unicode and newlines in names
survive, because nothing here goes through a shell. A path that exists is always taken
literally, even when it holds glob characters such as ``[`` or ``*``.

A list file holds one path per line, so a path containing a newline cannot come from a
list file: give such files on the command line or through their folder instead.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable

from ..errors import InputError

__all__ = ["SUPPORTED_SUFFIXES", "expand_inputs", "read_list_file", "write_list_file"]

SUPPORTED_SUFFIXES = (".tif", ".tiff", ".npy", ".h5", ".hdf5")
_GLOB_CHARS = ("*", "?", "[")


def _supported(path: str) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def _folder_files(folder: str) -> list[str]:
    """Supported image files directly inside ``folder``, sorted by name (not recursive)."""
    names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    return [os.path.join(folder, name) for name in names
            if _supported(name) and os.path.isfile(os.path.join(folder, name))]


def read_list_file(path: str | os.PathLike) -> list[str]:
    """Paths listed in a text file, one per line (UTF-8).

    Blank lines and lines starting with ``#`` are ignored; trailing ``\\r`` is dropped.
    Relative paths are taken relative to the folder of the list file, so a list works
    from any working directory (e.g. inside a SLURM job).

    Raises
    ------
    InputError
        The list file does not exist or is not UTF-8 text.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InputError(f"list file {path!r} does not exist; check the path after '@'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"list file {path!r} cannot be read as UTF-8 text: {exc}") from None
    base = os.path.dirname(path)
    lines = [line.rstrip("\r") for line in text.split("\n")]
    return [os.path.join(base, line) for line in lines if line.strip() and not line.startswith("#")]


def write_list_file(path: str | os.PathLike, files: Iterable[str | os.PathLike]) -> None:
    """Write ``files`` one per line (absolute paths) so :func:`read_list_file` reads them back.

    Raises
    ------
    InputError
        A path contains a newline: it cannot be stored in a list file.
    """
    lines = []
    for file in files:
        text = os.path.abspath(os.fspath(file))
        if "\n" in text or "\r" in text:
            raise InputError(f"{text!r} contains a newline and cannot be written to a list file "
                             "(one path per line); pass it on the command line or rename it")
        lines.append(text)
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _expand_one(spec: str, *, from_list: str | None) -> list[str]:
    where = f" (listed in {from_list!r})" if from_list else ""
    if os.path.isdir(spec):
        found = _folder_files(spec)
        if not found:
            raise InputError(f"folder {spec!r}{where} holds no {'/'.join(SUPPORTED_SUFFIXES)} files")
        return found
    if os.path.exists(spec):
        return [spec]
    if any(char in spec for char in _GLOB_CHARS):
        matches = sorted(glob.glob(spec))
        files = [m for m in matches if os.path.isfile(m) and _supported(m)]
        if not files:
            raise InputError(f"pattern {spec!r}{where} matches no {'/'.join(SUPPORTED_SUFFIXES)} file")
        return files
    raise InputError(f"input {spec!r}{where} does not exist; check the path (folders, globs and "
                     "@list.txt files are accepted too)")


def expand_inputs(specs: Iterable[str | os.PathLike]) -> list[str]:
    """Expand input specifications into a list of files, in order, without duplicates.

    Parameters
    ----------
    specs : iterable of str or path-like
        Each one is a file (taken as is, whatever its suffix), a folder (its
        ``.tif .tiff .npy .h5 .hdf5`` files, sorted by name, not recursive), a glob
        pattern (``data/*.tif``; quote it from the shell) or ``@list.txt`` (one path,
        folder or pattern per line, see :func:`read_list_file`). A spec that exists
        as a file or folder is never treated as a pattern or list.

    Returns
    -------
    list of str
        File paths; the first occurrence of a duplicate wins.

    Raises
    ------
    InputError
        A spec matches nothing (the message names it), or no spec was given.
    """
    out: list[str] = []
    seen: set[str] = set()
    specs = [os.fspath(spec) for spec in specs]
    if not specs:
        raise InputError("no input given: name files, folders, glob patterns or @list.txt files")
    for spec in specs:
        if spec.startswith("@") and not os.path.exists(spec):
            entries = [(entry, spec[1:]) for entry in read_list_file(spec[1:])]
        else:
            entries = [(spec, None)]
        for entry, from_list in entries:
            for path in _expand_one(entry, from_list=from_list):
                key = os.path.normpath(os.path.abspath(path))
                if key not in seen:
                    seen.add(key)
                    out.append(path)
    return out
