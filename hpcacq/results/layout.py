"""The HDF5 layout of one input file's results and of the manifest table (see docs/HDF5.md).

``write_file_group`` turns a :class:`FileRecord` into ``/files/<group>/roi_<id>/<analysis>_ch<c>``
groups of 1-D column datasets; ``read_analysis`` turns one such group back into an
:class:`AnalysisResult`. ``write_manifest`` / ``read_manifest_columns`` store the table of
rows (one per file, analysis, channel and ROI) as a group of 1-D column datasets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from ..analyses.base import AnalysisResult
from .records import FileRecord, path_text

__all__ = ["MANIFEST_COLUMNS", "write_file_group", "manifest_rows", "write_manifest", "create_manifest",
           "rows_to_columns", "write_manifest_columns", "append_manifest_columns",
           "manifest_slices", "n_column_rows", "columns_to_rows",
           "read_manifest_columns", "read_analysis", "analysis_path", "to_json", "FORMAT"]

FORMAT = "hpcacq-results"
STR = h5py.string_dtype("utf-8")
MANIFEST_CHUNK_ROWS = 1024  # rows per chunk of an appendable manifest column

#: Manifest column -> kind ("str", "int" or "float"); -1 / "" stand for "none".
MANIFEST_COLUMNS = {
    "file": "str", "group": "str", "dataset": "str", "analysis": "str", "channel": "int",
    "roi_id": "int", "outcome": "str", "message": "str", "n_rows": "int", "rank": "int",
    "host": "str", "elapsed_s": "float", "size": "int", "mtime_ns": "int", "sha256": "str",
    "params_json": "str", "resume_json": "str",
}


def to_json(value: Any) -> str:
    """JSON text of attrs values (tuples become lists, numpy scalars plain numbers)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)
    return json.dumps(value, default=default, sort_keys=True)


def analysis_path(record: Any) -> str:
    """Path of an analysis group inside its file group, e.g. ``roi_1/radon_velocity_ch0``."""
    roi = "roi_none" if record.roi_id is None else f"roi_{int(record.roi_id)}"
    return f"{roi}/{record.analysis}_ch{int(record.channel)}"


def _scalar_attrs(attrs: h5py.AttributeManager, prefix: str, values: dict) -> None:
    for name, value in values.items():
        if isinstance(value, (bool, int, float, str, np.generic)) and "/" not in str(name):
            attrs[f"{prefix}{name}"] = value


def _write_analysis(group: h5py.Group, record: Any) -> None:
    attrs = group.attrs
    attrs["analysis"] = record.analysis
    attrs["channel"] = int(record.channel)
    attrs["roi_id"] = -1 if record.roi_id is None else int(record.roi_id)
    attrs["roi_bounds"] = np.asarray(record.roi_bounds if record.roi_bounds is not None else [], dtype=np.int64)
    attrs["outcome"] = str(record.outcome)
    attrs["message"] = path_text(record.message or "")
    attrs["elapsed_s"] = float(record.elapsed_s or 0.0)
    params = dict(record.params or {})
    attrs["params_json"] = to_json(params)
    _scalar_attrs(attrs, "param_", params)
    result = record.result
    if result is None:
        attrs["n_rows"] = 0
        return
    attrs["n_rows"] = _n_rows(result)
    attrs["columns_json"] = to_json(list(result.columns))
    attrs["units_json"] = to_json(dict(result.units))
    attrs["flag_bits_json"] = to_json(dict(result.flag_bits))
    _scalar_attrs(attrs, "flag_bit_", dict(result.flag_bits))
    attrs["summary_json"] = to_json(dict(result.summary))
    _scalar_attrs(attrs, "summary_", dict(result.summary))
    for name, column in result.columns.items():
        dataset = group.create_dataset(name, data=np.asarray(column))
        dataset.attrs["units"] = str(result.units.get(name, ""))


def _n_rows(result: AnalysisResult) -> int:
    return len(next(iter(result.columns.values()))) if result.columns else 0


