"""What the plots show, gathered from a results file (and the input image), without matplotlib.

:func:`file_plot_data` picks one input file of a results file, reads its OK analyses and,
when the input file is still where the job read it and unchanged, its kymograph reduced
for display (block means over time). :func:`summary_rows` gives one row per manifest
entry: outcome, median and quartiles of the measurement.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analyses.base import AnalysisResult
from ..analyses.registry import ALIASES, HEADLINE, REGISTRY
from ..errors import HpcacqError, InputError, ParameterError
from ..results import iter_results, read_manifest
from ..results.records import file_fingerprint, path_text

__all__ = ["ANALYSIS_NAMES", "MEASUREMENT", "Trace", "Kymograph", "FilePlotData", "normalize_analysis",
           "choose_file", "file_plot_data", "summary_rows", "block_mean", "doubtful_notes"]

#: Names accepted for ``analysis`` -> stored analysis name.
ANALYSIS_NAMES = dict(ALIASES)
#: The column summarised per file (median, quartiles) for each analysis.
MEASUREMENT = dict(HEADLINE)


@dataclass
class Trace:
    """One OK analysis of the plotted file: its manifest info and its result table."""

    info: dict
    result: AnalysisResult


@dataclass
class Kymograph:
    """A channel of the input image reduced for display.

    ``image`` is (n_pixels, n_columns) float32: space on axis 0, time on axis 1, each
    column the mean of ``lines_per_column`` consecutive lines (the last one may hold
    fewer), covering ``t0_s``..``t1_s`` seconds from the first line of the image.
    ``rois`` are the ROIs of the file's sidecar as ``(roi_id, (r0, r1, c0, c1))``.
    """

    image: np.ndarray
    lines_per_column: int
    t0_s: float
    t1_s: float
    dx_um: float
    dt_s: float
    channel: int
    rois: list = field(default_factory=list)


@dataclass
class FilePlotData:
    """Everything the file figure draws; ``notes`` say what could not be shown and why."""

    file: str
    traces: list
    kymograph: Kymograph | None
    notes: list = field(default_factory=list)
    time_range: tuple | None = None


def normalize_analysis(name: str | None) -> str | None:
    """A label or registered name -> registered name (registry ``ALIASES``); None stays None; unknown: error."""
    if name is None:
        return None
    try:
        return ANALYSIS_NAMES[name]
    except KeyError:
        raise ParameterError(f"no such analysis {name!r}; choose one of: {', '.join(ANALYSIS_NAMES)}") from None


def choose_file(rows: list[dict], file: str | os.PathLike | None) -> str:
    """The manifest ``file`` meant by ``file`` (path as stored, group name, same file on disk,
    or base name), or when ``file`` is None the first (by path) with an OK analysis."""
    files = list(dict.fromkeys(row["file"] for row in rows))
    if file is None:
        ok = sorted(row["file"] for row in rows if row["outcome"] == "OK")
        if ok:
            return ok[0]
        raise InputError("no file of this results file has an OK analysis; `hpcacq summary` lists why")
    wanted = path_text(file)
    for row in rows:
        if wanted in (row["file"], row["group"]):
            return row["file"]
    same = [f for f in files if _same_file(f, wanted)]
    if not same:
        same = [f for f in files if os.path.basename(f.rstrip("/")) == wanted]
    if len(same) == 1:
        return same[0]
    if len(same) > 1:
        raise InputError(f"{wanted!r} matches several input files ({', '.join(map(repr, same[:4]))}); "
                         "give the path as `hpcacq summary` shows it")
    hint = ", ".join(repr(os.path.basename(f)) for f in files[:5]) + (", ..." if len(files) > 5 else "")
    raise InputError(f"{wanted!r} is not among the {len(files)} input files of these results ({hint})")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _select(rows: list[dict], analysis: str | None, channel: int | None, roi_id: int | None) -> list[dict]:
    return [row for row in rows if (analysis is None or row["analysis"] == analysis)
            and (channel is None or row["channel"] == channel)
            and (roi_id is None or row["roi_id"] == roi_id)]


def _describe(rows: list[dict]) -> str:
    return "; ".join(f"{r['analysis']} ch{r['channel']} roi {r['roi_id']} {r['outcome']}" for r in rows) or "nothing"


def _traces(results: str, file: str, rows: list[dict], analysis, channel, roi_id) -> list[Trace]:
    mine = _select(rows, analysis, channel, roi_id)
    wanted = {(r["analysis"], r["channel"], r["roi_id"]) for r in mine if r["outcome"] == "OK"}
    if not wanted:
        what = " ".join(filter(None, [analysis and f"analysis {analysis}", channel is not None and f"channel {channel}",
                                      roi_id is not None and f"ROI {roi_id}"])) or "analysis"
        raise InputError(f"{file!r} has no OK {what} in these results; it has: {_describe(rows)}")
    traces = [Trace(info, result) for info, result in iter_results(results, file)
              if (info["analysis"], info["channel"], info["roi_id"]) in wanted]
    order = {name: i for i, name in enumerate(REGISTRY)}
    return sorted(traces, key=lambda t: (order.get(t.info["analysis"], 9), t.info["channel"], t.info["roi_id"] or 0))


def doubtful_notes(rows: list[dict], traces: list[Trace]) -> list[str]:
    """``"DOUBTFUL <analysis> ch<c> roi <r>: <why>"`` for each drawn trace whose OK outcome
    message says the measurement is doubtful (``"ok; doubtful: <why>"``)."""
    prefix = "ok; doubtful: "
    drawn = {(t.info["analysis"], t.info["channel"], t.info["roi_id"]) for t in traces}
    return [f"DOUBTFUL {r['analysis']} ch{r['channel']} roi {r['roi_id']}: {r['message'][len(prefix):]}"
            for r in rows if r["outcome"] == "OK" and (r["analysis"], r["channel"], r["roi_id"]) in drawn
            and (r.get("message") or "").startswith(prefix)]


def locate_input(results: str, file: str) -> str | None:
    """Where the input file is now: its stored path (relative to the working folder), else
    relative to the results file's folder; None when neither exists."""
    candidates = [file]
    if not os.path.isabs(file):
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(results)), file))
    return next((c for c in candidates if os.path.isfile(c)), None)


