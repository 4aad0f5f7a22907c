"""Per-line profile kernels shared by the diameter methods: binning, percentiles, half maximum.

An image is ``(n_lines, n_pixels)``: axis 0 is time (one row per line scan), axis 1 is
space across the vessel. Positions are in pixels, pixel ``j`` centred at ``x = j``.

Binning averages (mean or median) the ``window_rows`` lines centred on each line; near the
first and last lines the window is clipped to the lines that exist. The mean uses a running
sum re-anchored every ``_ANCHOR`` lines at absolute line indices, so any chunking of
``[start, stop)`` gives bit-identical profiles.

Percentiles follow numpy's ``linear`` definition exactly. The baseline and peak of a
short line (the 10th and 90th percentiles of up to 44 pixels) need at most 5 order
statistics at each end, found in one pass of compare-exchanges (on SIMD lanes, one line
per lane, when many lines are analysed together); up to 8 use a small buffer, more use
quickselect on a copy.
"""

import math

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS

LEFT_EDGE_MISSING = 1
RIGHT_EDGE_MISSING = 2
NO_CONTRAST = 4
FIT_NOT_CONVERGED = 8
FIT_POOR = 16
WEAK_EDGE = 32
MOTION_REJECTED = 64
FLAG_BITS = {
    "left_edge_missing": LEFT_EDGE_MISSING,
    "right_edge_missing": RIGHT_EDGE_MISSING,
    "no_contrast": NO_CONTRAST,
    "fit_not_converged": FIT_NOT_CONVERGED,
    "fit_poor": FIT_POOR,
    "weak_edge": WEAK_EDGE,
    "motion_rejected": MOTION_REJECTED,
}

_ANCHOR = 64  # the running sum restarts from scratch at every multiple of this line index
_SMALL = 8  # up to this many order statistics at an end: one-pass selection


# ----------------------------------------------------------------------------- binning
@njit(**JIT_OPTIONS)
def _window_sum(img, i, h, acc):
    """acc[:] = sum of rows [i - h, i + h] clipped to the image."""
    n_lines, n_pix = img.shape
    acc[:] = 0.0
    for row in range(max(i - h, 0), min(i + h, n_lines - 1) + 1):
        for j in range(n_pix):
            acc[j] += img[row, j]


@njit(**JIT_OPTIONS)
def _roll_sum(img, i, h, acc):
    """Turn the window sum of line i - 1 into that of line i (add one row, drop one).

    The arithmetic (``acc += new - old``) is the same as in the fused loop of
    ``_next_profile``, so rolling here or there gives bit-identical sums.
    """
    n_lines, n_pix = img.shape
    add, drop = i + h, i - h - 1
    if add < n_lines and drop >= 0:
        for j in range(n_pix):
            acc[j] += img[add, j] - img[drop, j]
    elif add < n_lines:
        for j in range(n_pix):
            acc[j] += img[add, j]
    elif drop >= 0:
        for j in range(n_pix):
            acc[j] -= img[drop, j]


