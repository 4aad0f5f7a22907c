"""Per-line vessel diameter kernels: row binning, sub-pixel half-maximum edges, profile fit.

An image is ``(n_lines, n_pixels)``: axis 0 is time (one row per line scan), axis 1 is
space across the vessel. Positions are in pixels, pixel ``j`` centred at ``x = j`` (its
area spans ``[j - 0.5, j + 0.5]``). Every line is analysed independently from the binned
profile around it, so results do not depend on how lines are split into chunks.

Binning averages (mean or median) the ``window_rows`` lines centred on each line; near the
first and last lines the window is clipped to the lines that exist. The mean uses a running
sum re-anchored every ``_ANCHOR`` lines at absolute line indices, so any chunking of
``[start, stop)`` gives bit-identical profiles.

Flag bits (``flags`` output, OR-ed):

- ``LEFT_EDGE_MISSING`` (1): no crossing of the threshold before the vessel (the profile
  is at or above it at pixel 0), or the fitted left edge lies outside the line.
- ``RIGHT_EDGE_MISSING`` (2): likewise on the right.
- ``NO_CONTRAST`` (4): peak percentile <= baseline percentile (flat profile).
- ``FIT_NOT_CONVERGED`` (8): Levenberg-Marquardt did not converge; edges are NaN.
- ``FIT_POOR`` (16): R^2 of the fit below ``min_r2``; edges are kept.
"""

import math

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS

__all__ = [
    "FLAG_BITS",
    "LEFT_EDGE_MISSING",
    "RIGHT_EDGE_MISSING",
    "NO_CONTRAST",
    "FIT_NOT_CONVERGED",
    "FIT_POOR",
    "bin_lines",
    "halfmax_edges",
    "fit_edges",
]

LEFT_EDGE_MISSING = 1
RIGHT_EDGE_MISSING = 2
NO_CONTRAST = 4
FIT_NOT_CONVERGED = 8
FIT_POOR = 16
FLAG_BITS = {
    "left_edge_missing": LEFT_EDGE_MISSING,
    "right_edge_missing": RIGHT_EDGE_MISSING,
    "no_contrast": NO_CONTRAST,
    "fit_not_converged": FIT_NOT_CONVERGED,
    "fit_poor": FIT_POOR,
}

_ANCHOR = 64  # the running sum restarts from scratch at every multiple of this line index
_SQRT2 = math.sqrt(2.0)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)
_MIN_SIGMA = 0.05  # px: smallest PSF sigma the fit may take
_N_PARAMS = 5  # b, a, l, r, s
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


@njit(**JIT_OPTIONS)
def _bin_lines(img, start, stop, h, median, flip, out):
    n_pix = img.shape[1]
    acc = np.empty(n_pix)
    buf = np.empty(2 * h + 1)
    for i in range(start, stop):
        _next_profile(img, i, start, h, median, flip, acc, buf, out[i - start])


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
def _two_percentiles(a, q_lo, q_hi, scratch):
    """Percentiles q_lo < q_hi (in %) of a, numpy 'linear' definition; a is not changed.

    Few order statistics at either end (the usual 10th/90th of short lines) come from one
    pass keeping the smallest and largest values; otherwise quickselect on scratch.
    """
    n = a.shape[0]
    k_lo, g_lo = _order_index(q_lo, n)
    k_hi, g_hi = _order_index(q_hi, n)
    m_lo, m_hi = min(k_lo + 2, n), n - k_hi
    if m_lo <= _SMALL and m_hi <= _SMALL:
        low, high = scratch[:_SMALL], scratch[_SMALL:2 * _SMALL]
        _extremes(a, low, high, m_lo, m_hi)
        t = n - 1 - k_hi  # rank of order statistic k_hi counted from the largest
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
def _halfmax_profile(prof, scratch, q_lo, q_hi):
    """Sub-pixel half-maximum edges of one profile: (left, right, flags, baseline, peak)."""
    n = prof.shape[0]
    base, peak = _two_percentiles(prof, q_lo, q_hi, scratch)
    thr = base + 0.5 * (peak - base)
    flags = 0
    if not peak > base:
        return np.nan, np.nan, NO_CONTRAST | LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING, base, peak
    j0 = 0
    while prof[j0] < thr:  # terminates: the peak percentile is >= thr, so some pixel is
        j0 += 1
    j1 = n - 1
    while prof[j1] < thr:
        j1 -= 1
    left = np.nan
    right = np.nan
    if j0 == 0:
        flags |= LEFT_EDGE_MISSING
    else:
        left = (j0 - 1) + (thr - prof[j0 - 1]) / (prof[j0] - prof[j0 - 1])
    if j1 == n - 1:
        flags |= RIGHT_EDGE_MISSING
    else:
        right = j1 + (prof[j1] - thr) / (prof[j1] - prof[j1 + 1])
    return left, right, flags, base, peak


