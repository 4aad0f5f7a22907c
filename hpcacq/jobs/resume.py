"""What ``--resume`` compares to decide that a file is already done (and anything else is rerun).

A stored result is reused only when everything that determines it is unchanged:

* the input, named by one canonical path (:func:`canonical_path`): ``d/x.tif``, ``./d/x.tif``
  and ``/abs/d/x.tif`` are the same file everywhere (manifest, groups, done index);
* the content of the image **and** of every file its units or ROIs come from: the Olympus
  header ``<stem>.txt`` and the kymflow sidecar ``<stem>.json`` beside it (present or absent);
  size and modification time first, then the SHA-256 stored when the file was analysed,
  recomputed only when the file's ctime or inode changed (an edit that restores size and
  mtime still changes the ctime, which no user call can set back; see :func:`same_content`);
* the analysis, channel, ROI mode and id, the units given on the command line (or their
  absence: then the units come from the unchanged header files), and the full parameter set.

The workers stamp each OK record with this (:class:`StampedJob`); rank 0 compares with
:func:`already_done` while planning a resumed job.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any

from ..io.companions import companion_paths
from ..results.layout import to_json

__all__ = ["canonical_path", "input_fingerprint", "job_options", "StampedJob", "stamp", "already_done",
           "same_content"]

_HASH_BLOCK = 1 << 20


def canonical_path(path: str) -> str:
    """The one spelling of an input path used everywhere: absolute, its folder resolved.

    The folder is resolved (``.``, ``..``, symbolic links) and the file name kept as given,
    so two symbolic links to one file with different sidecars stay two inputs.
    """
    text = os.fspath(path)
    absolute = os.path.abspath(text)
    folder, name = os.path.split(absolute)
    return os.path.join(_real_folder(folder), name) if name else absolute


@functools.lru_cache(maxsize=256)
def _real_folder(folder: str) -> str:
    """``os.path.realpath`` of a folder, cached: a job's files come folder by folder."""
    return os.path.realpath(folder)


def _sha256(path: str) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


