"""Versions of the software that produced a result or a measurement: the one place they are collected.

:class:`~hpcacq.results.ResultsWriter` stores :func:`software_versions` with every result
(docs/HDF5.md) and ``hpcacq bench`` records ``software_versions(full=True)`` (docs/BENCH.md).
This module imports only the standard library at import time, so every layer may use it.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

__all__ = ["software_versions", "git_commit"]


def _installed(distribution: str) -> str | None:
    """Version of an installed distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding this hpcacq source tree.

    ``dirty`` is True when tracked files differ from that commit; ``(None, None)``
    outside a git checkout or when git cannot be run.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def software_versions(*, full: bool = False) -> dict:
    """Versions of hpcacq and of the libraries that shape its numbers.

    Parameters
    ----------
    full : bool
        False (what every result stores): ``hpcacq``, ``numpy``, ``numba``, ``h5py``,
        ``hdf5`` (the HDF5 library), ``python``; a missing numba reads
        ``"not installed"``. True (benchmark records) adds ``mpi4py`` and ``mpich``
        (None when not installed), ``git_commit`` and ``git_dirty`` (see :func:`git_commit`).

    Returns
    -------
    dict of str -> str (and None / bool values with ``full=True``)
    """
    import h5py
    import numpy

    from . import __version__

    versions: dict = {"hpcacq": __version__, "numpy": numpy.__version__,
                      "numba": _installed("numba") or "not installed", "h5py": h5py.version.version,
                      "hdf5": h5py.version.hdf5_version, "python": platform.python_version()}
    if full:
        commit, dirty = git_commit()
        versions.update({"mpi4py": _installed("mpi4py"), "mpich": _installed("mpich"), "git_commit": commit,
                         "git_dirty": dirty})
    return versions