@njit(**JIT_OPTIONS)
def _halfmax_lines(img, start, stop, h, median, flip, q_lo, q_hi, left, right, flags):
    n_pix = img.shape[1]
    acc = np.empty(n_pix)
    buf = np.empty(2 * h + 1)
    prof = np.empty(n_pix)
    scratch = np.empty(max(n_pix, 2 * _SMALL))
    for i in range(start, stop):
        _next_profile(img, i, start, h, median, flip, acc, buf, prof)
        l, r, f, _, _ = _halfmax_profile(prof, scratch, q_lo, q_hi)
        left[i - start] = l
        right[i - start] = r
        flags[i - start] = f


# ---------------------------------------------------------------------- profile fit
@njit(**JIT_OPTIONS)
def _model_normal_eq(prof, p, jtj, jtr):
    """Sum of squared residuals of the top-hat * Gaussian model at p; fills J^T J and J^T r.

    Model: f(x) = b + a/2 * (erf((x - l) / (sqrt2 s)) - erf((x - r) / (sqrt2 s))).
    """
    b, a, l, r, s = p[0], p[1], p[2], p[3], p[4]
    inv = 1.0 / (_SQRT2 * s)
    jtj[:, :] = 0.0
    jtr[:] = 0.0
    cost = 0.0
    row = np.empty(_N_PARAMS)
    for x in range(prof.shape[0]):
        zl = (x - l) * inv
        zr = (x - r) * inv
        half_step = 0.5 * (math.erf(zl) - math.erf(zr))
        res = prof[x] - (b + a * half_step)
        gl = _TWO_OVER_SQRTPI * math.exp(-zl * zl)
        gr = _TWO_OVER_SQRTPI * math.exp(-zr * zr)
        row[0] = 1.0
        row[1] = half_step
        row[2] = -0.5 * a * gl * inv
        row[3] = 0.5 * a * gr * inv
        row[4] = 0.5 * a * (zr * gr - zl * gl) / s
        cost += res * res
        for u in range(_N_PARAMS):
            jtr[u] += row[u] * res
            for v in range(u + 1):
                jtj[u, v] += row[u] * row[v]
    return cost


@njit(**JIT_OPTIONS)
def _damped_step(jtj, jtr, lam, step, chol):
    """Solve (J^T J + lam * diag(J^T J)) step = J^T r by Cholesky; False if not positive."""
    for u in range(_N_PARAMS):
        for v in range(u + 1):
            val = jtj[u, v]
            if u == v:
                val += lam * max(jtj[u, u], 1e-12)
            for w in range(v):
                val -= chol[u, w] * chol[v, w]
            if u == v:
                if not val > 0.0:
                    return False
                chol[u, u] = math.sqrt(val)
            else:
                chol[u, v] = val / chol[v, v]
    for u in range(_N_PARAMS):  # forward then back substitution
        val = jtr[u]
        for w in range(u):
            val -= chol[u, w] * step[w]
        step[u] = val / chol[u, u]
    for u in range(_N_PARAMS - 1, -1, -1):
        val = step[u]
        for w in range(u + 1, _N_PARAMS):
            val -= chol[w, u] * step[w]
        step[u] = val / chol[u, u]
    return True


@njit(**JIT_OPTIONS)
def _levenberg_marquardt(prof, p, max_iter, ws_mat, ws_vec):
    """Fit the model to prof from p (updated in place); returns (converged, cost)."""
    jtj, jtj_t, chol = ws_mat[0], ws_mat[1], ws_mat[2]
    jtr, jtr_t, step, trial = ws_vec[0], ws_vec[1], ws_vec[2], ws_vec[3]
    cost = _model_normal_eq(prof, p, jtj, jtr)
    lam = 1e-3
    new_cost = cost
    for _ in range(max_iter):
        accepted = False
        while not accepted:
            if lam > 1e12:  # no step lowers the cost: at the minimum to machine precision
                return True, cost
            if _damped_step(jtj, jtr, lam, step, chol):
                for u in range(_N_PARAMS):
                    trial[u] = p[u] + step[u]
                if trial[4] > _MIN_SIGMA and trial[3] > trial[2] and trial[1] > 0.0:
                    new_cost = _model_normal_eq(prof, trial, jtj_t, jtr_t)
                    if new_cost <= cost:
                        accepted = True
                        break
            lam *= 10.0
        small = abs(step[2]) < 1e-7 and abs(step[3]) < 1e-7 and abs(step[4]) < 1e-7
        flat = cost - new_cost <= 1e-12 * cost
        p[:] = trial
        jtj[:, :] = jtj_t
        jtr[:] = jtr_t
        cost = new_cost
        lam = max(lam * 0.1, 1e-12)
        if small or flat:
            return True, cost
    return False, cost


