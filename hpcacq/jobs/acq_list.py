"""acqstore's ``AcqImageList``: the acquisitions of a file, a folder or a CSV list.

Folders, glob patterns and ``@list.txt`` are expanded as on hpcacq's command line
(:func:`hpcacq.jobs.inputs.expand_inputs`: a folder's ``.tif .tiff .npy .h5 .hdf5`` files,
sorted, not recursive). A ``.csv`` file lists one acquisition per row, in its ``path``
column (or its first column), relative paths from the CSV's folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator

from ..errors import InputError
from ..model import AcqImage
from .inputs import expand_inputs

__all__ = ["AcqImageList", "UnreadableAcquisition"]


class UnreadableAcquisition:
    """Stands for a listed file that could not be opened, so a batch reports it (FAILED) instead of losing it.

    Attributes
    ----------
    path : str
    open_error : Exception
        Why it could not be opened (raised again when a strategy processes it).
    """

    def __init__(self, path: str, error: Exception):
        self.path = path
        self.open_error = error

    def save(self) -> list[str]:
        """Nothing to save: the file was never read."""
        return []

    def __repr__(self) -> str:
        return f"UnreadableAcquisition({self.path!r}: {self.open_error})"


def _open(path: str):
    try:
        return AcqImage(path)
    except InputError as exc:
        return UnreadableAcquisition(path, exc)


def _csv_paths(path: str) -> list[str]:
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path}: the CSV lists no files (one path per row, or a 'path' column)")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("path") if "path" in header else 0
    body = rows[1:] if "path" in header else rows
    base = os.path.dirname(os.path.abspath(path))
    return [os.path.join(base, row[column].strip()) for row in body if len(row) > column and row[column].strip()]


class AcqImageList:
    """The acquisitions of ``source``, opened as :class:`~hpcacq.model.AcqImage` objects.

    Parameters
    ----------
    source : str or path-like
        A file, a folder, a glob pattern, ``@list.txt`` or a ``.csv`` of paths.

    Raises
    ------
    InputError
        ``source`` matches nothing (the message names it).
    """

    def __init__(self, source: str | os.PathLike):
        source = os.fspath(source)
        self.source = source
        if source.lower().endswith(".csv") and os.path.isfile(source):
            self.paths = _csv_paths(source)
        else:
            self.paths = expand_inputs([source])

    def get_files(self) -> list:
        """Every acquisition opened (pixels, units, sidecar ROIs), in the list's order.

        A file that cannot be read is an :class:`UnreadableAcquisition` in its place: a
        batch gives it a FAILED row naming the file and the problem.
        """
        return [_open(path) for path in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator:
        return iter(self.get_files())

    def __repr__(self) -> str:
        return f"AcqImageList({self.source!r}, {len(self.paths)} files)"
