"""Draw one analysis' table on a matplotlib Axes: lines, flagged rows, robust y range.

What a panel shows comes from the analysis' registry line
(:class:`~hpcacq.analyses.registry.AnalysisEntry`): an analysis with a ``raw_column``
shows it and its cleaned headline (velocity: ``velocity_mm_s`` and ``velocity_clean_mm_s``);
the others show the headline per row and its median over blocks of rows (diameter:
``diameter_um``).
Flagged rows are marked on a strip under the trace (:func:`draw_flags`): one row per flag
bit, each with its own marker and colour, at the flagged rows' times. Values far outside
the bulk are drawn as triangles on the panel's edge, so one wild window cannot squash the
trace into a flat line.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..analyses.registry import REGISTRY, label_of
from .data import Trace

__all__ = ["draw_trace", "draw_flags", "draw_edges", "has_edges", "robust_limits", "FLAG_STYLES", "UNIT_TEXT"]

UNIT_TEXT = {"mm/s": "mm/s", "um": "µm", "px": "px", "s": "s", "deg": "deg"}
#: (marker, colour, size) per flag bit, in bit order; hollow markers are drawn unfilled.
FLAG_STYLES = [("o", "tab:orange", 3.5), ("x", "tab:red", 5), ("v", "tab:purple", 5), ("s", "tab:green", 4),
               ("D", "tab:brown", 4), ("P", "tab:pink", 5)]
_FENCE_IQR = 8.0  # values beyond quartiles +- 8 IQR are off scale


def robust_limits(values: np.ndarray) -> tuple[float, float]:
    """A y range holding every finite value unless a few lie far outside the bulk.

    The range is [min, max] of the finite values, narrowed to the quartiles +- 8
    interquartile ranges when values lie beyond that, then padded by 5 %.
    """
    finite = values[np.isfinite(values)]
    if not finite.size:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = float(q3 - q1)
    if iqr > 0:
        lo, hi = max(lo, q1 - _FENCE_IQR * iqr), min(hi, q3 + _FENCE_IQR * iqr)
    if hi <= lo:
        half = max(abs(lo) * 0.05, 1e-9)
        return lo - half, hi + half
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def _in_range(t: np.ndarray, time_range) -> np.ndarray:
    if time_range is None:
        return np.ones(t.shape, dtype=bool)
    return (t >= time_range[0]) & (t <= time_range[1])


def _block_median_curve(t: np.ndarray, y: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Median of consecutive rows (NaN ignored) so that about ``target`` points remain."""
    k = max(1, math.ceil(len(t) / max(1, target)))
    n = (len(t) // k) * k
    if n == 0:
        return t, y, 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        med = np.nanmedian(y[:n].reshape(-1, k), axis=1)
    return t[:n].reshape(-1, k).mean(axis=1), med, k


def _isolated(values: np.ndarray) -> np.ndarray:
    """Finite values whose neighbours are both NaN (or missing)."""
    finite = np.isfinite(values)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    return finite & ~before & ~after


def _draw_off_scale(ax, t, raw, limits) -> None:
    lo, hi = limits
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    label = f"off scale ({int((np.isfinite(raw) & ((raw > hi) | (raw < lo))).sum())})"
    for side, y, marker in ((raw > hi, 0.985, "^"), (raw < lo, 0.015, "v")):
        side &= np.isfinite(raw)
        if side.any():
            ax.plot(t[side], np.full(int(side.sum()), y), linestyle="none", marker=marker, color="black",
                    markersize=4, transform=transform, label=label)
            label = None


def draw_flags(ax, trace: Trace, *, time_range=None) -> None:
    """A strip under a trace: one row per flag bit, a marker at each flagged row's time.

    A strip rather than markers on the trace: on real data a flag can hold half of all
    windows (low separability), and markers on the values would hide the trace itself.
    """
    columns = trace.result.columns
    t = np.asarray(columns["time_s"], dtype=float)
    keep = _in_range(t, time_range)
    t = t[keep]
    flags = np.asarray(columns.get("flags", np.zeros(keep.size, dtype=np.int64)))[keep].astype(np.int64)
    bits = sorted(trace.result.flag_bits.items(), key=lambda item: item[1])
    labels = []
    for i, (name, bit) in enumerate(bits):
        marker, colour, size = FLAG_STYLES[i % len(FLAG_STYLES)]
        hit = (flags & int(bit)) != 0
        labels.append(f"{name} ({int(hit.sum())})")
        if hit.any():
            ax.plot(t[hit], np.full(int(hit.sum()), i), linestyle="none", marker=marker, color=colour,
                    markersize=size, markeredgewidth=0.8, alpha=0.7,
                    **({"markerfacecolor": "none"} if marker in "osD" else {}))
    ax.set_yticks(range(len(bits)), labels, fontsize=7)
    ax.set_ylim(max(len(bits), 1) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", color="0.92", linewidth=0.6)
    ax.set_ylabel("flagged", fontsize=8)


def _median_text(values: np.ndarray, unit: str) -> str:
    finite = values[np.isfinite(values)]
    return f"median {np.median(finite):.4g} {unit}" if finite.size else "no finite values"


def _draw_raw_and_cleaned(ax, t, raw, clean, raw_column: str, column: str) -> None:
    """The column before cleaning in grey, the cleaned headline over it."""
    ax.plot(t, raw, color="0.55", linewidth=0.6, label=f"raw ({raw_column})")
    ax.plot(t, clean, color="tab:blue", linewidth=0.8, label=f"cleaned ({column})")


def _draw_per_row(ax, t, values, column: str, max_points: int, row_word: str = "lines") -> None:
    """Every row (isolated values as dots) and the median over blocks of rows."""
    ax.plot(t, values, color="tab:blue", linewidth=0.5, alpha=0.7, label=f"{column} (NaN: gap)")
    alone = _isolated(values)
    if alone.any():  # a value between two NaNs draws no line segment: show it as a dot
        ax.plot(t[alone], values[alone], linestyle="none", marker=".", markersize=2, color="tab:blue")
    tm, med, k = _block_median_curve(t, values, max_points // 4)
    if k > 1:
        ax.plot(tm, med, color="black", linewidth=1.0, label=f"median of {k} {row_word}")


def draw_trace(ax, trace: Trace, *, time_range=None, max_points: int = 2000) -> None:
    """Draw ``trace`` (one analysis' result) on ``ax`` with legend and labels.

    What is drawn follows the analysis' registry line: its ``headline`` column, with
    ``raw_column`` in grey under it when it has one, a zero line when ``signed``, and
    ``row_word`` in the title.
    """
    columns, info = trace.result.columns, trace.info
    entry = REGISTRY.get(info["analysis"])
    column = entry.headline if entry is not None else "diameter_um"
    raw_column = entry.raw_column if entry is not None else None
    name = label_of(info["analysis"])
    t = np.asarray(columns["time_s"], dtype=float)
    keep = _in_range(t, time_range)
    t = t[keep]
    stored_unit = trace.result.units.get(raw_column or column, entry.headline_unit if entry is not None else "um")
    unit = UNIT_TEXT.get(stored_unit, stored_unit)
    headline = np.asarray(columns[column], dtype=float)[keep]
    if raw_column is not None:
        raw = np.asarray(columns[raw_column], dtype=float)[keep]
        _draw_raw_and_cleaned(ax, t, raw, headline, raw_column, column)
        summary = _median_text(headline, unit) + " cleaned"
    else:
        raw = headline
        _draw_per_row(ax, t, raw, column, max_points, entry.row_word if entry is not None else "lines")
        summary = _median_text(raw, unit)
    ax.set_ylabel(f"{name} ({unit})")
    limits = robust_limits(raw)
    ax.set_ylim(*limits)
    _draw_off_scale(ax, t, raw, limits)
    if entry is not None and entry.signed and limits[0] < 0 < limits[1]:
        ax.axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
    roi = "whole image" if info["roi_id"] is None else f"ROI {info['roi_id']}"
    rows = f"{len(t)} {entry.row_word if entry is not None else 'lines'}"
    ax.set_title(f"{name}, channel {info['channel']}, {roi}: {summary}, {rows}", loc="left", fontsize=9)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=7, frameon=False,
              borderaxespad=0.1, handletextpad=0.3, columnspacing=1.0)
    ax.grid(True, color="0.92", linewidth=0.6)


def has_edges(trace: Trace) -> bool:
    """Whether ``trace``'s analysis has edges to draw over the kymograph (registry ``edge_columns``)."""
    entry = REGISTRY.get(trace.info["analysis"])
    return entry is not None and entry.edge_columns is not None


def draw_edges(ax, trace: Trace, *, time_range=None, max_points: int = 2000) -> None:
    """Draw a result's left and right vessel edges over the kymograph.

    The edge columns are the analysis' registry ``edge_columns`` (diameter: ``left_px``,
    ``right_px``), in pixels from the centre of the ROI's first column; on the kymograph,
    whose µm axis starts at the image's first pixel edge, they sit at
    ``(c0 + 0.5 + edge_px) * dx_um``. Nothing is drawn for an analysis without edges.
    """
    entry = REGISTRY.get(trace.info["analysis"])
    if entry is None or entry.edge_columns is None:
        return
    columns = trace.result.columns
    c0 = trace.info["roi_bounds"][2] if trace.info["roi_bounds"] else 0
    dx_um = float(trace.result.params["dx_um"])
    t = np.asarray(columns["time_s"], dtype=float)
    keep = _in_range(t, time_range)
    label: str | None = f"vessel edges ({', '.join(entry.edge_columns)})"
    for name in entry.edge_columns:
        edge_um = (c0 + 0.5 + np.asarray(columns[name], dtype=float)[keep]) * dx_um
        tm, edge, _ = _block_median_curve(t[keep], edge_um, max_points // 2)
        ax.plot(tm, edge, color="tab:cyan", linewidth=0.8, alpha=0.9, label=label)
        label = None