@njit(**JIT_OPTIONS)
def _fit_profile(prof, scratch, q_lo, q_hi, max_iter, min_r2, p, ws_mat, ws_vec):
    """Top-hat * Gaussian fit of one profile: (left, right, r2, flags); p holds the fit."""
    n = prof.shape[0]
    l0, r0, flags, base, peak = _halfmax_profile(prof, scratch, q_lo, q_hi)
    if flags != 0:
        return np.nan, np.nan, np.nan, flags
    j = int(math.floor(l0)) + 1  # slope of the left edge -> PSF sigma guess
    slope = max(prof[j] - prof[j - 1], 1e-12 * (peak - base))
    p[0] = base
    p[1] = peak - base
    p[2] = l0
    p[3] = r0
    p[4] = min(max((peak - base) / (math.sqrt(2.0 * math.pi) * slope), 0.3), 0.25 * n)
    converged, cost = _levenberg_marquardt(prof, p, max_iter, ws_mat, ws_vec)
    mean = 0.0
    for x in range(n):
        mean += prof[x]
    mean /= n
    total = 0.0
    for x in range(n):
        total += (prof[x] - mean) ** 2
    r2 = 1.0 - cost / total
    if not converged or not math.isfinite(cost):
        return np.nan, np.nan, r2, FIT_NOT_CONVERGED
    left, right = p[2], p[3]
    if left < -0.5:
        flags |= LEFT_EDGE_MISSING
        left = np.nan
    if right > n - 0.5:
        flags |= RIGHT_EDGE_MISSING
        right = np.nan
    if not r2 >= min_r2:
        flags |= FIT_POOR
    return left, right, r2, flags


@njit(**JIT_OPTIONS)
def _fit_lines(img, start, stop, h, median, flip, q_lo, q_hi, max_iter, min_r2,
               left, right, r2, flags):
    n_pix = img.shape[1]
    acc = np.empty(n_pix)
    buf = np.empty(2 * h + 1)
    prof = np.empty(n_pix)
    scratch = np.empty(max(n_pix, 2 * _SMALL))
    p = np.empty(_N_PARAMS)
    ws_mat = np.zeros((3, _N_PARAMS, _N_PARAMS))
    ws_vec = np.zeros((4, _N_PARAMS))
    for i in range(start, stop):
        _next_profile(img, i, start, h, median, flip, acc, buf, prof)
        k = i - start
        left[k], right[k], r2[k], flags[k] = _fit_profile(
            prof, scratch, q_lo, q_hi, max_iter, min_r2, p, ws_mat, ws_vec)


