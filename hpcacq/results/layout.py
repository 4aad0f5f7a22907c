"""The HDF5 layout of one input file's results and of the manifest table (see docs/HDF5.md).

``write_file_group`` turns a :class:`FileRecord` into ``/files/<group>/roi_<id>/<analysis>_ch<c>``
groups of 1-D column datasets; ``read_analysis`` turns one such group back into an
:class:`AnalysisResult`. ``write_manifest`` / ``read_manifest_columns`` store the table of
rows (one per file, analysis, channel and ROI) as a group of 1-D column datasets.
"""

from __future__ import annotations

import json
import math
from typing import Any

import h5py
import numpy as np

from ..analyses.base import AnalysisResult
from .records import FileRecord, path_text

__all__ = ["MANIFEST_COLUMNS", "ManifestRow", "write_file_group", "manifest_rows", "write_manifest",
           "read_manifest_columns", "read_analysis", "analysis_path", "to_json", "FORMAT"]

FORMAT = "hpcacq-results"
STR = h5py.string_dtype("utf-8")

#: Manifest column -> kind ("str", "int" or "float"); -1 / "" stand for "none".
MANIFEST_COLUMNS = {
    "file": "str", "group": "str", "dataset": "str", "analysis": "str", "channel": "int",
    "roi_id": "int", "outcome": "str", "message": "str", "n_rows": "int", "rank": "int",
    "host": "str", "elapsed_s": "float", "size": "int", "mtime_ns": "int", "sha256": "str",
    "params_json": "str",
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
              "mtime_ns": _int_or(fingerprint.get("mtime_ns")), "sha256": fingerprint.get("sha256") or ""}
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


class ManifestRow:
    """One manifest row kept in memory by the writer: a slotted record, read as ``row[name]``.

    A writer holds one per stored (file, analysis, channel, ROI) for the whole job, so it is
    kept small: ~200 bytes plus the file and group names, instead of ~1 KB for a dict; text
    that repeats from row to row (host, analysis, outcome, parameters, ...) is stored once
    through ``strings``.
    """

    __slots__ = tuple(MANIFEST_COLUMNS)
    _UNIQUE = ("file", "group", "sha256", "message")  # mostly unique per file: not shared

    def __init__(self, row: dict, strings: dict[str, str] | None = None) -> None:
        for name, kind in MANIFEST_COLUMNS.items():
            value = row[name]
            if kind == "str" and strings is not None and name not in self._UNIQUE:
                value = strings.setdefault(value, value)
            setattr(self, name, value)

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in MANIFEST_COLUMNS}

    def __repr__(self) -> str:
        return f"ManifestRow({self.as_dict()!r})"


def _int_or(value: Any, default: int = -1) -> int:
    return default if value is None else int(value)


def write_manifest(root: h5py.File, rows: "list[dict] | list[ManifestRow]") -> None:
    """Write ``rows`` as ``/manifest``: one 1-D dataset per column, one entry per row."""
    manifest = root.create_group("manifest")
    manifest.attrs["columns_json"] = to_json(list(MANIFEST_COLUMNS))
    manifest.attrs["none_value"] = "-1 for integers, empty string for text"
    for name, kind in MANIFEST_COLUMNS.items():
        values = [row[name] for row in rows]
        if kind == "str":
            data = np.array(values, dtype=object) if values else np.zeros(0, dtype=object)
            manifest.create_dataset(name, data=data, dtype=STR)
        else:
            manifest.create_dataset(name, data=np.asarray(values, dtype=np.int64 if kind == "int" else np.float64))


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
        columns[name] = list(data.asstr()[()]) if kind == "str" else data[()].tolist()
    n = len(next(iter(columns.values()))) if columns else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


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
