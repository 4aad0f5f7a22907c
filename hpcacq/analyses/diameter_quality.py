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

__all__ = ["MIN_FRACTION_WITH_EDGES", "gate_and_filter", "edge_summary", "edge_warnings"]

MIN_FRACTION_WITH_EDGES = 0.5  # fewer lines with both edges than this: the file is doubtful


def gate_and_filter(params, left: np.ndarray, right: np.ndarray, flags: np.ndarray) -> dict[str, np.ndarray]:
    """Apply motion gating (in place on ``left``, ``right``, ``flags``) and the post filter.

    Parameters
    ----------
    params : DiameterParams
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
        motion_gate(left, right, flags, max_edge_shift_px=params.max_edge_shift_um / params.dx_um,
                    max_diameter_change_px=params.max_diameter_change_um / params.dx_um,
                    max_center_shift_px=params.max_center_shift_um / params.dx_um)
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