def write_file_group(files: h5py.Group, name: str, record: FileRecord, versions_json: str) -> None:
    """Write ``record`` as ``files/<name>`` (replacing an older group of that name)."""
    if name in files:
        del files[name]
    group = files.create_group(name)
    attrs = group.attrs
    attrs["path"] = path_text(record.file_path)
    fingerprint = record.fingerprint or {}
    attrs["size"] = int(fingerprint.get("size", -1) if fingerprint.get("size") is not None else -1)
    attrs["mtime_ns"] = int(fingerprint.get("mtime_ns") if fingerprint.get("mtime_ns") is not None else -1)
    attrs["sha256"] = fingerprint.get("sha256") or ""
    attrs["rank"] = int(record.rank)
    attrs["host"] = str(record.host)
    attrs["n_lines"] = int(record.n_lines)
    attrs["timings_json"] = to_json(dict(record.timings or {}))
    _scalar_attrs(attrs, "timing_", dict(record.timings or {}))
    attrs["versions_json"] = versions_json
    for record_path, analysis in _unique_paths(record):
        _write_analysis(group.create_group(record_path), analysis)


def _unique_paths(record: FileRecord) -> list[tuple[str, Any]]:
    seen: set[str] = set()
    out = []
    for analysis in record.records:
        base = path = analysis_path(analysis)
        n = 1
        while path in seen:
            n += 1
            path = f"{base}_{n}"
        seen.add(path)
        out.append((path, analysis))
    return out


def manifest_rows(record: FileRecord, name: str) -> list[dict]:
    """Manifest rows (one per analysis record) of a file written as group ``name``."""
    fingerprint = record.fingerprint or {}
    common = {"file": path_text(record.file_path), "group": name, "rank": int(record.rank),
              "host": str(record.host), "size": _int_or(fingerprint.get("size")),
              "mtime_ns": _int_or(fingerprint.get("mtime_ns")), "sha256": fingerprint.get("sha256") or "",
              "resume_json": to_json(record.resume) if getattr(record, "resume", None) else ""}
    rows = []
    for path, analysis in _unique_paths(record):
        rows.append({**common, "dataset": path, "analysis": analysis.analysis, "channel": int(analysis.channel),
                     "roi_id": _int_or(analysis.roi_id), "outcome": str(analysis.outcome),
                     "message": path_text(analysis.message or ""),
                     "n_rows": 0 if analysis.result is None else _n_rows(analysis.result),
                     "elapsed_s": float(analysis.elapsed_s or 0.0), "params_json": to_json(dict(analysis.params or {}))})
    if not rows:
        rows.append({**common, "dataset": "", "analysis": "", "channel": -1, "roi_id": -1, "outcome": "FAILED",
                     "message": "the batch engine sent no analysis record for this file", "n_rows": 0,
                     "elapsed_s": 0.0, "params_json": "{}"})
    return rows


def _int_or(value: Any, default: int = -1) -> int:
    return default if value is None else int(value)


def _column_dtype(kind: str) -> Any:
    return STR if kind == "str" else (np.int64 if kind == "int" else np.float64)


def create_manifest(root: h5py.File, n_rows: int | None = None) -> h5py.Group:
    """An empty ``/manifest``: ``n_rows`` rows to fill, or (``None``) appendable, chunked columns."""
    manifest = root.create_group("manifest")
    manifest.attrs["columns_json"] = to_json(list(MANIFEST_COLUMNS))
    manifest.attrs["none_value"] = "-1 for integers, empty string for text"
    for name, kind in MANIFEST_COLUMNS.items():
        if n_rows is None:
            manifest.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(MANIFEST_CHUNK_ROWS,),
                                    dtype=_column_dtype(kind))
        else:
            manifest.create_dataset(name, shape=(int(n_rows),), dtype=_column_dtype(kind))
    return manifest


def rows_to_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """Manifest rows (dicts) as one array per column."""
    columns = {}
    for name, kind in MANIFEST_COLUMNS.items():
        values = [row[name] for row in rows]
        if kind == "str":
            column = np.empty(len(values), dtype=object)
            column[:] = values
        else:
            column = np.asarray(values, dtype=_column_dtype(kind)).reshape(len(values))
        columns[name] = column
    return columns