# -------------------------------------------------------------------- public wrappers
def _prepare(image, window_rows, binning, polarity, start, stop, min_pixels):
    """Check the options shared by every wrapper; returns (img, h, median, flip, start, stop)."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (n_lines, n_pixels), got shape {img.shape}")
    if img.dtype.kind not in "uif":
        raise ValueError(f"image must hold real numbers, got dtype {img.dtype}; use .astype(float)")
    if img.shape[1] < min_pixels:
        raise ValueError(f"lines need at least {min_pixels} pixels, got {img.shape[1]}")
    if not (isinstance(window_rows, (int, np.integer)) and window_rows >= 1 and window_rows % 2 == 1):
        raise ValueError(f"window_rows must be an odd integer >= 1, got {window_rows!r}")
    if binning not in ("mean", "median"):
        raise ValueError(f"binning must be 'mean' or 'median', got {binning!r}")
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    n_lines = img.shape[0]
    stop = n_lines if stop is None else stop
    if not 0 <= start <= stop <= n_lines:
        raise ValueError(f"need 0 <= start <= stop <= n_lines={n_lines}, got start={start}, stop={stop}")
    img = np.ascontiguousarray(img, dtype=np.float64)
    h = int(window_rows) // 2
    first_read = max((start // _ANCHOR) * _ANCHOR - h, 0)  # only the lines this call reads
    if not np.isfinite(img[first_read:stop + h]).all():
        raise ValueError("image holds NaN or infinite pixels; replace them (np.nan_to_num) or crop")
    return img, h, binning == "median", polarity == "dark", int(start), int(stop)


def _check_percentiles(q_lo, q_hi):
    if not 0.0 <= q_lo < q_hi <= 100.0:
        raise ValueError(f"need 0 <= baseline_percentile < peak_percentile <= 100, got {q_lo}, {q_hi}")
    return float(q_lo), float(q_hi)


def bin_lines(image, *, window_rows=5, binning="mean", polarity="bright", start=0, stop=None):
    """Binned profiles of lines ``start..stop-1``.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        Axis 0 time (lines), axis 1 space (pixels); real numbers, no NaN.
    window_rows : int, keyword-only
        Odd number of lines averaged, centred on each line (clipped at the image ends).
    binning : {"mean", "median"}, keyword-only
    polarity : {"bright", "dark"}, keyword-only
        ``"dark"`` negates the profile (dark vessel on a bright background).
    start, stop : int, keyword-only
        Half-open range of lines to return (default all).

    Returns
    -------
    ndarray, float64, shape (stop - start, n_pixels)
    """
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 1)
    out = np.empty((stop - start, img.shape[1]))
    _bin_lines(img, start, stop, h, median, flip, out)
    return out


def halfmax_edges(image, *, window_rows=5, binning="mean", polarity="bright",
                  baseline_percentile=10.0, peak_percentile=90.0, start=0, stop=None):
    """Sub-pixel half-maximum vessel edges of each line.

    threshold = baseline + 0.5 * (peak - baseline), with baseline and peak the given
    percentiles (numpy's linear definition) of the binned profile. The left edge is the
    linear interpolation of the crossing before the first pixel >= threshold, the right
    edge that after the last one; an edge with no crossing inside the line is NaN and flagged.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        Axis 0 time, axis 1 space across the vessel; at least 3 pixels.
    window_rows, binning, polarity, start, stop
        As in :func:`bin_lines`.
    baseline_percentile, peak_percentile : float, keyword-only
        Percentiles (0-100) of the profile taken as background and vessel level.

    Returns
    -------
    left_px, right_px : ndarray, float64, shape (stop - start,)
        Edge positions in pixels (pixel j centred at j); diameter = right - left.
    flags : ndarray, int32
        Bit mask, see :data:`FLAG_BITS`.
    """
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 3)
    q_lo, q_hi = _check_percentiles(baseline_percentile, peak_percentile)
    n = stop - start
    left, right, flags = np.empty(n), np.empty(n), np.empty(n, np.int32)
    _halfmax_lines(img, start, stop, h, median, flip, q_lo, q_hi, left, right, flags)
    return left, right, flags


def fit_edges(image, *, window_rows=5, binning="mean", polarity="bright",
              baseline_percentile=10.0, peak_percentile=90.0, max_iter=50, min_r2=0.9,
              start=0, stop=None):
    """Vessel edges of each line from a least-squares fit of a blurred top-hat.

    Model (x in pixels): ``f(x) = b + a/2 * (erf((x-l)/(sqrt2 s)) - erf((x-r)/(sqrt2 s)))``,
    a lumen ``[l, r]`` of level ``a`` above background ``b`` seen through a Gaussian PSF of
    sigma ``s``. Levenberg-Marquardt starts from the half-maximum edges.

    Parameters
    ----------
    image, window_rows, binning, polarity, baseline_percentile, peak_percentile, start, stop
        As in :func:`halfmax_edges`; at least 6 pixels per line.
    max_iter : int, keyword-only
        Largest number of accepted Levenberg-Marquardt steps.
    min_r2 : float, keyword-only
        Fits with R^2 below this are flagged ``FIT_POOR`` (edges kept).

    Returns
    -------
    left_px, right_px : ndarray, float64
        Fitted ``l`` and ``r`` in pixels; NaN if the fit failed or the edge lies outside
        the line (``[-0.5, n_pixels - 0.5]``). Lines whose half-maximum edges are not both
        inside the line are not fitted: both edges NaN, with the half-maximum flags.
    r2 : ndarray, float64
        Coefficient of determination of the fit on the binned profile (NaN if no fit).
    flags : ndarray, int32
    """
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 6)
    q_lo, q_hi = _check_percentiles(baseline_percentile, peak_percentile)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    n = stop - start
    left, right, r2, flags = np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.int32)
    _fit_lines(img, start, stop, h, median, flip, q_lo, q_hi, int(max_iter), float(min_r2),
               left, right, r2, flags)
    return left, right, r2, flags
