"""What the batch engine hands to the writer, input fingerprints and group names.

Only numpy, h5py and the standard library are used here, so MPI ranks can build and
pickle these records cheaply.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..analyses.base import AnalysisResult

__all__ = ["AnalysisRecord", "FileRecord", "file_fingerprint", "group_name", "OUTCOMES",
           "path_text"]

#: Outcome strings (values of ``hpcacq.jobs.batch.BatchFileOutcome``).
OUTCOMES = ("OK", "FAILED", "CANCELLED", "SKIPPED_MISSING_ROI", "SKIPPED_CONFLICT")


@dataclass
class AnalysisRecord:
    """One (analysis, channel, ROI) of one input file, as the writer stores it.

    Attributes
    ----------
    analysis : str
        Registered analysis name (:data:`hpcacq.analyses.registry.ANALYSIS_NAMES`).
    channel : int
        0-based channel.
    roi_id : int or None
        ROI id, None when the file failed before an ROI existed.
    roi_bounds : tuple of 4 int or None
        ``(r0, r1, c0, c1)``: half-open rows (lines, axis 0) and columns (pixels, axis 1).
    outcome : str
        ``"OK"``, ``"FAILED"``, ``"CANCELLED"``, ``"SKIPPED_MISSING_ROI"`` or ``"SKIPPED_CONFLICT"``.
    message : str
        Why the outcome is not OK (empty when OK).
    params : dict
        Validated analysis parameters (JSON-friendly values).
    result : AnalysisResult or None
        The table, present when ``outcome == "OK"``.
    elapsed_s : float
        Wall time of this analysis, in seconds.
    """

    analysis: str
    channel: int
    roi_id: int | None
    roi_bounds: tuple | None
    outcome: str
    message: str
    params: dict
    result: AnalysisResult | None
    elapsed_s: float


@dataclass
class FileRecord:
    """Everything the writer stores for one input file (picklable, sent from MPI ranks).

    Attributes
    ----------
    file_path : str
        The input path as the job was given it.
    fingerprint : dict
        ``{"size": int, "mtime_ns": int, "sha256": str | None}`` (see :func:`file_fingerprint`);
        empty when the file could not be read.
    records : list of AnalysisRecord
    rank : int
        MPI rank that analysed the file (0 without MPI).
    host : str
        Host name of that rank.
    timings : dict of str -> float
        Seconds, e.g. ``{"read_s": ..., "analyse_s": ..., "total_s": ...}``.
    n_lines : int
        Lines (axis 0) of the input image.
    resume : dict
        What ``--resume`` compares besides the fingerprint and parameters (JSON-friendly:
        companion files' fingerprints, the image's ctime and inode, the job options; see
        :mod:`hpcacq.jobs.resume`); empty when unknown (such a result is never reused).
    """

    file_path: str
    fingerprint: dict
    records: list[AnalysisRecord]
    rank: int = 0
    host: str = ""
    timings: dict = field(default_factory=dict)
    n_lines: int = 0
    resume: dict = field(default_factory=dict)


def file_fingerprint(path: str | os.PathLike, *, sha256: bool = False) -> dict:
    """Size, modification time and optionally SHA-256 of an input file.

    Parameters
    ----------
    path : str or path-like
    sha256 : bool, keyword-only
        Also hash the content (reads the whole file; off by default).

    Returns
    -------
    dict
        ``{"size": bytes, "mtime_ns": int, "sha256": hex str or None}``.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    stat = os.stat(path)
    digest = None
    if sha256:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        digest = hasher.hexdigest()
    return {"size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns), "sha256": digest}


def path_text(path: Any) -> str:
    """``path`` as a str that HDF5 can store as UTF-8.

    Undecodable bytes (``os.fsdecode`` surrogates) are written as ``\\xNN`` escapes.
    """
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def group_name(path: Any) -> str:
    """Safe, unique, stable HDF5 group name of an input path.

    The sanitised basename (letters, digits, ``._+-``; at most 40 characters) followed by
    ``-`` and the first 12 hex digits of the SHA-1 of the full path text, e.g.
    ``Capillary1_0001.tif-3f2a9c01b7de``. The same path string always gives the same
    name; two paths differ in name even when their basenames are equal.
    """
    text = path_text(path)
    base = os.path.basename(text.rstrip("/")) or "file"
    safe = _UNSAFE.sub("_", base).strip("._") or "file"
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    return f"{safe[:40]}-{digest}"