def n_column_rows(columns: dict[str, np.ndarray]) -> int:
    """Number of rows in a dict of manifest columns."""
    return len(columns["group"])


def write_manifest_columns(manifest: h5py.Group, start: int, columns: dict[str, np.ndarray]) -> None:
    """Write ``columns`` into rows ``start``... of a fixed-size manifest."""
    n = n_column_rows(columns)
    if n:
        for name in MANIFEST_COLUMNS:
            manifest[name][start:start + n] = columns[name]


def append_manifest_columns(manifest: h5py.Group, columns: dict[str, np.ndarray]) -> None:
    """Append ``columns`` to an appendable manifest (see :func:`create_manifest`)."""
    n = n_column_rows(columns)
    if not n:
        return
    start = manifest["group"].shape[0]
    for name in MANIFEST_COLUMNS:
        manifest[name].resize((start + n,))
        manifest[name][start:] = columns[name]


def manifest_slices(root: h5py.File, step: int = 4096) -> Iterator[dict[str, np.ndarray]]:
    """``/manifest`` of a results or shard file in slices of at most ``step`` rows (text as str).

    A column missing from an older file reads as its none value (-1 or "").
    """
    if "manifest" not in root:
        return
    manifest = root["manifest"]
    n = manifest["group"].shape[0]
    for start in range(0, n, step):
        stop = min(n, start + step)
        columns = {}
        for name, kind in MANIFEST_COLUMNS.items():
            if name not in manifest:
                columns[name] = (np.full(stop - start, "", dtype=object) if kind == "str"
                                 else np.full(stop - start, -1, dtype=_column_dtype(kind)))
            elif kind == "str":
                columns[name] = manifest[name].asstr()[start:stop]
            else:
                columns[name] = manifest[name][start:stop]
        yield columns


def write_manifest(root: h5py.File, rows: list[dict]) -> None:
    """Write ``rows`` as ``/manifest``: one 1-D dataset per column, one entry per row."""
    write_manifest_columns(create_manifest(root, len(rows)), 0, rows_to_columns(rows))


def read_manifest_columns(root: h5py.File) -> list[dict]:
    """Rows of ``/manifest`` as dicts (text decoded, -1 kept as stored)."""
    if "manifest" not in root:
        return []
    manifest = root["manifest"]
    columns = {}
    for name, kind in MANIFEST_COLUMNS.items():
        if name not in manifest:
            continue
        data = manifest[name]
        columns[name] = data.asstr()[()] if kind == "str" else data[()]
    return columns_to_rows(columns)


def columns_to_rows(columns: dict[str, np.ndarray]) -> list[dict]:
    """Manifest columns (arrays of equal length) as one dict per row, with plain Python values."""
    lists = {name: values.tolist() for name, values in columns.items()}
    n = len(next(iter(lists.values()))) if lists else 0
    return [{name: values[i] for name, values in lists.items()} for i in range(n)]


def _json_attr(attrs: h5py.AttributeManager, name: str, default: Any) -> Any:
    if name not in attrs:
        return default
    value = attrs[name]
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def read_analysis(group: h5py.Group) -> AnalysisResult:
    """The :class:`AnalysisResult` stored in one analysis group (bit-identical columns)."""
    attrs = group.attrs
    names = _json_attr(attrs, "columns_json", [])
    columns = {name: group[name][()] for name in names}
    units = {name: group[name].attrs.get("units", "") for name in names}
    summary = {k: (v if v is not None else math.nan) for k, v in _json_attr(attrs, "summary_json", {}).items()}
    return AnalysisResult(analysis=str(attrs["analysis"]), params=_json_attr(attrs, "params_json", {}),
                          columns=columns, units={k: str(v) for k, v in units.items()},
                          flag_bits=_json_attr(attrs, "flag_bits_json", {}), summary=summary)