@njit(**JIT_OPTIONS)
def _median_profile(img, i, h, buf, prof):
    """prof[j] = median over the clipped window of line i (numpy's even-count convention)."""
    n_lines, n_pix = img.shape
    lo, hi = max(i - h, 0), min(i + h, n_lines - 1)
    m = hi - lo + 1
    for j in range(n_pix):
        for k in range(m):  # insertion sort of the window's m values
            v = img[lo + k, j]
            q = k
            while q > 0 and buf[q - 1] > v:
                buf[q] = buf[q - 1]
                q -= 1
            buf[q] = v
        if m % 2 == 1:
            prof[j] = buf[m // 2]
        else:
            prof[j] = 0.5 * (buf[m // 2 - 1] + buf[m // 2])


@njit(**JIT_OPTIONS)
def _profile_buffers(n_pix, h):
    """Work arrays of the binning loops: (acc, buf, prof) for :func:`_next_profile`."""
    return np.empty(n_pix), np.empty(2 * h + 1), np.empty(n_pix)


@njit(**JIT_OPTIONS)
def _percentile_scratch(n_pix):
    """Work array of :func:`_two_percentiles` for profiles of ``n_pix`` pixels."""
    return np.empty(max(n_pix, 2 * _SMALL))


@njit(**JIT_OPTIONS)
def _next_profile(img, i, start, h, median, flip, acc, buf, prof):
    """Binned (and, if flip, negated) profile of line i into prof; acc carries the running sum."""
    n_lines, n_pix = img.shape
    if median:
        _median_profile(img, i, h, buf, prof)
        if flip:
            for j in range(n_pix):
                prof[j] = -prof[j]
        return
    count = float(min(i + h, n_lines - 1) - max(i - h, 0) + 1)
    sign = -1.0 if flip else 1.0  # divide (not multiply by 1/count): exact means of integers
    add, drop = i + h, i - h - 1
    if i != start and i % _ANCHOR != 0 and add < n_lines and drop >= 0:
        for j in range(n_pix):  # the common case: one fused pass
            acc[j] += img[add, j] - img[drop, j]
            prof[j] = sign * (acc[j] / count)
        return
    if i == start:  # anchor at an absolute line index, then roll up to `start`
        anchor = (start // _ANCHOR) * _ANCHOR
        _window_sum(img, anchor, h, acc)
        for k in range(anchor + 1, start + 1):
            _roll_sum(img, k, h, acc)
    elif i % _ANCHOR == 0:
        _window_sum(img, i, h, acc)
    else:
        _roll_sum(img, i, h, acc)
    for j in range(n_pix):
        prof[j] = sign * (acc[j] / count)


# ------------------------------------------------------------------------- percentiles
@njit(**JIT_OPTIONS)
def _select(a, lo, hi, k):
    """Partially sort a[lo:hi+1] in place so that a[k] is its order statistic k."""
    while hi > lo:
        mid = (lo + hi) // 2  # median of three as pivot
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@njit(**JIT_OPTIONS)
def _lerp(lo_v, hi_v, g):
    """numpy's linear interpolation between neighbouring order statistics."""
    d = hi_v - lo_v
    if g >= 0.5:
        return hi_v - d * (1.0 - g)
    return lo_v + d * g


@njit(**JIT_OPTIONS)
def _order_index(q, n):
    """numpy 'linear' percentile q (in %) of n values: (k, g), value = lerp(x[k], x[k+1], g)."""
    pos = q / 100.0 * (n - 1)
    k = int(math.floor(pos))
    if k >= n - 1:
        return n - 1, 0.0
    return k, pos - k


@njit(**JIT_OPTIONS)
def _extremes(a, low, high, m_lo, m_hi):
    """One pass: low[:m_lo] = smallest values ascending, high[:m_hi] = largest descending.

    Each value runs down a fixed compare-exchange cascade (min/max, no data-dependent
    branches), which beats insertion with early exit on profiles that rise and fall.
    """
    low[:m_lo] = np.inf
    high[:m_hi] = -np.inf
    for t in range(a.shape[0]):
        v = a[t]
        w = v
        for q in range(m_lo):
            x = low[q]
            low[q] = min(x, v)
            v = max(x, v)
        for q in range(m_hi):
            x = high[q]
            high[q] = max(x, w)
            w = min(x, w)


@njit(**JIT_OPTIONS)
def _cascade5(l0, l1, l2, l3, l4, v):
    """``v`` down the compare-exchange cascade of the 5 smallest values seen so far (ascending)."""
    x = l0
    l0 = min(x, v)
    v = max(x, v)
    x = l1
    l1 = min(x, v)
    v = max(x, v)
    x = l2
    l2 = min(x, v)
    v = max(x, v)
    x = l3
    l3 = min(x, v)
    v = max(x, v)
    return l0, l1, l2, l3, min(l4, v)


@njit(**JIT_OPTIONS)
def _extremes5(a):
    """One pass: the 5 smallest values ascending and the 5 largest descending (+-inf pads).

    The compare-exchange cascade of :func:`_extremes` with its 10 slots in registers; the
    largest values run down the same cascade negated (exact).
    """
    l0 = l1 = l2 = l3 = l4 = np.inf
    n0 = n1 = n2 = n3 = n4 = np.inf  # the 5 largest, negated
    for t in range(a.shape[0]):
        l0, l1, l2, l3, l4 = _cascade5(l0, l1, l2, l3, l4, a[t])
        n0, n1, n2, n3, n4 = _cascade5(n0, n1, n2, n3, n4, -a[t])
    return (l0, l1, l2, l3, l4), (-n0, -n1, -n2, -n3, -n4)


@njit(**JIT_OPTIONS)
def _two_percentiles(a, q_lo, q_hi, scratch):
    """Percentiles q_lo < q_hi (in %) of a, numpy 'linear' definition; a is not changed.

    Few order statistics at either end (the usual 10th/90th of short lines) come from one
    pass keeping the smallest and largest values; otherwise quickselect on scratch.
    """
    n = a.shape[0]
    k_lo, g_lo = _order_index(q_lo, n)
    k_hi, g_hi = _order_index(q_hi, n)
    m_lo, m_hi = min(k_lo + 2, n), n - k_hi
    t = n - 1 - k_hi  # rank of order statistic k_hi counted from the largest
    if m_lo <= 5 and m_hi <= 5:  # e.g. 10th/90th of up to 44 pixels: all in registers
        low5, high5 = _extremes5(a)
        base = _lerp(low5[k_lo], low5[k_lo + 1] if g_lo > 0.0 else low5[k_lo], g_lo)
        peak = _lerp(high5[t], high5[t - 1] if g_hi > 0.0 else high5[t], g_hi)
        return base, peak
    if m_lo <= _SMALL and m_hi <= _SMALL:
        low, high = scratch[:_SMALL], scratch[_SMALL:2 * _SMALL]
        _extremes(a, low, high, m_lo, m_hi)
        base = _lerp(low[k_lo], low[k_lo + 1] if g_lo > 0.0 else low[k_lo], g_lo)
        peak = _lerp(high[t], high[t - 1] if g_hi > 0.0 else high[t], g_hi)
        return base, peak
    work = scratch[:n]
    work[:] = a
    out = np.empty(2)
    first = 0
    for idx in range(2):
        k, g = (k_lo, g_lo) if idx == 0 else (k_hi, g_hi)
        _select(work, first, n - 1, k)
        nxt = work[k]
        if g > 0.0:
            nxt = work[k + 1]
            for m in range(k + 2, n):
                nxt = min(nxt, work[m])
        out[idx] = _lerp(work[k], nxt, g)
        first = k  # work[first:] holds every value >= work[k]
    return out[0], out[1]


# ----------------------------------------------------------------------- half maximum
@njit(**JIT_OPTIONS)
def _edges_at(prof, base, peak):
    """Sub-pixel half-maximum edges of a profile with this baseline and peak: (left, right, flags)."""
    thr = base + 0.5 * (peak - base)
    if not peak > base:
        return np.nan, np.nan, NO_CONTRAST | LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING
    j0 = 0
    while prof[j0] < thr:  # terminates: the peak percentile is >= thr, so some pixel is
        j0 += 1
    return _crossings(prof, thr, j0)


@njit(**JIT_OPTIONS)
def _crossings(prof, thr, j0):
    """Sub-pixel edges where ``prof`` crosses ``thr``, ``j0`` its first pixel >= thr: (left, right, flags).

    The left edge interpolates linearly between pixels ``j0 - 1`` and ``j0``, the right edge
    between the last pixel >= thr and the next; an edge with no crossing inside the line
    (the profile is >= thr at that end pixel) is NaN and flagged missing.
    """
    n = prof.shape[0]
    j1 = n - 1
    while prof[j1] < thr:  # terminates at j0 at the latest
        j1 -= 1
    left = np.nan
    right = np.nan
    flags = 0
    if j0 == 0:
        flags |= LEFT_EDGE_MISSING
    else:
        left = (j0 - 1) + (thr - prof[j0 - 1]) / (prof[j0] - prof[j0 - 1])
    if j1 == n - 1:
        flags |= RIGHT_EDGE_MISSING
    else:
        right = j1 + (prof[j1] - thr) / (prof[j1] - prof[j1 + 1])
    return left, right, flags


@njit(**JIT_OPTIONS)
def _halfmax_profile(prof, scratch, q_lo, q_hi):
    """Sub-pixel half-maximum edges of one profile: (left, right, flags, baseline, peak)."""
    base, peak = _two_percentiles(prof, q_lo, q_hi, scratch)
    left, right, flags = _edges_at(prof, base, peak)
    return left, right, flags, base, peak


@njit(**JIT_OPTIONS)
def _extremes5_lanes(cols, nl, low, high):
    """:func:`_extremes5` of ``nl`` profiles at once, held as the columns of ``cols`` (pixel, line).

    ``low[q, b]`` / ``high[q, b]``: the q-th smallest / largest value of profile ``b``. The
    loop over profiles is innermost, so the cascade runs on SIMD lanes, one line per lane.
    """
    low[:, :nl] = np.inf
    high[:, :nl] = -np.inf
    for j in range(cols.shape[0]):
        for b in range(nl):
            v = cols[j, b]
            w = v
            for q in range(5):
                x = low[q, b]
                low[q, b] = min(x, v)
                v = max(x, v)
            for q in range(5):
                x = high[q, b]
                high[q, b] = max(x, w)
                w = min(x, w)


@njit(**JIT_OPTIONS)
def _low5_max(prof, low):
    """``low[q]`` = the q-th smallest value of ``prof`` (q < 5); returns its largest value.

    For the default peak (the maximum) with a percentile baseline: one pass with the
    running order statistics in registers (:func:`_cascade5`), about twice as fast per line
    as the SIMD-lanes cascade of :func:`_extremes5_lanes`, which keeps them in memory.
    """
    l0 = l1 = l2 = l3 = l4 = np.inf
    top = -np.inf
    for j in range(prof.shape[0]):
        top = max(top, prof[j])
        l0, l1, l2, l3, l4 = _cascade5(l0, l1, l2, l3, l4, prof[j])
    low[0] = l0
    low[1] = l1
    low[2] = l2
    low[3] = l3
    low[4] = l4
    return top
