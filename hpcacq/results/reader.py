"""Read a results file, linked (job running or killed) or consolidated (job closed)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import h5py

from ..analyses.base import AnalysisResult
from ..errors import InputError, ParameterError
from .layout import read_analysis, read_manifest_columns
from .records import path_text
from .store import check_format

__all__ = ["read_manifest", "iter_results", "read_job_attrs"]


def _open(path: str | os.PathLike) -> h5py.File:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"results file {path} does not exist; check the path given to --output")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        hint = (f"; `hpcacq repair {path}` rebuilds it from the shards in {path}.parts"
                if os.path.isdir(path + ".parts") else "")
        raise InputError(f"{path} is not a readable HDF5 file ({exc}){hint}") from None
    try:
        layout = check_format(handle, path)
    except ParameterError as exc:
        handle.close()
        raise InputError(str(exc)) from None
    if layout == "linked" and not os.path.isdir(path + ".parts"):
        handle.close()
        raise InputError(f"{path} is the root of a job that did not finish and its parts folder {path}.parts is "
                         "missing (deleted or moved): its results are gone; keep OUT.h5 next to OUT.h5.parts, "
                         "or run the job again with --overwrite")
    return handle


def _public_row(row: dict) -> dict:
    out = dict(row)
    for name in ("roi_id", "size", "mtime_ns"):
        if name in out and out[name] < 0:
            out[name] = None
    if "sha256" in out:
        out["sha256"] = out["sha256"] or None
    out["params"] = json.loads(out.get("params_json") or "{}")
    return out


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """One dict per (input file, analysis, channel, ROI), in the order files were stored.

    Keys: ``file`` (input path), ``group`` (name under ``/files``), ``dataset`` (analysis
    group inside it, e.g. ``roi_1/radon_velocity_ch0``), ``analysis``, ``channel``,
    ``roi_id`` (None if none), ``outcome``, ``message``, ``n_rows``, ``rank``, ``host``,
    ``elapsed_s`` (seconds), ``size`` (bytes), ``mtime_ns``, ``sha256`` (None if not
    computed), ``params`` (dict) and ``params_json``.

    Raises
    ------
    InputError
        The file does not exist or is not an hpcacq results file.
    """
    with _open(path) as handle:
        return [_public_row(row) for row in read_manifest_columns(handle)]


def iter_results(path: str | os.PathLike, file: str | os.PathLike | None = None
                 ) -> Iterator[tuple[dict, AnalysisResult]]:
    """Yield ``(info, AnalysisResult)`` for every OK analysis (of one input ``file`` if given).

    ``info`` holds ``file``, ``group``, ``dataset``, ``analysis``, ``channel``, ``roi_id``,
    ``roi_bounds`` (``(r0, r1, c0, c1)`` or None) and ``outcome``. Columns are read back
    bit-identical to what was written; ``params`` come from JSON (tuples become lists).

    Raises
    ------
    InputError
        The results file is unusable, or ``file`` (an input path or group name) is not in it.
    """
    wanted = None if file is None else path_text(file)
    with _open(path) as handle:
        rows = read_manifest_columns(handle)
        if wanted is not None:
            rows = [row for row in rows if wanted in (row["file"], row["group"])]
            if not rows:
                raise InputError(f"{wanted!r} is not among the input files of {os.fspath(path)}; "
                                 "`hpcacq summary` lists them")
        for row in rows:
            if row["outcome"] != "OK":
                continue
            try:
                group = handle["files"][row["group"]][row["dataset"]]
            except (KeyError, OSError) as exc:  # a link to a truncated or missing shard
                raise InputError(f"{os.fspath(path)}: the results of {row['file']!r} cannot be read "
                                 f"({' '.join(str(exc).split())}); the output is damaged: `hpcacq repair "
                                 f"{os.fspath(path)}` keeps every intact part (and --resume reruns the rest)") from None
            bounds = tuple(int(b) for b in group.attrs.get("roi_bounds", ()))
            info = {"file": row["file"], "group": row["group"], "dataset": row["dataset"],
                    "analysis": row["analysis"], "channel": row["channel"],
                    "roi_id": None if row["roi_id"] < 0 else row["roi_id"],
                    "roi_bounds": bounds or None, "outcome": row["outcome"]}
            yield info, read_analysis(group)


def read_job_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Job description and provenance stored at the root of a results file.

    Returns
    -------
    dict
        ``job`` (the job attrs dict), ``versions`` (software versions), ``created_utc``,
        ``updated_utc``, ``layout`` (``"linked"`` while a job runs or after a kill,
        ``"consolidated"`` once closed), ``n_files``, ``n_rows`` and ``format_version``.
    """
    with _open(path) as handle:
        attrs = handle.attrs
        return {"job": json.loads(attrs.get("job_json", "{}")), "versions": json.loads(attrs.get("versions_json", "{}")),
                "created_utc": str(attrs.get("created_utc", "")), "updated_utc": str(attrs.get("updated_utc", "")),
                "layout": str(attrs.get("layout", "")), "n_files": int(attrs.get("n_files", 0)),
                "n_rows": int(attrs.get("n_rows", 0)), "format_version": int(attrs.get("format_version", 0))}
