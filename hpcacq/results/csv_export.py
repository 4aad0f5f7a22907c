"""CSV tables of a results file that explain themselves (``hpcacq export --format csv``).

One CSV per input file and analysis (or one table per analysis with ``single=True``),
one row per window (velocity) or line (diameter). Every row carries its context: the
input file, channel, ROI id and bounds, ``dx_um``, ``dt_s`` and the window; the stored
``flags`` bit mask becomes one boolean column per flag (``flag_theta_90``, ...), named
from the flag bits stored with each result (never from a fixed list). ``columns.json``
beside the tables is the data dictionary: unit and meaning of every column written.

No column is named like an attribute of a pandas DataFrame (``flags``, ``index``, ...),
so ``df.flag_theta_90`` and ``df["file"]`` both mean what they say.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from .reader import iter_results

__all__ = ["export_tables", "DICTIONARY_NAME", "describe_column", "RESERVED", "summary_table", "write_summary_csv"]

DICTIONARY_NAME = "columns.json"
#: Names pandas uses for DataFrame attributes; a stored column with such a name gets a ``_value`` suffix.
RESERVED = frozenset({"flags", "index", "columns", "T", "values", "shape", "size", "ndim", "dtypes", "empty",
                      "axes", "attrs", "style", "at", "iat", "loc", "iloc", "plot", "count", "mean", "median",
                      "min", "max", "sum", "std", "var", "mode", "first", "last", "pop", "get", "filter", "where",
                      "query", "abs", "round", "rank", "diff", "prod", "product", "sem", "skew", "kurt", "all",
                      "any", "clip", "copy", "info", "items", "keys", "head", "tail", "sample", "update", "add",
                      "sub", "mul", "div", "pow", "mod", "dot", "eq", "ne", "lt", "gt", "le", "ge", "cov",
                      "corr", "describe", "apply", "map", "pipe", "agg", "transform", "melt", "pivot", "stack",
                      "unstack", "explode", "merge", "join", "align", "between_time", "asof", "name", "time"})

#: Context columns first, in this order, with (unit, meaning).
CONTEXT = {
    "file": ("", "input file, as the run was given it (the results' manifest path)"),
    "analysis": ("", "analysis: radon_velocity (blood-cell velocity) or diameter (vessel width)"),
    "channel": ("", "channel analysed, 0-based"),
    "roi_id": ("", "ROI analysed: 0 = the whole image (--roi new), else the id in the file's kymflow sidecar"),
    "roi_first_line": ("line", "first image line (row, time axis) of the ROI, 0-based, included"),
    "roi_stop_line": ("line", "image line after the ROI's last one (half-open: lines roi_first_line..roi_stop_line-1)"),
    "roi_first_pixel": ("px", "first pixel (column, space axis) of the ROI, 0-based, included"),
    "roi_stop_pixel": ("px", "pixel after the ROI's last one (half-open)"),
    "dx_um": ("um/px", "pixel size along the scan line, micrometres per pixel"),
    "dt_s": ("s/line", "time between two lines, seconds per line"),
    "window": ("", "0-based index of this row's window (velocity) or line (diameter) within the ROI"),
    "window_first_line": ("line", "first image line of the window (0-based); diameter: the line measured"),
    "window_lines": ("line", "lines in the window: velocity window_lines (windows start every window_lines/4 "
                             "lines); diameter window_rows (lines averaged around the measured line)"),
}

#: Meanings of the measurement columns the analyses write today; others get a generic text.
MEANINGS = {
    "time_s": "time of the window centre (velocity) or of the line (diameter), seconds from the image's first line",
    "theta_deg": "angle of the streaks in the window (0-180 deg; 90 = vertical streaks = velocity undefined)",
    "velocity_mm_s": "blood-cell velocity, positive toward increasing pixel index; NaN when undefined",
    "velocity_clean_mm_s": "velocity after kymflow's cleaning (+-2 SD cut, 3-point median); NaN when removed",
    "separability": "how clearly one angle wins: variance at the best angle / mean variance (1 = no streaks)",
    "left_px": "left vessel edge, pixels from the ROI's first pixel (sub-pixel)",
    "right_px": "right vessel edge, pixels from the ROI's first pixel (sub-pixel)",
    "diameter_px": "vessel diameter = right_px - left_px, pixels",
    "left_um": "left vessel edge in micrometres (left_px x dx_um)",
    "right_um": "right vessel edge in micrometres (right_px x dx_um)",
    "diameter_um": "vessel diameter in micrometres (diameter_px x dx_um)",
    "fit_quality": "R^2 of the profile fit (method fit; NaN for halfmax)",
}

#: Meanings of the flags known today; flags added later are named from the file and get a generic text.
FLAG_MEANINGS = {
    "theta_90": "the best angle is 90 deg: streaks along space, velocity undefined (NaN)",
    "low_separability": "separability below min_separability: no clear streak angle, velocity untrustworthy",
    "clean_rejected": "a finite velocity removed by the cleaning (velocity_clean_mm_s is NaN)",
    "left_edge_missing": "no left edge crossing the half maximum: diameter NaN",
    "right_edge_missing": "no right edge crossing the half maximum: diameter NaN",
    "no_contrast": "the profile has no contrast (peak = baseline): no vessel seen",
    "fit_not_converged": "the profile fit did not converge within max_iter steps",
    "fit_poor": "the profile fit's R^2 is below min_fit_r2",
}

#: kymflow's names (``--kymflow-columns``), with (unit, meaning).
KYMFLOW = {
    "delx": ("um/px", "kymflow's name for dx_um"),
    "delt": ("s/line", "kymflow's name for dt_s"),
    "numLines": ("line", "kymflow's name for the lines of the analysed ROI (the image's for --roi new)"),
    "pntsPerLine": ("px", "kymflow's name for the pixels per line of the analysed ROI (the image's for --roi new)"),
}


def _flag_column(name: str) -> str:
    return "flag_" + re.sub(r"[^0-9A-Za-z_]", "_", str(name))


def _value_column(name: str) -> str:
    return f"{name}_value" if name in RESERVED or name in CONTEXT or name in KYMFLOW else name


def describe_column(name: str, unit: str = "") -> dict:
    """``{"unit", "meaning"}`` of a measurement column stored as ``name`` with ``unit``."""
    meaning = MEANINGS.get(name, f"the analysis' column {name!r} as stored in the results file")
    return {"unit": "" if unit == "1" else unit, "meaning": meaning}


class _Table:
    """One CSV: its header is fixed by the first result that reaches it. The file is open
    only while rows are written (a job of 100,000 files gives as many tables)."""

    def __init__(self, path: str, header: list[str]):
        self.path, self.header = path, header
        self.handle: Any = None
        self._started = False

    def write(self, rows: Iterable[list], *, keep_open: bool) -> None:
        if self.handle is None:
            self.handle = open(self.path, "a" if self._started else "w", newline="", encoding="utf-8")
            writer = csv.writer(self.handle, quoting=csv.QUOTE_MINIMAL)
            if not self._started:
                writer.writerow(self.header)
                self._started = True
        csv.writer(self.handle, quoting=csv.QUOTE_MINIMAL).writerows(rows)
        if not keep_open:
            self.close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _window_columns(meta: dict, result: Any, n: int, r0: int) -> dict[str, np.ndarray]:
    params = result.params
    index = np.arange(n, dtype=np.int64)
    if "window_lines" in params:  # velocity windows overlap by 3/4
        lines = int(params["window_lines"])
        first = r0 + index * max(1, lines // 4)
    else:
        lines = int(params.get("window_rows", 1))
        first = r0 + index
    return {"window": index, "window_first_line": first, "window_lines": np.full(n, lines, dtype=np.int64)}


def _rows(meta: dict, result: Any, header: list[str], kymflow: bool) -> Iterable[list]:
    columns = result.columns
    n = len(columns["time_s"]) if "time_s" in columns else len(next(iter(columns.values()), []))
    bounds = meta["roi_bounds"] or (0, n, 0, 0)
    r0, r1, c0, c1 = (int(b) for b in bounds)
    params = result.params
    data: dict[str, Any] = {
        "file": meta["file"], "analysis": meta["analysis"], "channel": meta["channel"],
        "roi_id": "" if meta["roi_id"] is None else meta["roi_id"], "roi_first_line": r0, "roi_stop_line": r1,
        "roi_first_pixel": c0, "roi_stop_pixel": c1, "dx_um": params.get("dx_um", ""),
        "dt_s": params.get("dt_s", ""),
    }
    if kymflow:
        data.update(delx=data["dx_um"], delt=data["dt_s"], numLines=r1 - r0, pntsPerLine=c1 - c0)
    arrays = _window_columns(meta, result, n, r0)
    for name, values in columns.items():
        if name != "flags":
            arrays[_value_column(name)] = np.asarray(values)
    flags = np.asarray(columns.get("flags", np.zeros(n, dtype=np.int64))).astype(np.int64)
    for name, bit in result.flag_bits.items():
        arrays[_flag_column(name)] = (flags & int(bit)) != 0
    constant = [data.get(name, "") if name not in arrays else None for name in header]
    lists = {name: arrays[name].tolist() for name in header if name in arrays}
    for i in range(n):
        yield [lists[name][i] if name in lists else constant[k] for k, name in enumerate(header)]


def _header(result: Any, kymflow: bool) -> list[str]:
    header = list(CONTEXT) + (list(KYMFLOW) if kymflow else [])
    header += [_value_column(name) for name in result.columns if name != "flags"]
    header += [_flag_column(name) for name, _ in sorted(result.flag_bits.items(), key=lambda item: item[1])]
    return header


def _table_name(meta: dict, used: set[str], single: bool) -> str:
    if single:
        return f"{meta['analysis']}.csv"
    stem = os.path.splitext(os.path.basename(str(meta["file"])))[0] or "file"
    stem = re.sub(r"[\x00-\x1f/\\:*?\"<>|]", "_", stem)
    name = f"{stem}.{meta['analysis']}.csv"
    if name in used:
        name = f"{re.sub(r'[^0-9A-Za-z_.-]', '_', meta['group'])}.{meta['analysis']}.csv"
    return name


def export_tables(results: str | os.PathLike, folder: str | os.PathLike, *, single: bool = False,
                  kymflow: bool = False) -> list[str]:
    """Write the OK results of ``results`` as CSV tables and ``columns.json`` into ``folder``.

    Parameters
    ----------
    results : path
        An hpcacq results file (``.h5``).
    folder : path
        Created if needed.
    single : bool, keyword-only
        One table per analysis (``radon_velocity.csv``, ``diameter.csv``) instead of one
        per input file and analysis (``<file stem>.<analysis>.csv``).
    kymflow : bool, keyword-only
        Also write kymflow's column names ``delx``, ``delt``, ``numLines``, ``pntsPerLine``.

    Returns
    -------
    list of str
        The CSV files written (``columns.json`` is written too when any is).
    """
    os.makedirs(folder, exist_ok=True)
    tables: dict[tuple, _Table] = {}
    names: dict[tuple, str] = {}
    dictionary: dict[str, dict] = {name: {"unit": unit, "meaning": text} for name, (unit, text) in CONTEXT.items()}
    if kymflow:
        dictionary.update({name: {"unit": unit, "meaning": text} for name, (unit, text) in KYMFLOW.items()})
    try:
        for meta, result in iter_results(results):
            key = (meta["analysis"],) if single else (meta["file"], meta["analysis"])
            if key not in tables:
                names[key] = _table_name(meta, set(names.values()), single)
                tables[key] = _Table(os.path.join(os.fspath(folder), names[key]), _header(result, kymflow))
            for name in result.columns:
                if name != "flags":
                    dictionary.setdefault(_value_column(name), describe_column(name, result.units.get(name, "")))
            for name, bit in result.flag_bits.items():
                dictionary.setdefault(_flag_column(name), {
                    "unit": "true/false", "meaning": f"flag bit {int(bit)} ({name}): "
                    + FLAG_MEANINGS.get(name, "see the analysis' documentation")})
            table = tables[key]
            table.write(_rows(meta, result, table.header, kymflow), keep_open=single)
    finally:
        for table in tables.values():
            table.close()
    if tables:
        doc = {"about": "Data dictionary of the CSV tables exported by `hpcacq export` from "
                        f"{os.path.basename(os.fspath(results))}: one row per window (velocity) or line "
                        "(diameter); flag_* columns are True when that flag is set on the row.",
               "tables": sorted(names.values()), "columns": dictionary}
        with open(os.path.join(os.fspath(folder), DICTIONARY_NAME), "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")
    return [table.path for table in tables.values()]


SUMMARY_COLUMNS = ("file", "analysis", "channel", "roi_id", "outcome", "message", "n_rows", "elapsed_s")


def summary_table(results: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """One row per manifest row (file, analysis, channel, ROI) with its outcome, message and
    every number of the stored result summary (``median_velocity_mm_s``, ``fraction_nan``,
    ``fraction_<flag>``, ...: whatever the analysis stores, so new figures appear by
    themselves). Returns ``(header, rows)``; summary cells are empty for results not OK."""
    from .reader import read_manifest

    figures: dict[tuple, dict] = {}
    for meta, result in iter_results(results):
        key = (meta["file"], meta["analysis"], meta["channel"], meta["roi_id"])
        figures[key] = {k: v for k, v in result.summary.items() if isinstance(v, (int, float, np.number))}
    names = sorted({name for values in figures.values() for name in values})
    header = list(SUMMARY_COLUMNS) + [_value_column(name) for name in names]
    rows = []
    for row in read_manifest(results):
        roi_id = None if row["roi_id"] is None or row["roi_id"] < 0 else row["roi_id"]
        values = figures.get((row["file"], row["analysis"], row["channel"], roi_id), {})
        out = {name: row.get(name, "") for name in SUMMARY_COLUMNS}
        out["roi_id"] = "" if roi_id is None else roi_id
        out.update({_value_column(name): values.get(name, "") for name in names})
        rows.append(out)
    return header, rows


def write_summary_csv(results: str | os.PathLike, handle: Any) -> list[dict]:
    """Write :func:`summary_table` as CSV to the open text ``handle``; returns its rows."""
    header, rows = summary_table(results)
    writer = csv.DictWriter(handle, fieldnames=header, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    writer.writerows(rows)
    return rows
