"""Several analyses per input file: a file written again keeps the analyses it does not replace.

One input file has one group ``/files/<group>``; each analysis of it is a subgroup
``roi_<id>/<analysis>_ch<c>``. When a resumed job (or ``merge``) writes the file again with
another analysis, channel or ROI, the earlier analyses stay: the new group gets a copy of
each old analysis group the new record does not replace, and their manifest rows. Each
analysis group carries its own manifest row (attr ``manifest_row_json``), so keeping it
needs no scan of the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import h5py

from .layout import MANIFEST_COLUMNS, to_json

__all__ = ["ROW_ATTR", "analysis_key", "replaces", "stored_analyses", "keep_analyses", "tag_rows", "row_json"]

ROW_ATTR = "manifest_row_json"


NEW_ROI = "ADD_NEW_ROI"


def analysis_key(row: dict) -> tuple[str, int, int, str | None]:
    """(analysis, channel, roi id or -1, ROI mode or None) of a manifest row."""
    try:
        mode = (json.loads(row.get("resume_json") or "{}").get("options") or {}).get("roi_mode")
    except (ValueError, AttributeError):
        mode = None
    return str(row["analysis"]), int(row["channel"]), int(row["roi_id"]), mode


def replaces(new: tuple, old: tuple) -> bool:
    """Does a new analysis ``new`` replace a stored one ``old`` (keys of :func:`analysis_key`)?

    Same analysis and channel, and: the same ROI; or one of them without an ROI (a file
    that failed before its ROI existed answers, or fails, for the whole file); or both made
    on a new whole-image ROI (``--roi new``: its id depends on the sidecar's ids, so a
    rerun after a sidecar change gets another id for the same answer).
    """
    if new[:2] != old[:2]:
        return False
    return new[2] == old[2] or -1 in (new[2], old[2]) or new[3] == old[3] == NEW_ROI


def _analysis_groups(group: h5py.Group) -> Iterable[tuple[str, h5py.Group]]:
    for roi_name, roi in group.items():
        if isinstance(roi, h5py.Group):
            for name, analysis in roi.items():
                if isinstance(analysis, h5py.Group):
                    yield f"{roi_name}/{name}", analysis


def _row_of(file_group: h5py.Group, path: str, analysis: h5py.Group) -> dict:
    """The manifest row of one stored analysis group (from its attr, else rebuilt from attrs)."""
    text = analysis.attrs.get(ROW_ATTR)
    if text is not None:
        row = json.loads(text)
        top = file_group.attrs  # what varies between identical runs is kept out of the attr
        row.update(rank=int(top.get("rank", -1)), host=str(top.get("host", "")),
                   elapsed_s=float(analysis.attrs.get("elapsed_s", 0.0)))
    else:  # written before analysis groups carried their row
        attrs, top = analysis.attrs, file_group.attrs
        row = {"file": str(top.get("path", "")), "analysis": str(attrs.get("analysis", "")),
               "channel": int(attrs.get("channel", -1)), "roi_id": int(attrs.get("roi_id", -1)),
               "outcome": str(attrs.get("outcome", "FAILED")), "message": str(attrs.get("message", "")),
               "n_rows": int(attrs.get("n_rows", 0)), "rank": int(top.get("rank", -1)),
               "host": str(top.get("host", "")), "elapsed_s": float(attrs.get("elapsed_s", 0.0)),
               "size": int(top.get("size", -1)), "mtime_ns": int(top.get("mtime_ns", -1)),
               "sha256": str(top.get("sha256", "")), "params_json": str(attrs.get("params_json", "{}")),
               "resume_json": ""}
    row["dataset"] = path
    defaults = {"str": "", "int": -1, "float": 0.0}
    return {name: row.get(name, defaults[kind]) for name, kind in MANIFEST_COLUMNS.items()}


def stored_analyses(file_group: h5py.Group) -> list[tuple[str, dict]]:
    """(path inside the file group, manifest row) of each analysis stored in ``file_group``."""
    return [(path, _row_of(file_group, path, analysis)) for path, analysis in _analysis_groups(file_group)]


def keep_analyses(old: h5py.Group, new: h5py.Group, new_rows: list[dict]) -> list[dict]:
    """Copy into ``new`` the analyses of ``old`` that ``new_rows`` do not replace; return their rows.

    The kept rows take the new group's ``file`` and ``group`` (the same input, maybe
    spelled canonically now) and keep everything else (their own fingerprint, outcome,
    parameters).
    """
    new_keys = [analysis_key(r) for r in new_rows if r["analysis"]]
    taken = {row["dataset"] for row in new_rows}
    kept = []
    for path, row in stored_analyses(old):
        if not row["analysis"] or path in taken or any(replaces(k, analysis_key(row)) for k in new_keys):
            continue
        roi, name = path.split("/", 1)
        new.require_group(roi)
        old.file.copy(old[path], new[roi], name=name)
        row = {**row, "file": new_rows[0]["file"], "group": new_rows[0]["group"]}
        new[path].attrs[ROW_ATTR] = row_json(row)
        kept.append(row)
        taken.add(path)
    return kept


_VOLATILE = ("rank", "host", "elapsed_s")  # differ between identical runs; read from other attrs


def row_json(row: dict) -> str:
    return to_json({name: value for name, value in row.items() if name not in _VOLATILE})


def tag_rows(file_group: h5py.Group, rows: list[dict]) -> None:
    """Store each row as attr ``manifest_row_json`` of its analysis group (rows with a dataset).

    Without rank, host and elapsed time (the file group's and analysis group's attrs hold
    them), so two identical runs store identical attrs.
    """
    for row in rows:
        if row["dataset"] and row["dataset"] in file_group:
            file_group[row["dataset"]].attrs[ROW_ATTR] = row_json(row)