def _stat_entry(path: str, *, digest: bool) -> dict | None:
    """size, mtime_ns, ctime_ns, inode (+ sha256) of a regular file; None when absent."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not os.path.isfile(path):
        return None
    entry = {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "ctime_ns": int(st.st_ctime_ns),
             "ino": int(st.st_ino)}
    if digest:
        entry["sha256"] = _sha256(path)
    return entry


def input_fingerprint(path: str, *, digest: bool = True) -> dict:
    """Fingerprint of an input and of its companion files (see the module docstring).

    Parameters
    ----------
    path : str
        The image file.
    digest : bool, keyword-only
        Also hash the contents (SHA-256). Workers do, right after reading the file (it
        is in the page cache); rank 0 only hashes when :func:`same_content` needs it.

    Returns
    -------
    dict
        ``{"size", "mtime_ns", "ctime_ns", "ino", "sha256", "sources": {companion path:
        entry or None}}`` (companions keyed by their suffix, e.g. ``".txt"``).

    Raises
    ------
    OSError
        When the image cannot be read.
    """
    entry = _stat_entry(path, digest=digest)
    if entry is None:
        raise FileNotFoundError(2, "No such file", path)
    entry.setdefault("sha256", None)
    entry["sources"] = {os.path.splitext(p)[1]: _stat_entry(p, digest=digest) for p in companion_paths(path)}
    return entry


def job_options(strategy: Any) -> dict:
    """The job options that shape a result beyond its parameters: ROI mode and id, given units,
    and how the pixels were read (``transpose``, ``axes``; present only when set)."""
    mode = getattr(strategy, "roi_mode", None)
    options = {"roi_mode": getattr(mode, "name", None if mode is None else str(mode)),
               "roi_id": getattr(strategy, "roi_id", None),
               "dx_um_given": getattr(strategy, "dx_um", None), "dt_s_given": getattr(strategy, "dt_s", None)}
    read = getattr(strategy, "read_options", None) or {}
    options.update({name: read[name] for name in ("transpose", "axes") if read.get(name) not in (None, False)})
    return options


class StampedJob:
    """Wrap a file job so each OK record carries what resume compares (see :func:`stamp`).

    ``record.fingerprint`` becomes :func:`input_fingerprint` (hashes included) and
    ``record.resume`` holds ``{"sources": ..., "ctime_ns", "ino", "options": job_options}``.
    Every other attribute is the wrapped job's.
    """

    def __init__(self, job: Any):
        self._job = job
        self._options = job_options(job.strategy) if hasattr(job, "strategy") else {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def run(self, index: int, path: str, progress: Any = None) -> Any:
        record = self._job.run(index, path) if progress is None else self._job.run(index, path, progress=progress)
        return stamp(record, path, self._options)


def stamp(record: Any, path: str, options: dict) -> Any:
    """Give an all-OK FileRecord of ``path`` what resume compares (others get the options only).

    ``options`` is :func:`job_options` of the job's strategy. Sets ``record.fingerprint``
    (size, mtime, SHA-256) and ``record.resume`` (``ctime_ns``, ``ino``, ``sources``,
    ``options``). A file that vanished meanwhile is left unstamped (never "done").
    """
    if record is None or getattr(record, "resume", None):
        return record
    if not all(a.outcome == "OK" for a in record.records):
        record.resume = {"options": options}  # which stored analyses this one replaces (results/keep.py)
        return record
    try:
        fingerprint = input_fingerprint(path)
    except OSError:
        record.resume = {"options": options}
        return record
    sources = fingerprint.pop("sources")
    record.fingerprint = {name: fingerprint[name] for name in ("size", "mtime_ns", "sha256")}
    record.resume = {"ctime_ns": fingerprint["ctime_ns"], "ino": fingerprint["ino"], "sources": sources,
                     "options": options}
    return record


def _same_stat(stored: dict, now: dict) -> bool:
    return stored.get("size") == now.get("size") and stored.get("mtime_ns") == now.get("mtime_ns")


def same_content(path: str, stored: dict, now: dict) -> bool:
    """Is ``path`` (stat ``now``) the file described by ``stored``? Hashes only when needed.

    Size and mtime must match. When the ctime and inode match too, the file has not been
    written since (writing updates the ctime, and no call sets it back); otherwise (a copy,
    a restore, ``touch -d``, a new hard link) its SHA-256 is computed and compared.
    """
    if stored is None or now is None:
        return stored is None and now is None
    if not _same_stat(stored, now):
        return False
    if stored.get("ctime_ns") == now.get("ctime_ns") and stored.get("ino") == now.get("ino"):
        return True
    if not stored.get("sha256"):
        return False
    try:
        return _sha256(path) == stored["sha256"]
    except OSError:
        return False


def _normal(value: Any) -> Any:
    return json.loads(to_json(value))


def _same_params(stored: dict, reference: dict) -> bool:
    """Every reference parameter equal; stored extras only the units read from the files."""
    stored, reference = _normal(stored or {}), _normal(reference)
    if any(stored.get(name, _MISSING) != value for name, value in reference.items()):
        return False
    return set(stored) - set(reference) <= {"dx_um", "dt_s"}


_MISSING = object()


def already_done(entry: Any, path: str, config: Any, reference: dict, *, options: dict | None = None) -> bool:
    """True when ``entry`` (a value of ``ResultsWriter.done_fingerprints()``) answers this job for ``path``.

    ``reference`` is ``config.strategy().reference_params()`` and ``options``
    ``job_options(config.strategy())`` (computed here when not given; a planner passes both
    once for all files). A record matches when it is OK, its analysis, channel, ROI options,
    given units and full parameters equal this job's, and the image and its companion files
    are unchanged (:func:`same_content`).
    """
    if not isinstance(entry, dict):
        return False
    options = _normal(job_options(config.strategy()) if options is None else options)
    now = None
    for record in entry.get("records") or []:
        if record.get("outcome", "OK") != "OK" or record.get("analysis") != config.analysis \
                or record.get("channel") != config.channel:
            continue
        resume = record.get("resume") or {}
        if resume.get("options") != options or not _same_params(record.get("params"), reference):
            continue
        if now is None:
            try:
                now = input_fingerprint(path, digest=False)
            except OSError:
                return False
        if _unchanged(path, record, resume, now):
            return True
    return False


def _unchanged(path: str, record: dict, resume: dict, now: dict) -> bool:
    fingerprint = record.get("fingerprint") or {}
    stored = {**fingerprint, "ctime_ns": resume.get("ctime_ns"), "ino": resume.get("ino")}
    if not same_content(path, stored, now):
        return False
    sources = resume.get("sources")
    if not isinstance(sources, dict) or set(sources) != set(now["sources"]):
        return False
    stem = os.path.splitext(path)[0]
    return all(same_content(stem + suffix, sources[suffix], now["sources"][suffix]) for suffix in sources)
