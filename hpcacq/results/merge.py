"""Merge several results files (e.g. the outputs of a SLURM job array) into one.

Each input may be consolidated or linked (a job still running or killed: its external links
are followed). Every file group is rebuilt from the analyses of every input: an input file
analysed for velocity in one results file and for diameter in another keeps both. The same
analysis (file, ROI, analysis and channel: one ``roi_<id>/<analysis>_ch<c>`` group) in several
inputs: an OK result is never replaced by a failure; two failures, the later wins; two OK
results with the same answer (parameters and every column bit for bit) are one; two OK
results with different answers are a conflict, refused unless ``on_conflict="later"``
(``hpcacq merge --overwrite``). The output is written under a ``.tmp`` name and renamed
into place, like the writer does, so a killed merge never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import h5py
import numpy as np

from ..errors import InputError, ParameterError
from ..versions import software_versions
from .keep import ROW_ATTR, row_json
from .layout import read_manifest_columns, write_manifest
from .reader import _open
from .store import commit, open_h5, utc_now, write_root_attrs

__all__ = ["merge_results", "MergeReport"]


class MergeReport(dict):
    """What :func:`merge_results` did: ``inputs``, ``n_files``, ``n_rows``, ``replaced``
    (analyses found in more than one input, later one kept: a later failure over an earlier
    failure, or a conflict resolved by ``on_conflict="later"``), ``kept_ok`` (analyses where
    an earlier OK result was kept over a later failure), ``same`` (identical OK results in
    several inputs) and ``conflicts`` (file, dataset) of different OK answers."""


def _same_answer(a: h5py.Group, b: h5py.Group) -> bool:
    """Do two stored OK analyses hold the same parameters and columns, bit for bit?"""
    if str(a.attrs.get("params_json", "")) != str(b.attrs.get("params_json", "")):
        return False
    names = str(a.attrs.get("columns_json", "[]"))
    if names != str(b.attrs.get("columns_json", "[]")):
        return False
    for name in json.loads(names):
        x, y = a[name][()], b[name][()]
        if x.dtype != y.dtype or x.shape != y.shape or np.asarray(x).tobytes() != np.asarray(y).tobytes():
            return False
    return True


def _choose(paths: list[str], on_conflict: str) -> tuple[dict, list[dict], MergeReport]:
    """(group, dataset) -> (input index, row), in first-seen order; job descriptions; report."""
    chosen: dict[tuple[str, str], tuple[int, dict]] = {}
    jobs, report = [], MergeReport(replaced=[], kept_ok=[], same=[], conflicts=[])
    for index, path in enumerate(paths):
        with _open(path) as handle:
            jobs.append({"results": path, "job": json.loads(handle.attrs.get("job_json", "{}"))})
            for row in read_manifest_columns(handle):
                key = (row["group"], row["dataset"])
                if key in chosen:
                    verdict = _compare(paths, chosen[key], index, row, handle)
                    report[verdict].append(key if verdict != "conflicts" else (row["file"], row["dataset"]))
                    if verdict in ("kept_ok", "same") or (verdict == "conflicts" and on_conflict != "later"):
                        continue
                    if verdict == "conflicts":
                        report["replaced"].append(key)
                    del chosen[key]  # re-added below: the later copy
                chosen[key] = (index, row)
    if report["conflicts"] and on_conflict != "later":
        shown = "; ".join(f"{f} {d}" for f, d in report["conflicts"][:5])
        raise ParameterError(f"{len(report['conflicts'])} analyses differ between the results files (same input "
                             f"file, analysis, channel and ROI, different answers), e.g. {shown}; pass --overwrite "
                             "(on_conflict='later') to keep the later file's, or merge the files separately")
    return chosen, jobs, report


def _compare(paths: list[str], earlier: tuple[int, dict], index: int, row: dict, handle: h5py.File) -> str:
    """How a later copy of one analysis relates to the one chosen so far."""
    old_ok, new_ok = earlier[1]["outcome"] == "OK", row["outcome"] == "OK"
    if old_ok and not new_ok:
        return "kept_ok"
    if not (old_ok and new_ok):
        return "replaced"
    with _open(paths[earlier[0]]) as first:
        a = first["files"][row["group"]][row["dataset"]]
        b = handle["files"][row["group"]][row["dataset"]]
        return "same" if _same_answer(a, b) else "conflicts"


def merge_results(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                  overwrite: bool = False, on_conflict: str = "refuse", fsync: bool = True) -> MergeReport:
    """Copy the analyses and manifest rows of every results file in ``inputs`` into ``output``.

    Parameters
    ----------
    overwrite : bool, keyword-only
        Replace an existing ``output``.
    on_conflict : {"refuse", "later"}, keyword-only
        Two OK results of the same file, analysis, channel and ROI with different answers:
        refuse (ParameterError, nothing written) or keep the later input's.

    Raises
    ------
    InputError
        An input is missing or not an hpcacq results file.
    ParameterError
        No inputs, an input is also the output, ``output`` exists and ``overwrite`` is
        False, or conflicting answers with ``on_conflict="refuse"``.
    """
    paths = [os.fspath(p) for p in inputs]
    output = os.fspath(output)
    if on_conflict not in ("refuse", "later"):
        raise ParameterError(f"on_conflict={on_conflict!r} must be 'refuse' or 'later'")
    if not paths:
        raise ParameterError("nothing to merge: give at least one results file")
    if any(os.path.abspath(p) == os.path.abspath(output) for p in paths):
        raise ParameterError(f"{output} is both an input and the output; choose another output name")
    if os.path.exists(output) and not overwrite:
        raise ParameterError(f"{output} exists; pass --overwrite to replace it")
    chosen, jobs, report = _choose(paths, on_conflict)
    rows_out = [row for _, row in chosen.values()]
    groups = list(dict.fromkeys(group for group, _ in chosen))
    tmp = output + ".tmp"
    try:
        with open_h5(tmp, "w") as out:
            write_root_attrs(out, layout="consolidated", n_files=len(groups), n_rows=len(rows_out), created=utc_now(),
                             versions=software_versions(), job_attrs={"merged_from": paths, "merged_jobs": jobs})
            files = out.create_group("files")
            for index, path in enumerate(paths):
                wanted = [(key, row) for key, (i, row) in chosen.items() if i == index]
                if wanted:
                    with _open(path) as src:
                        _copy_analyses(path, src, files, wanted)
            write_manifest(out, rows_out)
        commit(tmp, output, fsync=fsync)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    report.update(inputs=paths, n_files=len(groups), n_rows=len(rows_out))
    return report


def _copy_analyses(path: str, src: h5py.File, files: h5py.Group, wanted: list) -> None:
    """Copy the chosen analyses of one input (and its file groups' attrs) into ``files``."""
    for (group, dataset), row in wanted:
        if group not in src["files"]:
            raise InputError(f"{path}: manifest names group {group!r} but /files has no such group (file damaged?)")
        source = src["files"][group]
        target = files.require_group(group)
        for name, value in source.attrs.items():  # the file's attrs: the latest input's win
            target.attrs[name] = value
        if not dataset or dataset not in source:
            continue
        roi, name = dataset.split("/", 1)
        parent = target.require_group(roi)
        if name in parent:
            del parent[name]
        src.copy(source[dataset], parent, name=name)
        parent[name].attrs[ROW_ATTR] = row_json(row)