def _changed(path: str, row: dict) -> str | None:
    """Why the file at ``path`` is not the one analysed (None: same, or cannot tell)."""
    now = file_fingerprint(path, sha256=bool(row.get("sha256")))
    if row.get("size") is not None and now["size"] != row["size"]:
        return f"its size changed ({row['size']} -> {now['size']} bytes)"
    if row.get("sha256") and now["sha256"] != row["sha256"]:
        return "its content changed (SHA-256 differs)"
    return None


def _touched(path: str, row: dict) -> bool:
    """True when the file's modification time differs from the one stored (same size)."""
    return row.get("mtime_ns") is not None and os.stat(path).st_mtime_ns != row["mtime_ns"]


def block_mean(lines: np.ndarray, max_columns: int) -> tuple[np.ndarray, int]:
    """Mean of consecutive lines (axis 0) so that at most ``max_columns`` remain.

    Averaging whole blocks, instead of keeping every k-th line, shows what lies between the
    kept lines (no aliasing of fast streaks into slow ones). Returns ``(means, k)`` with
    means shaped (ceil(n / k), n_pixels) float32; the last block may hold fewer lines.
    """
    n = lines.shape[0]
    k = max(1, math.ceil(n / max(1, int(max_columns))))
    full = (n // k) * k
    parts = []
    if full:
        parts.append(lines[:full].reshape(n // k, k, -1).mean(axis=1, dtype=np.float64))
    if full < n:
        parts.append(lines[full:].mean(axis=0, dtype=np.float64)[None, :])
    return np.concatenate(parts).astype(np.float32), k


def _kymograph(path: str, trace: Trace, time_range, max_columns: int) -> Kymograph:
    from ..io import read_acquisition

    acq = read_acquisition(path)
    channel = trace.info["channel"]
    if channel >= acq.data.shape[0]:
        raise InputError(f"{path}: has {acq.data.shape[0]} channel(s), the results use channel {channel}")
    dt_s, dx_um = float(trace.result.params["dt_s"]), float(trace.result.params["dx_um"])
    n_lines = acq.data.shape[1]
    i0, i1 = 0, n_lines
    if time_range is not None:
        i0 = min(n_lines - 1, max(0, int(math.floor(time_range[0] / dt_s))))
        i1 = max(i0 + 1, min(n_lines, int(math.ceil(time_range[1] / dt_s))))
    image, k = block_mean(acq.data[channel, i0:i1], max_columns)
    rois = [(roi.roi_id, (roi.r0, roi.r1, roi.c0, roi.c1)) for roi in acq.rois]
    return Kymograph(image.T.copy(), k, i0 * dt_s, i1 * dt_s, dx_um, dt_s, channel, rois)


def file_plot_data(results: str | os.PathLike, file: str | os.PathLike | None = None, *,
                   analysis: str | None = None, channel: int | None = None, roi_id: int | None = None,
                   time_range: tuple[float, float] | None = None, max_columns: int = 2000) -> FilePlotData:
    """Gather one input file's OK analyses and its kymograph for :func:`file_figure`.

    Parameters
    ----------
    results : path of an hpcacq results file (.h5)
    file : input path as stored, group name, base name; None: the first file (by path) with an OK analysis
    analysis : a name of :data:`ANALYSIS_NAMES` (label or registered name) or None (all)
    channel, roi_id : keep only analyses of this 0-based channel / ROI id (None: all)
    time_range : (t0_s, t1_s) seconds from the first line, or None (everything)
    max_columns : the kymograph is block-averaged over time to at most this many columns

    Raises
    ------
    InputError, ParameterError
        Unusable results file, unknown file or analysis, nothing OK to plot.
    """
    results = os.fspath(results)
    analysis = normalize_analysis(analysis)
    if time_range is not None and not (0 <= time_range[0] < time_range[1]):
        raise ParameterError(f"time range {time_range[0]}:{time_range[1]} must satisfy 0 <= start < end (seconds)")
    rows = read_manifest(results)
    chosen = choose_file(rows, file)
    mine = [row for row in rows if row["file"] == chosen]
    traces = _traces(results, chosen, mine, analysis, channel, roi_id)
    data = FilePlotData(chosen, traces, None, time_range=time_range)
    data.notes.extend(doubtful_notes(mine, traces))
    path = locate_input(results, chosen)
    if path is None:
        data.notes.append("input file not found: traces only")
        return data
    why = _changed(path, mine[0])
    if why:
        data.notes.append(f"input file changed since the run ({why}): traces only")
        return data
    if _touched(path, mine[0]):
        data.notes.append("input file modified since the run (same size, new time stamp)")
    try:
        data.kymograph = _kymograph(path, traces[0], time_range, max_columns)
    except (HpcacqError, OSError) as exc:
        data.notes.append(f"input file unreadable ({' '.join(str(exc).split())[:120]}): traces only")
    return data


def _quartiles(values: Any) -> tuple[float, float, float, int]:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return math.nan, math.nan, math.nan, 0
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    return float(med), float(q1), float(q3), int(finite.size)


def summary_rows(results: str | os.PathLike, *, analysis: str | None = None, channel: int | None = None,
                 roi_id: int | None = None) -> tuple[str, list[dict]]:
    """One dict per manifest row of ``analysis`` (default: the most frequent one), sorted by file.

    Returns ``(analysis, rows)``; each row holds ``file``, ``label`` (base name, plus channel
    and ROI when a file has several), ``outcome``, ``message``, ``median``, ``q1``, ``q3``
    (NaN unless OK), ``n`` (finite values) and ``column`` (the summarised column).
    """
    results = os.fspath(results)
    analysis = normalize_analysis(analysis)
    rows = read_manifest(results)
    if not rows:
        raise InputError(f"{results} holds no files yet")
    if analysis is None:
        names = [row["analysis"] for row in rows]
        analysis = max(sorted(set(names)), key=names.count)  # the most frequent; a tie goes to the first name
    chosen = _select(rows, analysis, channel, roi_id)
    if not chosen:
        raise InputError(f"no {analysis} rows with these options in {results}; it has: "
                         f"{', '.join(sorted({r['analysis'] for r in rows}))}")
    chosen.sort(key=lambda row: (row["file"], row["channel"], -1 if row["roi_id"] is None else row["roi_id"]))
    column = MEASUREMENT[analysis]
    stats = {}
    for info, result in iter_results(results):
        if info["analysis"] == analysis and column in result.columns:
            stats[(info["file"], info["channel"], info["roi_id"])] = _quartiles(result.columns[column])
    per_file = {}
    for row in chosen:
        per_file[row["file"]] = per_file.get(row["file"], 0) + 1
    out = []
    for row in chosen:
        med, q1, q3, n = stats.get((row["file"], row["channel"], row["roi_id"]), (math.nan,) * 3 + (0,))
        label = os.path.basename(row["file"].rstrip("/")) or row["file"]
        if per_file[row["file"]] > 1:
            label += f" ch{row['channel']} roi {row['roi_id']}"
        out.append({"file": row["file"], "label": label, "outcome": row["outcome"], "message": row["message"],
                    "median": med, "q1": q1, "q3": q3, "n": n, "column": column})
    return analysis, out
