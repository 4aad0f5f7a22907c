"""What is inside input folders: entries named like images, searched flat or recursively,
and hpcacq's own results (which are never inputs).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError

__all__ = ["RESULTS_FORMAT", "SUPPORTED_SUFFIXES", "folder_files", "results_kind", "supported", "walk_files"]

SUPPORTED_SUFFIXES = (".tif", ".tiff", ".npy", ".h5", ".hdf5")
RESULTS_FORMAT = "hpcacq-results"  # attribute ``format`` of hpcacq's results files


def supported(path: str) -> bool:
    """True when ``path`` is named like an image hpcacq reads (by suffix)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def folder_files(folder: str) -> Iterator[tuple[str, str]]:
    """(name, path) of the entries named like images directly inside ``folder`` (not recursive).

    Every such name is kept, whatever it is (a FIFO, a dangling link, a link loop, a folder
    named ``x.tif``): the job reports each as that file's row instead of dropping it.
    """
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and supported(entry.name):
                    yield entry.name, os.path.join(folder, entry.name)
    except OSError as exc:
        raise InputError(f"folder {folder!r} cannot be listed ({exc.strerror or exc})") from None


def walk_files(folder: str, note: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """(relative path, path) of the entries named like images in ``folder`` and its subfolders.

    Hidden entries are left out; linked folders are followed once (a link loop is noted,
    not followed); ``.parts`` folders of hpcacq results are skipped with a note.
    """
    seen: set[tuple[int, int]] = set()
    stack = [("", folder)]
    while stack:
        rel, path = stack.pop()
        try:
            info = os.stat(path)
        except OSError as exc:
            note(f"skipped folder {path}: {exc.strerror or exc}")
            continue
        if (info.st_dev, info.st_ino) in seen:
            note(f"skipped folder {path}: a link to a folder already searched (a link loop)")
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(path) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            note(f"skipped folder {path}: cannot be listed ({exc.strerror or exc})")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            child_rel = os.path.join(rel, entry.name)
            if is_dir:
                if entry.name.endswith(".parts"):
                    note(f"skipped {entry.path}: an hpcacq results parts folder (results are never inputs)")
                else:
                    subfolders.append((child_rel, entry.path))
            elif supported(entry.name):
                yield child_rel, entry.path
        stack.extend(reversed(subfolders))


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def results_kind(path: str) -> str | None:
    """Why ``path`` is hpcacq's own output (``"an hpcacq results file"``), or None.

    Recognised: an HDF5 file whose attribute ``format`` is ``"hpcacq-results"`` (read
    without blocking: only regular files are opened), and a folder ``OUT.h5.parts``.
    """
    if Path(path).suffix.lower() not in (".h5", ".hdf5") and not path.rstrip(os.sep).endswith(".parts"):
        return None  # no stat for the other names: folders of a million TIFFs stay fast
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(info.st_mode):
        return "an hpcacq results parts folder" if path.rstrip(os.sep).endswith(".parts") else None
    if not stat.S_ISREG(info.st_mode) or Path(path).suffix.lower() not in (".h5", ".hdf5"):
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != _HDF5_SIGNATURE:
                return None
        import h5py

        with h5py.File(path, "r") as h5file:
            fmt = h5file.attrs.get("format")
    except Exception:  # noqa: BLE001 - unreadable: not ours to judge here; the reader reports it
        return None
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    return "an hpcacq results file" if fmt == RESULTS_FORMAT else None
