"""Diameter post-processing over the series of analysed lines: motion gating and a running median.

Both run once over the whole block (after the per-line edges), in line order, so their
result does not depend on how the lines were split into chunks. Positions are in pixels.
"""

import math

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .diameter_profile import MOTION_REJECTED

__all__ = ["motion_gate", "running_median"]


@njit(**JIT_OPTIONS)
def _motion_gate(left, right, flags, edge_px, diam_px, centre_px):
    last_l = last_r = last_d = last_c = np.nan
    il = ir = ib = -1
    for i in range(left.shape[0]):
        lv, rv = left[i], right[i]
        rejected = False
        if math.isfinite(lv) and il >= 0 and abs(lv - last_l) > edge_px * (i - il):
            lv = np.nan
            rejected = True
        if math.isfinite(rv) and ir >= 0 and abs(rv - last_r) > edge_px * (i - ir):
            rv = np.nan
            rejected = True
        if math.isfinite(lv) and math.isfinite(rv) and ib >= 0:
            gap = i - ib
            if abs((rv - lv) - last_d) > diam_px * gap or abs(0.5 * (lv + rv) - last_c) > centre_px * gap:
                lv = rv = np.nan
                rejected = True
        if rejected:
            flags[i] |= MOTION_REJECTED
            left[i] = lv
            right[i] = rv
        if math.isfinite(lv):
            last_l, il = lv, i
        if math.isfinite(rv):
            last_r, ir = rv, i
        if math.isfinite(lv) and math.isfinite(rv):
            last_d, last_c, ib = rv - lv, 0.5 * (lv + rv), i


def motion_gate(left, right, flags, *, max_edge_shift_px, max_diameter_change_px, max_center_shift_px):
    """Reject edges that jump from the last accepted line (in place).

    Line ``i``'s left (right) edge is rejected when it differs from the last accepted left
    (right) edge, ``g`` analysed lines before, by more than ``g * max_edge_shift_px``; then,
    if both edges remain, both are rejected when the diameter differs from the last line
    with both edges accepted by more than ``g * max_diameter_change_px`` or its centre by
    more than ``g * max_center_shift_px``. The limits are speeds (pixels per analysed line),
    so a vessel that really moved is found again after a gap. The first edges seen are
    accepted as they are. Rejected edges become NaN and their line is flagged
    ``MOTION_REJECTED``.

    Parameters
    ----------
    left, right : ndarray, float64, shape (n,)
        Edges (pixels) of the analysed lines in time order; NaN = no edge. Changed in place.
    flags : ndarray, int32, shape (n,)
        Flag bits, OR-ed with ``MOTION_REJECTED`` in place.
    max_edge_shift_px, max_diameter_change_px, max_center_shift_px : float, keyword-only
        Limits in pixels per analysed line (>= 0).
    """
    _motion_gate(left, right, flags, float(max_edge_shift_px), float(max_diameter_change_px),
                 float(max_center_shift_px))


@njit(**JIT_OPTIONS)
def _running_median(x, half, out):
    n = x.shape[0]
    buf = np.empty(2 * half + 1)
    for i in range(n):
        if not math.isfinite(x[i]):
            out[i] = x[i]
            continue
        m = 0
        for k in range(max(i - half, 0), min(i + half, n - 1) + 1):
            v = x[k]
            if math.isfinite(v):  # insertion sort of the window's finite values
                q = m
                while q > 0 and buf[q - 1] > v:
                    buf[q] = buf[q - 1]
                    q -= 1
                buf[q] = v
                m += 1
        out[i] = buf[m // 2] if m % 2 == 1 else 0.5 * (buf[m // 2 - 1] + buf[m // 2])


def running_median(values, *, size):
    """Median of each value's window of ``size`` (odd) values, NaN-aware.

    The window is clipped at the ends of the series; NaN values stay NaN and are left out
    of their neighbours' windows (numpy's median of the finite values, the mean of the two
    middle ones for an even count).

    Parameters
    ----------
    values : ndarray, float64, shape (n,)
    size : int, keyword-only
        Odd window length >= 1.

    Returns
    -------
    ndarray, float64, shape (n,)
    """
    if not (isinstance(size, (int, np.integer)) and size >= 1 and size % 2 == 1):
        raise ValueError(f"size must be an odd integer >= 1, got {size!r}")
    x = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(x)
    _running_median(x, int(size) // 2, out)
    return out
