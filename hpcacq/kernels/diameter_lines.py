"""Per-line diameter loops over the analysed lines (a stride): thresholds, profile fit, gradient edges.

An image is ``(n_lines, n_pixels)``: axis 0 is time, axis 1 is space across the vessel;
pixel ``j`` is centred at ``x = j``. The analysed lines are the absolute line indices
that are multiples of ``stride`` inside ``[start, stop)``, so any chunking gives the same
rows. Their binned profiles are bit-identical to those of the every-line loops: the mean's
running sum is carried over the skipped lines (or re-anchored, as there) exactly as when
every line is analysed.

Gradient edges (``_gradient_profile``): the binned profile is smoothed by a normalised
Gaussian (weights from the wrapper, edge pixels repeated beyond the line), differentiated
by central differences (one-sided at the two end pixels), and the left edge is put at the
derivative's maximum, the right edge at its minimum, refined to sub-pixel precision by
the vertex of a parabola through the logarithms of the three samples around the extremum
(exact for a Gaussian-shaped peak, which a blurred step's derivative is), or through the
samples themselves where a neighbour is not of the same sign. An edge counts only if the
profile falls to background beyond it: the smoothed profile's minimum outside each edge
must lie at least half the line's contrast (lumen maximum between the edges minus the
lower of the two outside minima) below the lumen, the rule by which the half-maximum
method finds an edge only where the profile crosses half maximum; otherwise that edge is
NaN and flagged missing (a line with lumen, or background, over its whole length has no
vessel edge, whatever its gradient).
"""

import math

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .diameter_fit import _N_PARAMS, _fit_profile
from .diameter_profile import (
    _ANCHOR,
    LEFT_EDGE_MISSING,
    NO_CONTRAST,
    RIGHT_EDGE_MISSING,
    WEAK_EDGE,
    _crossings,
    _edges_at,
    _next_profile,
    _percentile_scratch,
    _profile_buffers,
    _roll_sum,
    _two_percentiles,
)

__all__ = ["analysed_lines", "threshold_lines", "fit_lines", "gradient_lines"]


