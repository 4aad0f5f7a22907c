"""The two figures: one input file (kymograph + traces) and a batch overview (one row per file).

Both return a :class:`matplotlib.figure.Figure` on an Agg canvas; write it with
:func:`hpcacq.plots.save_figure`. Sizes are in pixels.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..analyses.registry import REGISTRY
from .backend import new_figure
from .data import FilePlotData, file_plot_data, summary_rows
from .traces import UNIT_TEXT, draw_edges, draw_flags, draw_trace, has_edges

__all__ = ["file_figure", "summary_figure", "draw_file_figure", "OUTCOME_STYLES", "MAX_SUMMARY_ROWS"]

#: outcome -> (marker, colour) in the summary figure; SKIPPED_* outcomes share "SKIPPED".
OUTCOME_STYLES = {"OK": ("o", "tab:blue"), "FAILED": ("X", "tab:red"), "SKIPPED": ("s", "tab:orange"),
                  "CANCELLED": ("D", "0.45")}
MAX_SUMMARY_ROWS = 400  # more rows than this are not drawn (a note says how many were left out)
_SUMMARY_MARGIN_PX = 150  # title, axis label and legend around the rows


def _draw_kymograph(ax, kymo, traces, time_range) -> None:
    from matplotlib.patches import Rectangle

    image = kymo.image
    finite = image[np.isfinite(image)]
    vmin, vmax = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    height_um = image.shape[0] * kymo.dx_um
    ax.imshow(image, extent=(kymo.t0_s, kymo.t1_s, 0.0, height_um), origin="lower", aspect="auto", cmap="gray",
              vmin=vmin, vmax=max(vmax, vmin + 1e-9), interpolation="nearest")
    analysed = {t.info["roi_id"]: t.info["roi_bounds"] for t in traces if t.info["roi_bounds"]}
    rois = {roi_id: bounds for roi_id, bounds in kymo.rois}
    rois.update(analysed)
    for roi_id, (r0, r1, c0, c1) in sorted(rois.items(), key=lambda item: item[0] if item[0] is not None else -1):
        mine = roi_id in analysed
        x0, x1 = max(r0 * kymo.dt_s, kymo.t0_s), min(r1 * kymo.dt_s, kymo.t1_s)
        if x1 <= x0:
            continue
        ax.add_patch(Rectangle((x0, c0 * kymo.dx_um), x1 - x0, (c1 - c0) * kymo.dx_um, fill=False,
                               edgecolor="tab:orange" if mine else "yellow", linewidth=1.6 if mine else 1.0,
                               linestyle="-" if mine else "--", clip_on=False, zorder=3))
        name = "whole image" if roi_id is None else f"ROI {roi_id}"
        ax.text(x0, c1 * kymo.dx_um, f" {name}" + ("" if mine else " (not analysed)"), va="top", ha="left",
                fontsize=8, color="black", zorder=4,
                bbox={"boxstyle": "square,pad=0.15", "facecolor": "tab:orange" if mine else "yellow",
                      "edgecolor": "none", "alpha": 0.85})
    for trace in traces:
        if has_edges(trace) and trace.info["channel"] == kymo.channel:
            draw_edges(ax, trace, time_range=time_range)
            ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
    ax.set_ylabel("position (µm)")
    every = f"mean of {kymo.lines_per_column} lines per column" if kymo.lines_per_column > 1 else "every line"
    ax.set_title(f"kymograph, channel {kymo.channel} ({every}; {image.shape[0]} px x {kymo.dx_um:g} µm)",
                 loc="left", fontsize=9)


def draw_file_figure(data: FilePlotData, *, size: tuple[int, int] = (1600, 900), results_name: str = ""):
    """The file figure for already gathered ``data`` (see :func:`file_figure`)."""
    fig = new_figure(*size)
    strips = [0.12 + 0.06 * len(t.result.flag_bits) for t in data.traces]
    ratios = ([1.3] if data.kymograph is not None else []) + [r for s in strips for r in (1.0, s)]
    axes = fig.subplots(len(ratios), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": ratios})[:, 0]
    panels = list(axes)
    if data.kymograph is not None:
        _draw_kymograph(panels.pop(0), data.kymograph, data.traces, data.time_range)
    for i, trace in enumerate(data.traces):
        draw_trace(panels[2 * i], trace, time_range=data.time_range, max_points=size[0])
        draw_flags(panels[2 * i + 1], trace, time_range=data.time_range)
        key = f"DOUBTFUL {trace.info['analysis']} ch{trace.info['channel']} roi {trace.info['roi_id']}: "
        for note in data.notes:
            if note.startswith(key):  # the warning on the trace itself, not only in the title
                panels[2 * i].text(0.5, 0.5, "doubtful: " + note[len(key):], transform=panels[2 * i].transAxes,
                                   ha="center", va="center", color="tab:red", fontsize=9, wrap=True,
                                   bbox=dict(facecolor="white", alpha=0.85, edgecolor="tab:red"))
    if data.time_range is not None:
        axes[-1].set_xlim(*data.time_range)
    elif data.kymograph is not None:
        axes[-1].set_xlim(data.kymograph.t0_s, data.kymograph.t1_s)
    axes[-1].set_xlabel("time (s) from the first line of the file")
    title = os.path.basename(data.file.rstrip("/")) or data.file
    doubtful = [n for n in data.notes if n.startswith("DOUBTFUL ")]  # written across their trace
    sub = [f"from {results_name}" if results_name else "", *[n for n in data.notes if n not in doubtful],
           "DOUBTFUL: see the red note on the trace" if doubtful else ""]
    fig.suptitle(title + ("\n" + "; ".join(filter(None, sub)) if any(sub) else ""), fontsize=11)
    fig.hpcacq_notes = list(data.notes)  # what could not be drawn, for the command line to print
    return fig


def file_figure(results, file=None, *, analysis=None, channel=None, roi_id=None, time_range=None,
                size: tuple[int, int] = (1600, 900)):
    """Kymograph of one input file with its ROIs, and its velocity/diameter traces below.

    Parameters
    ----------
    results : path of an hpcacq results file
    file : the input (path as stored, group or base name); None: the first file (by path) with an OK analysis
    analysis : ``"velocity"``, ``"diameter"`` or None (every OK analysis of the file)
    channel, roi_id : keep only these (None: all)
    time_range : (t0_s, t1_s) to zoom on, seconds from the first line; None: everything
    size : (width, height) in pixels

    Returns
    -------
    matplotlib.figure.Figure
        Axes top to bottom: kymograph (time horizontal, space vertical; absent when the
        input file is gone or changed, which the title says), then one trace per analysis,
        all sharing the time axis.
    """
    data = file_plot_data(results, file, analysis=analysis, channel=channel, roi_id=roi_id,
                          time_range=time_range, max_columns=max(64, int(0.8 * size[0])))  # <= axes pixels
    return draw_file_figure(data, size=size, results_name=os.path.basename(os.fspath(results)))


def _outcome_key(outcome: str) -> str:
    return "SKIPPED" if outcome.startswith("SKIPPED") else outcome if outcome in OUTCOME_STYLES else "FAILED"


def _short(label: str, limit: int = 48) -> str:
    """``label`` cut in the middle to ``limit`` characters (file names share starts and ends)."""
    if len(label) <= limit:
        return label
    keep = (limit - 3) // 2
    return label[:keep] + "..." + label[-(limit - 3 - keep):]


def summary_size(n_rows: int, width: int = 1100) -> tuple[int, int]:
    """Default summary size: 22 px per row up to 60 rows, then 12 px per row."""
    per_row = 22 if n_rows <= 60 else 12
    return width, max(360, _SUMMARY_MARGIN_PX + per_row * n_rows)


def _draw_rows(ax, rows: list[dict], fontsize: float) -> None:
    y = np.arange(len(rows))
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_outcome_key(row["outcome"]), []).append(i)
    edge = ax.get_yaxis_transform()  # x in axes fraction, y in data
    ok = [i for i in groups.get("OK", []) if math.isfinite(rows[i]["median"])]
    if ok:
        med = np.array([rows[i]["median"] for i in ok])
        err = np.array([[rows[i]["median"] - rows[i]["q1"] for i in ok], [rows[i]["q3"] - rows[i]["median"] for i in ok]])
        ax.errorbar(med, y[ok], xerr=err, fmt="o", color="tab:blue", markersize=max(2.0, fontsize * 0.6),
                    elinewidth=1.0, capsize=2, label=f"OK ({len(groups['OK'])}): median, IQR whiskers")
    empty = [i for i in groups.get("OK", []) if not math.isfinite(rows[i]["median"])]
    if empty:
        ax.plot(np.full(len(empty), 0.01), y[empty], linestyle="none", marker="o", markerfacecolor="none",
                color="tab:blue", transform=edge, label=f"OK, no finite value ({len(empty)})")
    for name in ("FAILED", "SKIPPED", "CANCELLED"):
        idx = groups.get(name, [])
        if not idx:
            continue
        marker, colour = OUTCOME_STYLES[name]
        ax.plot(np.full(len(idx), 0.01), y[idx], linestyle="none", marker=marker, color=colour,
                markersize=max(3.0, fontsize * 0.8), transform=edge, clip_on=False, label=f"{name} ({len(idx)})")
        if fontsize >= 5:
            for i in idx:
                message = rows[i]["message"].replace(rows[i]["file"], rows[i]["label"])  # the path is on the left
                text = " ".join(f"{rows[i]['outcome']}: {message}".split())
                ax.text(0.025, y[i], text[:90] + ("..." if len(text) > 90 else ""), transform=edge, va="center",
                        fontsize=fontsize * 0.85, color=colour)


def summary_figure(results, *, analysis=None, channel=None, roi_id=None, size: tuple[int, int] | None = None):
    """Batch overview: one row per file (manifest row), median with IQR whiskers, outcome marker.

    Rows beyond :data:`MAX_SUMMARY_ROWS` are left out (the title says how many). ``size``
    None grows the height with the number of rows; a given size keeps it and shrinks the
    font. Returns the Figure; its one Axes has one y tick label per row drawn.
    """
    analysis, rows = summary_rows(results, analysis=analysis, channel=channel, roi_id=roi_id)
    total = len(rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    rows = rows[:MAX_SUMMARY_ROWS]
    width, height = size if size is not None else summary_size(len(rows))
    fig = new_figure(width, height)
    ax = fig.subplots()
    row_px = max(1.0, (height - _SUMMARY_MARGIN_PX) / max(1, len(rows)))
    fontsize = float(np.clip(row_px * 0.62 * 72 / fig.dpi, 3.0, 9.0))
    _draw_rows(ax, rows, fontsize)
    ax.set_yticks(np.arange(len(rows)), [_short(row["label"]) for row in rows], fontsize=fontsize)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    column = rows[0]["column"] if rows else ""
    entry = REGISTRY.get(analysis)
    stored_unit = entry.headline_unit if entry is not None and column == entry.headline else ""
    unit = UNIT_TEXT.get(stored_unit, stored_unit)
    ax.set_xlabel(f"{column} per file ({unit}): median, whiskers from the 1st to the 3rd quartile")
    lo, hi = ax.get_xlim()
    if lo < 0 < hi:
        ax.axvline(0.0, color="0.8", linewidth=0.6, zorder=0)
    ax.grid(True, axis="x", color="0.92")
    ax.grid(True, axis="y", color="0.96", linewidth=0.5)  # helps follow a row from its name
    left_out = f"; first {len(rows)} of {total} rows shown" if total > len(rows) else ""
    fig.suptitle(f"{os.path.basename(os.fspath(results))}: {analysis}, {total} rows ("
                 + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"){left_out}", fontsize=11)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=8, frameon=False, borderaxespad=0.2)
    fig.hpcacq_notes = [f"only the first {len(rows)} of {total} rows are drawn"] if left_out else []
    return fig
