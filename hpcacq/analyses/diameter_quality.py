"""Diameter after the per-line edges: motion gating, post filter, and whether a vessel was seen.

Diameter needs a line scan ACROSS the vessel: every line must cross the lumen with
background on both sides. A scan ALONG the vessel (what velocity needs) sees lumen, or
background, over the whole line, so most lines have no edge; their diameters are NaN and
the few edges found in noise are not a vessel width. :func:`edge_warnings` says so when
fewer than :data:`MIN_FRACTION_WITH_EDGES` of the analysed lines have both edges.
"""

from __future__ import annotations

import math

import numpy as np

from .base import AnalysisResult
from .options import Units, stored_params

__all__ = ["MIN_FRACTION_WITH_EDGES", "assemble_result", "gate_and_filter", "edge_summary", "edge_warnings"]

MIN_FRACTION_WITH_EDGES = 0.5  # fewer lines with both edges than this: the file is doubtful


def gate_and_filter(params, dx_um: float, left: np.ndarray, right: np.ndarray,
                    flags: np.ndarray) -> dict[str, np.ndarray]:
    """Apply motion gating (in place on ``left``, ``right``, ``flags``) and the post filter.

    Parameters
    ----------
    params : DiameterOptions
    dx_um : float
        Micrometres per pixel (the gating limits are in um).
    left, right : ndarray, float64
        Edges (pixels) of the analysed lines, in time order.
    flags : ndarray, int32

    Returns
    -------
    dict
        ``{"diameter_filtered_px": ...}`` when ``params.post_filter_lines > 1``, else empty.
    """
    from ..kernels.diameter_series import motion_gate, running_median

    if params.motion_gating:
        motion_gate(left, right, flags, max_edge_shift_px=params.max_edge_shift_um / dx_um,
                    max_diameter_change_px=params.max_diameter_change_um / dx_um,
                    max_center_shift_px=params.max_center_shift_um / dx_um)
    if params.post_filter_lines > 1:
        return {"diameter_filtered_px": running_median(right - left, size=params.post_filter_lines)}
    return {}


def edge_summary(diameter: np.ndarray, flags: np.ndarray, rejected_bit: int) -> dict[str, float]:
    """Counts of analysed lines with both edges, and of lines whose edges motion gating rejected."""
    n = len(diameter)
    with_edges = int(np.count_nonzero(np.isfinite(diameter)))
    rejected = int(np.count_nonzero(flags & rejected_bit))
    return {"n_lines_with_edges": float(with_edges),
            "fraction_with_edges": with_edges / n if n else math.nan,
            "fraction_motion_rejected": rejected / n if n else math.nan}


def edge_warnings(summary: dict[str, float], n_lines: int) -> list[str]:
    """Why the file's diameter is doubtful: too few lines with both vessel edges."""
    frac = summary["fraction_with_edges"]
    if not n_lines or frac >= MIN_FRACTION_WITH_EDGES:
        return []
    rejected = summary["fraction_motion_rejected"]
    found = int(summary["n_lines_with_edges"])
    text = (f"vessel edges found on only {100 * frac:.0f}% of lines ({found} of {n_lines}): diameter needs a "
            f"line scan ACROSS the vessel, with background on both sides of the lumen in every line (a scan "
            f"along the vessel, as for velocity, has no edges); check the scan geometry and the ROI")
    if rejected > 0.25:
        text += (f"; motion gating rejected {100 * rejected:.0f}% of lines: if the vessel really moves that fast, "
                 f"raise max_edge_shift_um / max_diameter_change_um / max_center_shift_um")
    return [text]


def assemble_result(params, scale: Units, outputs: list[np.ndarray], row_offset: int, *, units: dict[str, str],
                    flag_bits: dict[str, int]) -> AnalysisResult:
    """The diameter :class:`AnalysisResult` from the per-line kernel outputs (in line order).

    ``outputs`` = ``[left, right, r2, flags]`` (+ ``[left_strength, right_strength]`` for
    ``method="gradient"``); motion gating and the post filter run here, then the summary
    and the warnings are made. ``params`` are the :class:`DiameterOptions`, ``scale`` the
    file's :class:`~hpcacq.analyses.options.Units`.
    """
    left, right, r2, flags = outputs[:4]
    extra = gate_and_filter(params, scale.dx_um, left, right, flags)
    n = len(left)
    diameter = right - left
    columns = {
        "time_s": (row_offset + params.stride * np.arange(n)) * scale.dt_s,
        "left_px": left, "right_px": right, "diameter_px": diameter,
        "left_um": left * scale.dx_um, "right_um": right * scale.dx_um,
        "diameter_um": diameter * scale.dx_um, "fit_quality": r2, "flags": flags.astype(np.int32),
    }
    units = dict(units)
    if "diameter_filtered_px" in extra:
        columns["diameter_filtered_px"] = extra["diameter_filtered_px"]
        columns["diameter_filtered_um"] = extra["diameter_filtered_px"] * scale.dx_um
        units.update(diameter_filtered_px="px", diameter_filtered_um="um")
    if params.method == "gradient":
        columns["left_strength"], columns["right_strength"] = outputs[4], outputs[5]
        units.update(left_strength="1/px", right_strength="1/px")
    ok = np.isfinite(diameter)
    summary = {
        "n_lines": float(n),
        "median_diameter_px": float(np.median(diameter[ok])) if ok.any() else math.nan,
        "median_diameter_um": float(np.median(diameter[ok])) * scale.dx_um if ok.any() else math.nan,
        "fraction_flagged": float(np.mean(flags != 0)) if n else math.nan,
        "fraction_nan": float(np.mean(~ok)) if n else math.nan,
    }
    if params.method == "fit":
        summary["median_fit_quality"] = float(np.nanmedian(r2)) if np.isfinite(r2).any() else math.nan
    summary.update(edge_summary(diameter, flags, flag_bits["motion_rejected"]))
    return AnalysisResult(analysis="diameter", params=stored_params(params, scale), columns=columns, units=units,
                          flag_bits=dict(flag_bits), summary=summary, warnings=edge_warnings(summary, n))