@njit(**JIT_OPTIONS)
def analysed_lines(start, stop, stride):
    """(first analysed line, number of analysed lines) of ``[start, stop)``: multiples of stride."""
    first = -(-start // stride) * stride
    if first >= stop:
        return first, 0
    return first, (stop - 1 - first) // stride + 1


@njit(**JIT_OPTIONS)
def _profile_of(img, first, k, stride, h, median, flip, acc, buf, prof):
    """Binned profile of analysed line ``k`` (line ``first + k * stride``) into ``prof``.

    ``acc`` holds the running sum of analysed line ``k - 1`` (none when ``k == 0``); the mean
    re-anchors where an anchor line lies in between, else rolls over the skipped lines.
    """
    i = first + k * stride
    prev = i - stride if k > 0 else -1
    if median:
        _next_profile(img, i, i, h, True, flip, acc, buf, prof)
        return
    if prev < 0 or (i // _ANCHOR) * _ANCHOR > prev:
        _next_profile(img, i, i, h, False, flip, acc, buf, prof)  # anchors, then rolls up to i
        return
    for j in range(prev + 1, i):  # no anchor in (prev, i]: roll over the skipped lines
        _roll_sum(img, j, h, acc)
    _next_profile(img, i, -1, h, False, flip, acc, buf, prof)


@njit(**JIT_OPTIONS)
def _edges_threshold(prof, thr):
    """Sub-pixel edges where the profile crosses ``thr`` (left, right, flags)."""
    n = prof.shape[0]
    j0 = 0
    while j0 < n and prof[j0] < thr:
        j0 += 1
    if j0 == n:  # no pixel reaches the threshold: no lumen
        return np.nan, np.nan, LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING
    return _crossings(prof, thr, j0)


@njit(**JIT_OPTIONS)
def threshold_lines(img, start, stop, stride, h, median, flip, absolute, thr, q_lo, q_hi, left, right, flags):
    """Threshold edges of the analysed lines: half maximum (percentiles) or the absolute ``thr``."""
    acc, buf, prof = _profile_buffers(img.shape[1], h)
    scratch = _percentile_scratch(img.shape[1])
    first, count = analysed_lines(start, stop, stride)
    for k in range(count):
        _profile_of(img, first, k, stride, h, median, flip, acc, buf, prof)
        if absolute:
            left[k], right[k], flags[k] = _edges_threshold(prof, thr)
        else:
            base, peak = _two_percentiles(prof, q_lo, q_hi, scratch)
            left[k], right[k], flags[k] = _edges_at(prof, base, peak)


@njit(**JIT_OPTIONS)
def fit_lines(img, start, stop, stride, h, median, flip, q_lo, q_hi, max_iter, min_r2, left, right, r2, flags):
    """Top-hat * Gaussian fit (see :mod:`.diameter_fit`) of the analysed lines."""
    acc, buf, prof = _profile_buffers(img.shape[1], h)
    scratch = _percentile_scratch(img.shape[1])
    p = np.empty(_N_PARAMS)
    ws_mat = np.zeros((3, _N_PARAMS, _N_PARAMS))
    ws_vec = np.zeros((4, _N_PARAMS))
    first, count = analysed_lines(start, stop, stride)
    for k in range(count):
        _profile_of(img, first, k, stride, h, median, flip, acc, buf, prof)
        left[k], right[k], r2[k], flags[k] = _fit_profile(prof, scratch, q_lo, q_hi, max_iter, min_r2,
                                                          p, ws_mat, ws_vec)


@njit(**JIT_OPTIONS)
def _smooth(prof, weights, out):
    """out = prof convolved with the symmetric ``weights`` (radius len // 2), end pixels repeated."""
    n = prof.shape[0]
    r = weights.shape[0] // 2
    for j in range(n):
        s = 0.0
        for t in range(-r, r + 1):
            idx = min(max(j + t, 0), n - 1)
            s += weights[t + r] * prof[idx]
        out[j] = s


@njit(**JIT_OPTIONS)
def _peak_offset(a, b, c):
    """Sub-pixel offset (-0.5..0.5) of the peak of samples a, b, c (b the largest, all of one sign)."""
    if a > 0.0 and c > 0.0:
        la, lb, lc = math.log(a), math.log(b), math.log(c)
        den = la - 2.0 * lb + lc
        if den < 0.0:
            return min(max(0.5 * (la - lc) / den, -0.5), 0.5)
        return 0.0
    den = a - 2.0 * b + c
    if den < 0.0:
        return min(max(0.5 * (a - c) / den, -0.5), 0.5)
    return 0.0


@njit(**JIT_OPTIONS)
def _extreme_indices(smooth, deriv):
    """Central-difference derivative of ``smooth`` (one-sided at the ends); (argmax, argmin), first of ties."""
    n = smooth.shape[0]
    deriv[0] = smooth[1] - smooth[0]
    deriv[n - 1] = smooth[n - 1] - smooth[n - 2]
    for j in range(1, n - 1):
        deriv[j] = 0.5 * (smooth[j + 1] - smooth[j - 1])
    kl = 0
    kr = 0
    for j in range(1, n):
        if deriv[j] > deriv[kl]:
            kl = j
        if deriv[j] < deriv[kr]:
            kr = j
    return kl, kr


@njit(**JIT_OPTIONS)
def _falls_to_background(smooth, kl, kr, has_l, has_r):
    """(left ok, right ok): the profile beyond each candidate edge lies >= half the contrast below the lumen."""
    n = smooth.shape[0]
    a = kl if has_l else 0
    b = kr if has_r else n - 1
    inside = smooth[a]
    for j in range(a, b + 1):
        inside = max(inside, smooth[j])
    out_l = inside
    if has_l:
        for j in range(kl + 1):
            out_l = min(out_l, smooth[j])
    out_r = inside
    if has_r:
        for j in range(kr, n):
            out_r = min(out_r, smooth[j])
    half = 0.5 * (inside - min(out_l, out_r))
    return inside - out_l >= half, inside - out_r >= half


@njit(**JIT_OPTIONS)
def _gradient_profile(prof, weights, min_strength, smooth, deriv):
    """Gradient edges of one binned profile: (left, right, left_strength, right_strength, flags)."""
    n = prof.shape[0]
    _smooth(prof, weights, smooth)
    kl, kr = _extreme_indices(smooth, deriv)
    s_left = deriv[kl]
    s_right = -deriv[kr]
    if not (s_left > 0.0 or s_right > 0.0):  # flat profile
        return np.nan, np.nan, s_left, s_right, NO_CONTRAST | LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING
    # a candidate edge: a rise (fall) whose steepest point is inside the line (else it may lie beyond)
    has_l = s_left > 0.0 and 0 < kl < n - 1
    has_r = s_right > 0.0 and 0 < kr < n - 1
    if has_l and has_r and kl >= kr:  # the steepest fall comes first: no lumen between two edges
        return np.nan, np.nan, s_left, s_right, LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING
    ok_l, ok_r = _falls_to_background(smooth, kl, kr, has_l, has_r)
    flags = 0
    left = np.nan
    right = np.nan
    if not (has_l and ok_l):
        flags |= LEFT_EDGE_MISSING
    elif s_left < min_strength:
        flags |= WEAK_EDGE
    else:
        left = kl + _peak_offset(deriv[kl - 1], deriv[kl], deriv[kl + 1])
    if not (has_r and ok_r):
        flags |= RIGHT_EDGE_MISSING
    elif s_right < min_strength:
        flags |= WEAK_EDGE
    else:
        right = kr + _peak_offset(-deriv[kr - 1], -deriv[kr], -deriv[kr + 1])
    return left, right, s_left, s_right, flags


@njit(**JIT_OPTIONS)
def gradient_lines(img, start, stop, stride, h, median, flip, weights, min_strength,
                   left, right, s_left, s_right, flags):
    """Gradient edges of the analysed lines (see :func:`_gradient_profile`)."""
    acc, buf, prof = _profile_buffers(img.shape[1], h)
    smooth = np.empty(img.shape[1])
    deriv = np.empty(img.shape[1])
    first, count = analysed_lines(start, stop, stride)
    for k in range(count):
        _profile_of(img, first, k, stride, h, median, flip, acc, buf, prof)
        left[k], right[k], s_left[k], s_right[k], flags[k] = _gradient_profile(prof, weights, min_strength,
                                                                               smooth, deriv)
