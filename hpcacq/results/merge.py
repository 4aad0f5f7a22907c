"""Merge several results files (e.g. the outputs of a SLURM job array) into one.

Each input may be consolidated or linked (a job still running or killed: its external links
are followed). Every file group is copied (``H5Ocopy``) with its manifest rows; when the same
input file appears in several results, the copy from the later results file on the command
line wins, unless it is not OK and an earlier one is (an OK result is never replaced by a
failure). The output is written under a ``.tmp`` name and renamed into place, like the writer
does, so a killed merge never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from typing import Iterable

import h5py

from ..errors import InputError, ParameterError
from .layout import read_manifest_columns, write_manifest
from .reader import _open
from .records import software_versions
from .store import commit, open_h5, utc_now, write_root_attrs

__all__ = ["merge_results", "MergeReport"]


class MergeReport(dict):
    """What :func:`merge_results` did: ``inputs``, ``n_files``, ``n_rows``, ``replaced``
    (groups found in more than one input, later one kept), ``kept_ok`` (groups where an
    earlier OK result was kept over a later failure)."""


def _all_ok(rows: list[dict]) -> bool:
    return bool(rows) and all(row["outcome"] == "OK" for row in rows)


def merge_results(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                  overwrite: bool = False, fsync: bool = True) -> MergeReport:
    """Copy the file groups and manifest rows of every results file in ``inputs`` into ``output``.

    Raises
    ------
    InputError
        An input is missing or not an hpcacq results file.
    ParameterError
        No inputs, an input is also the output, or ``output`` exists and ``overwrite`` is False.
    """
    paths = [os.fspath(p) for p in inputs]
    output = os.fspath(output)
    if not paths:
        raise ParameterError("nothing to merge: give at least one results file")
    if any(os.path.abspath(p) == os.path.abspath(output) for p in paths):
        raise ParameterError(f"{output} is both an input and the output; choose another output name")
    if os.path.exists(output) and not overwrite:
        raise ParameterError(f"{output} exists; pass --overwrite to replace it")

    chosen: dict[str, tuple[int, list[dict]]] = {}  # group -> (input index, rows)
    jobs = []
    replaced, kept_ok = [], []
    for index, path in enumerate(paths):
        with _open(path) as handle:
            jobs.append({"results": path, "job": json.loads(handle.attrs.get("job_json", "{}"))})
            by_group: dict[str, list[dict]] = {}
            for row in read_manifest_columns(handle):
                by_group.setdefault(row["group"], []).append(row)
            for group, rows in by_group.items():
                if group in chosen:
                    if _all_ok(chosen[group][1]) and not _all_ok(rows):
                        kept_ok.append(group)
                        continue
                    replaced.append(group)
                chosen[group] = (index, rows)

    tmp = output + ".tmp"
    try:
        with open_h5(tmp, "w") as out:
            rows_out = [row for _, rows in chosen.values() for row in rows]
            write_root_attrs(out, layout="consolidated", n_files=len(chosen), n_rows=len(rows_out), created=utc_now(),
                             versions=software_versions(),
                             job_attrs={"merged_from": paths, "merged_jobs": jobs})
            files = out.create_group("files")
            for index, path in enumerate(paths):
                groups = [g for g, (i, _) in chosen.items() if i == index]
                if not groups:
                    continue
                with _open(path) as src:
                    for group in groups:
                        if group not in src["files"]:
                            raise InputError(f"{path}: manifest names group {group!r} but /files has no such "
                                             "group (file damaged?)")
                        src.copy(src["files"][group], files, name=group)
            write_manifest(out, rows_out)
        commit(tmp, output, fsync=fsync)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return MergeReport(inputs=paths, n_files=len(chosen), n_rows=sum(len(r) for _, r in chosen.values()),
                       replaced=replaced, kept_ok=kept_ok)
