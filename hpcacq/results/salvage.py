"""Opening an existing output safely: what ``--overwrite`` may remove, what ``--resume`` can salvage.

* ``--overwrite`` removes only what hpcacq wrote: a regular HDF5 file with ``format =
  "hpcacq-results"`` (or, when the root is unreadable, one whose parts folder holds only
  shards), and a parts folder holding only shards. A device, ``/dev/null``, a folder or
  any other file is refused with a message.
* ``--resume`` (and ``hpcacq repair``) of a damaged output keeps every intact shard: an
  unreadable root whose parts folder exists is rebuilt from the shards, and a shard that
  cannot be read (truncated by a full disk, damaged) is set aside as
  ``shard-NNNNN.h5.damaged``; its files are rerun by the resumed job.
"""

from __future__ import annotations

import os
import re
import stat

import h5py

from ..errors import HpcacqError, ParameterError
from .layout import FORMAT

__all__ = ["OutputError", "check_removable", "read_root", "set_aside", "output_error", "ensure_space", "record_bytes",
           "stored_job_attrs",
           "RESERVE_BYTES"]

_OURS = re.compile(r"^shard-\d{5,}\.h5(\.tmp|\.damaged)?$")


class OutputError(HpcacqError, OSError):
    """The results output cannot be written or read (full disk, read-only folder, damaged file)."""


def output_error(exc: OSError, path: str, doing: str) -> OutputError:
    """A one-line, actionable :class:`OutputError` for an ``OSError`` met while ``doing`` on ``path``."""
    reason = exc.strerror or str(exc)
    hint = {28: "free space on that file system (or choose another --output)",
            30: "the file system is read-only: choose an --output on a writable one",
            13: "you may not write there: choose another --output or fix its permissions",
            122: "the disk quota is exceeded: free space or choose another --output"}.get(exc.errno or 0,
                                                                                          "check the output folder")
    error = OutputError(f"cannot {doing} {path}: {reason}; {hint}; results already stored are kept "
                        "and --resume continues the job")
    error.errno = exc.errno
    return error


def _only_shards(parts: str) -> bool:
    try:
        return all(_OURS.match(entry) for entry in os.listdir(parts))
    except OSError:
        return False


def check_removable(path: str, parts: str) -> None:
    """Raise ParameterError unless ``path`` and ``parts`` hold only hpcacq results (``--overwrite``)."""
    if os.path.lexists(parts) and (not os.path.isdir(parts) or os.path.islink(parts) or not _only_shards(parts)):
        raise ParameterError(f"--overwrite refused: {parts} holds files hpcacq did not write; "
                             "remove it yourself or choose another --output")
    if not os.path.lexists(path):
        return
    mode = os.stat(path).st_mode if os.path.exists(path) else 0
    if not stat.S_ISREG(mode):
        raise ParameterError(f"--overwrite refused: {path} is not a regular file (a device, folder or broken "
                             "link); choose another --output")
    try:
        with h5py.File(path, "r") as handle:
            ours = handle.attrs.get("format") == FORMAT
    except OSError:
        ours = os.path.isdir(parts) and _only_shards(parts)  # a damaged root next to its shards
    if not ours:
        raise ParameterError(f"--overwrite refused: {path} is not an hpcacq results file (no attr "
                             f"format={FORMAT!r}); delete it yourself or choose another --output")


def read_root(path: str, parts: str) -> tuple[str | None, str | None, list[str]]:
    """(layout, created_utc, notes) of an existing output for resume; None layout when there is none.

    An unreadable root with a parts folder is rebuilt from its shards (layout ``"linked"``,
    with a note); without one it cannot be salvaged (ParameterError).
    """
    if not os.path.exists(path):
        return None, None, []
    if not os.path.isfile(path):
        raise ParameterError(f"cannot resume: {path} is not a regular file; choose another --output")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        if os.path.isdir(parts) and _only_shards(parts):
            return "linked", None, [f"{path} is damaged ({_short(exc)}): rebuilt from the shards in {parts}"]
        raise ParameterError(f"cannot resume: {path} is not a readable HDF5 file ({_short(exc)}) and has no "
                             f"parts folder to rebuild it from; pass --overwrite to replace it") from None
    with handle:
        if handle.attrs.get("format") != FORMAT:
            raise ParameterError(f"{path} exists but is not an hpcacq results file (no attr format={FORMAT!r}); "
                                 "choose another output name or pass --overwrite to replace it")
        layout = str(handle.attrs.get("layout", "consolidated"))
        created = handle.attrs.get("created_utc")
        return layout, None if created is None else str(created), []


def set_aside(shard: str, exc: BaseException) -> str:
    """Rename an unreadable shard to ``<shard>.damaged`` (out of the resume); return a note."""
    os.replace(shard, shard + ".damaged")
    return (f"{shard} cannot be read ({_short(exc)}): set aside as {os.path.basename(shard)}.damaged; "
            "its files are run again")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:200] + "..."


RESERVE_BYTES = 1 << 20  # left free on the output's file system: HDF5 must never meet a full disk


def ensure_space(path: str, need: int, doing: str) -> None:
    """Raise :class:`OutputError` unless ``need`` bytes (+ a 1 MiB reserve) are free where ``path`` lives.

    HDF5 does not survive a full disk (write errors surface in object destructors, then a
    segmentation fault), so the writer checks before each write instead of meeting ENOSPC.
    """
    folder = path if os.path.isdir(path) else (os.path.dirname(path) or ".")
    try:
        st = os.statvfs(folder)
    except OSError:
        return  # the write itself will say what is wrong
    free = st.f_bavail * st.f_frsize
    if free < need + RESERVE_BYTES:
        error = OutputError(f"cannot {doing} {path}: no space left on device ({free / 2**20:.2f} MiB free, "
                            f"about {(need + RESERVE_BYTES) / 2**20:.2f} MiB needed); free space or choose "
                            "another --output; results already stored are kept and --resume continues the job")
        error.errno = 28
        raise error


def record_bytes(record) -> int:
    """Upper estimate of the bytes one FileRecord takes in a shard (columns + HDF5 overhead)."""
    total = 64 << 10
    for analysis in record.records or []:
        total += 32 << 10
        result = getattr(analysis, "result", None)
        for column in (getattr(result, "columns", None) or {}).values():
            total += int(getattr(column, "nbytes", 0) or 8 * len(column))
    return total


def stored_job_attrs(path: str, parts: str) -> dict:
    """The job description stored with an output: from its root, else from its newest readable shard."""
    import json

    candidates = [path]
    if os.path.isdir(parts):
        candidates += sorted((os.path.join(parts, e) for e in os.listdir(parts) if re.match(r"^shard-\d+\.h5$", e)),
                             reverse=True)
    for candidate in candidates:
        try:
            with h5py.File(candidate, "r") as handle:
                if handle.attrs.get("format") == FORMAT:
                    return json.loads(handle.attrs.get("job_json", "{}"))
        except (OSError, ValueError):
            continue
    return {}
