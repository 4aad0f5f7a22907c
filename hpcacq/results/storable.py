"""A record the results writer cannot store becomes a FAILED record it can (never a poisoned job).

Values in a :class:`~hpcacq.results.FileRecord` come from the analyses and from the input
files (ROI ids from a sidecar, parameters, messages). The writer stores ids and counts as
int64 and result columns with their numeric dtype; an id of 2**63 or a column of Python
objects has no HDF5 form. :func:`failed_copy` turns such a record into one holding only
safe values: the same input file, one FAILED analysis per original analysis, and a message
naming the file and what could not be stored, so that file is a FAILED row and every other
file of the job is kept.
"""

from __future__ import annotations

from typing import Any

from .records import AnalysisRecord, FileRecord, path_text

__all__ = ["failed_copy", "INT64_MIN", "INT64_MAX"]

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_MESSAGE_CHARS = 2000  # keeps every attribute far below HDF5's 64 KiB limit


def _int_or_none(value: Any) -> int | None:
    """``value`` as an int that fits int64, None if it is not one."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if INT64_MIN <= number <= INT64_MAX and number == value else None


def _text(value: Any, limit: int = 200) -> str:
    try:
        text = path_text(value)
    except Exception:  # noqa: BLE001 - any object: its type is still a useful message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def failed_copy(record: FileRecord, error: BaseException) -> FileRecord:
    """A storable FAILED copy of ``record``, whose write raised ``error``.

    Parameters
    ----------
    record : FileRecord
        The record the writer could not store.
    error : BaseException
        What the write raised (its type and text go into the message).

    Returns
    -------
    FileRecord
        Same file path, fingerprint values that fit int64 (others unknown), one FAILED
        :class:`AnalysisRecord` per original analysis (ids that do not fit int64 become
        None, no result table, no parameters), and a message that names the file, the
        analysis and the error.
    """
    path = _text(record.file_path, limit=10_000)
    fingerprint = record.fingerprint if isinstance(record.fingerprint, dict) else {}
    safe_fingerprint = {"size": _int_or_none(fingerprint.get("size")),
                        "mtime_ns": _int_or_none(fingerprint.get("mtime_ns")),
                        "sha256": fingerprint.get("sha256") if isinstance(fingerprint.get("sha256"), str) else None}
    reason = f"{type(error).__name__}: {_text(error, limit=500)}"
    analyses = list(record.records or []) or [None]
    out = []
    for analysis in analyses:
        name = _text(getattr(analysis, "analysis", "") or "", limit=100)
        roi = getattr(analysis, "roi_id", None)
        message = (f"{path}: the results writer cannot store the {name or 'analysis'} result"
                   f" (ROI id {_text(roi, limit=60)}): {reason}; the values must fit the results' types "
                   "(ids and counts int64, numeric result columns): check the file's sidecar and header")
        out.append(AnalysisRecord(analysis=name, channel=_int_or_none(getattr(analysis, "channel", -1)) or 0,
                                  roi_id=_int_or_none(roi), roi_bounds=None, outcome="FAILED",
                                  message=message[:_MESSAGE_CHARS], params={}, result=None,
                                  elapsed_s=_float(getattr(analysis, "elapsed_s", 0.0))))
    return FileRecord(file_path=record.file_path if isinstance(record.file_path, str) else path,
                      fingerprint=safe_fingerprint, records=out, rank=_int_or_none(record.rank) or 0,
                      host=_text(record.host, limit=200), timings={}, n_lines=_int_or_none(record.n_lines) or 0)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
