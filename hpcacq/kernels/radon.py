"""Radon-transform angle search over sliding windows of a line scan (Drew et al. 2010).

An image is ``(n_lines, n_pixels)``: axis 0 is time (one row per line scan), axis 1 is
space along the scan line. Window ``k`` covers rows ``[k*step, k*step + window_lines)``
with ``step = window_lines // 4``; there are ``n_lines // step - 3`` windows.

For each window (mean subtracted) the projection at angle ``theta`` (degrees) is exactly
``skimage.transform.radon(window, [theta], circle=False)[:, 0]`` (geometry and weights in
:mod:`hpcacq.kernels.radon_table`). The score of an angle is the variance of its ``N``
projection values. The coarse search takes the best of 0, 1, ..., 179 degrees, the fine
search the best of ``coarse - 2, ..., coarse + 2`` in 0.25 degree steps; ties go to the
first angle, as ``numpy.argmax`` does.

How it is fast: the projection of a window is a fixed sparse matrix times the window,
built once per window shape for every angle of the 0.25 degree grid and cached. Windows
are processed in batches held as ``(pixel, window)`` arrays; each projection column is
accumulated from groups of 8 weighted pixels in registers, over contiguous windows
(SIMD), so memory traffic is one load per term and one store per 8 terms. The fine pass
sorts windows by coarse angle and scores batches whose coarse angles differ by at most
one degree on the union of their fine angles (neighbouring windows have similar angles),
each window choosing among its own 17. The coarse pass projects in float32 (twice the
SIMD lanes, half the memory traffic; it only chooses where the fine search looks), the
fine pass in float64: on the real data and 8 synthetic files (104,958 windows) every
final angle equals that of an all-float64 search (the coarse angle differed on 3 of
78,696 real windows at W = 16, 32, 64: near-ties one degree apart, whose fine searches
overlap). A window's arithmetic is the same sequence of operations (with fused
multiply-adds) whatever its batch, chunk or thread.

Option ``energy_power``: each angle's variance is divided by a power of the projection
energy of a window of ones at that angle (a per-angle constant), which offsets the
advantage that longer paths through a non-square window give to some angles.

Angles here follow skimage: at ``theta`` the projection sums the window along the
direction ``d(col)/d(row) = tan(theta)``, so a streak moving ``v`` pixels per line scores
best at ``theta = atan(v)``.
"""

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .radon_table import GRID_FIRST_DEG as _GRID_FIRST_DEG
from .radon_table import GRID_PER_DEG as _GRID_PER_DEG
from .radon_table import GROUP, angle_table, coarse_weights32, make_table, padded_size, window_count, window_step

__all__ = [
    "padded_size",
    "window_step",
    "window_count",
    "angle_table",
    "radon_projections",
    "radon_windows",
]

_N_FINE = 17
_FINE_SPAN = 1  # a fine batch mixes windows whose coarse angles differ by at most this (degrees)
_N_FINE_UNION = _N_FINE + _FINE_SPAN * _GRID_PER_DEG
_BATCH = 64  # windows scored together (the SIMD axis)
# contract: a * b + c as one fused multiply-add (fewer rounding steps, half the instructions)
_PROJECT_OPTIONS = dict(JIT_OPTIONS, fastmath={"contract"})
assert GROUP == 8, "_project is written out for groups of 8 terms"


@njit(**_PROJECT_OPTIONS)
def _project(x, nb, a, n_ops, op_col, op_pix, op_w, proj):
    """Projections at table angle ``a`` of ``nb`` windows (columns of ``x``) into ``proj[:, :nb]``.

    x : (n_pix + 1, B) windows, one per column, last row zero; proj : (N, B). Each op adds
    its 8 terms in order to one column; the loop over windows is innermost (SIMD).
    """
    proj[:, :nb] = 0.0
    for i in range(n_ops[a]):
        c = op_col[a, i]
        p0 = op_pix[a, i, 0]
        p1 = op_pix[a, i, 1]
        p2 = op_pix[a, i, 2]
        p3 = op_pix[a, i, 3]
        p4 = op_pix[a, i, 4]
        p5 = op_pix[a, i, 5]
        p6 = op_pix[a, i, 6]
        p7 = op_pix[a, i, 7]
        w0 = op_w[a, i, 0]
        w1 = op_w[a, i, 1]
        w2 = op_w[a, i, 2]
        w3 = op_w[a, i, 3]
        w4 = op_w[a, i, 4]
        w5 = op_w[a, i, 5]
        w6 = op_w[a, i, 6]
        w7 = op_w[a, i, 7]
        for b in range(nb):
            proj[c, b] = (((((((proj[c, b] + w0 * x[p0, b]) + w1 * x[p1, b]) + w2 * x[p2, b])
                              + w3 * x[p3, b]) + w4 * x[p4, b]) + w5 * x[p5, b]) + w6 * x[p6, b]) + w7 * x[p7, b]


@njit(**JIT_OPTIONS)
def _variance(proj, nb, out):
    """Population variance over the ``N`` projection values of each of ``nb`` windows."""
    size = proj.shape[0]
    mean = np.zeros(nb)
    for c in range(size):
        for b in range(nb):
            mean[b] += proj[c, b]
    for b in range(nb):
        mean[b] /= size
        out[b] = 0.0
    for c in range(size):
        for b in range(nb):
            d = proj[c, b] - mean[b]
            out[b] += d * d
    for b in range(nb):
        out[b] /= size


@njit(**JIT_OPTIONS)
def _score(x, nb, angle_idx, n_ops, op_col, op_pix, op_w, scale, proj, var):
    """``var[i, b]``: variance of window ``b``'s projection at table angle ``a = angle_idx[i]``,
    times ``scale[a]`` (1 for kymflow's score, 1 / uniform energy for the path-normalized one)."""
    for i in range(angle_idx.shape[0]):
        a = angle_idx[i]
        _project(x, nb, a, n_ops, op_col, op_pix, op_w, proj)
        _variance(proj, nb, var[i])
        for b in range(nb):
            var[i, b] *= scale[a]


@njit(**JIT_OPTIONS)
def _load(image, window_lines, windows, x):
    """Copy windows ``windows`` (indices) into the columns of ``x``, each minus its mean."""
    step = window_lines // 4
    n_cols = image.shape[1]
    n_pix = window_lines * n_cols
    for b in range(windows.shape[0]):
        r0 = windows[b] * step
        total = 0.0
        for i in range(window_lines):
            for j in range(n_cols):
                total += image[r0 + i, j]
        mean = total / n_pix
        for i in range(window_lines):
            for j in range(n_cols):
                x[i * n_cols + j, b] = image[r0 + i, j] - mean


@njit(**JIT_OPTIONS)
def _argmax_first(var, b, lo, n):
    """Index of the largest ``var[lo:lo + n, b]``, the first one on ties (as ``numpy.argmax``)."""
    best = lo
    for a in range(lo + 1, lo + n):
        if var[a, b] > var[best, b]:
            best = a
    return best


@njit(**JIT_OPTIONS)
def _coarse_pass(image, window_lines, windows, size, n_ops, op_col, op_pix, op_w32, scale, coarse, mean_var):
    """Best whole-degree angle and mean coarse variance of windows ``windows`` (indices).

    Projections in float32 (twice the SIMD lanes of float64, half the memory traffic),
    variances accumulated in float64. The coarse angle only chooses where the float64
    fine search looks (+-2 degrees), so the final angle is the float64 one unless two
    coarse scores tie to 1e-7, and then the fine windows of both overlap.
    """
    count = coarse.shape[0]
    x = np.zeros((window_lines * image.shape[1] + 1, _BATCH), dtype=np.float32)  # last row: zero
    proj = np.zeros((size, _BATCH), dtype=np.float32)
    var = np.zeros((180, _BATCH))
    idx = np.arange(180) * _GRID_PER_DEG + 8
    for b0 in range(0, count, _BATCH):
        nb = min(_BATCH, count - b0)
        _load(image, window_lines, windows[b0:b0 + nb], x)
        _score(x, nb, idx, n_ops, op_col, op_pix, op_w32, scale, proj, var)
        for b in range(nb):
            coarse[b0 + b] = _argmax_first(var, b, 0, 180)
            total = 0.0
            for a in range(180):
                total += var[a, b]
            mean_var[b0 + b] = total / 180.0


@njit(**JIT_OPTIONS)
def _fine_pass(image, window_lines, windows, size, n_ops, op_col, op_pix, op_w, scale, coarse,
               best_idx, best_var):
    """Best angle of the 0.25 degree grid within +-2 degrees of each window's coarse angle.

    ``windows`` holds the window indices, ``coarse`` their coarse angles (same order).

    Windows are sorted by coarse angle (stable) and scored in batches of up to ``_BATCH``
    whose coarse angles span at most ``_FINE_SPAN`` degrees, on the union of their fine
    angles; each window takes the best of its own 17.
    """
    x = np.zeros((window_lines * image.shape[1] + 1, _BATCH))
    proj = np.zeros((size, _BATCH))
    var = np.zeros((_N_FINE_UNION, _BATCH))
    order = np.argsort(coarse, kind="mergesort")
    n = coarse.shape[0]
    i = 0
    while i < n:
        c0 = coarse[order[i]]
        j = i
        while j < n and j - i < _BATCH and coarse[order[j]] - c0 <= _FINE_SPAN:
            j += 1
        members = order[i:j]
        _load(image, window_lines, windows[members], x)
        n_angles = (coarse[order[j - 1]] - c0) * _GRID_PER_DEG + _N_FINE
        idx = np.arange(n_angles) + c0 * _GRID_PER_DEG
        _score(x, j - i, idx, n_ops, op_col, op_pix, op_w, scale, proj, var)
        for b in range(j - i):
            lo = (coarse[members[b]] - c0) * _GRID_PER_DEG
            best = _argmax_first(var, b, lo, _N_FINE)
            best_idx[members[b]] = idx[best]
            best_var[members[b]] = var[best, b]
        i = j


def radon_projections(window, angles_deg):
    """Radon projections of one 2-D window, equal to ``skimage.transform.radon(..., circle=False)``.

    Parameters
    ----------
    window : array_like, shape (n_rows, n_cols)
        Axis 0 time (lines), axis 1 space (pixels). Used as is (no mean subtraction).
    angles_deg : array_like of float
        Projection angles in degrees.

    Returns
    -------
    ndarray of float64, shape (N, n_angles)
        Column ``i`` is the projection at ``angles_deg[i]``, ``N = padded_size(*window.shape)``.
    """
    window = np.ascontiguousarray(window, dtype=np.float64)
    if window.ndim != 2 or window.size == 0:
        raise ValueError(f"window must be a non-empty 2-D array, got shape {window.shape}")
    angles = np.atleast_1d(np.asarray(angles_deg, dtype=np.float64))
    n_ops, op_col, op_pix, op_w, size, _ = make_table(window.shape[0], window.shape[1], angles)
    x = np.zeros((window.size + 1, 1))  # last row: the zero the padding terms read
    x[:-1, 0] = window.ravel()
    out = np.zeros((size, len(angles)))
    proj = np.zeros((size, 1))
    for a in range(len(angles)):
        _project(x, 1, a, n_ops, op_col, op_pix, op_w, proj)
        out[:, a] = proj[:, 0]
    return out


def radon_windows(image, *, window_lines=16, first=0, count=None, energy_power=0.0, windows=None):
    """Best Radon angle and separability of consecutive windows of a line-scan block.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        Axis 0 time (one row per line), axis 1 space. Converted to C-contiguous float64.
    window_lines : int, keyword-only
        Lines per window ``W`` (a multiple of 4); windows start every ``W // 4`` lines.
    first : int, keyword-only
        Index of the first window to analyse.
    count : int or None, keyword-only
        Number of windows; ``None`` means up to the last window of the block.
    energy_power : float, keyword-only
        0 (default): the score is the projection variance, as kymflow. ``p > 0``: the
        variance divided by the angle's *uniform energy* (sum of squared projections of
        a window of ones) to the power ``p``, which offsets the gain of longer paths
        through a non-square window: 1 removes it for coherent streaks (``score=
        "path_normalized"``), 0.75 balances it against incoherent texture (``score=
        "balanced"``; see ``hpcacq.analyses.velocity_options``).
    windows : array_like of int or None, keyword-only
        Explicit window indices to analyse (any order, results in that order) instead
        of ``first .. first + count``; used to re-analyse a few windows.

    Returns
    -------
    theta_deg : ndarray of float64, shape (count,)
        Best angle in degrees (-2 .. 181, 0.25 degree grid); the streak slope is
        ``tan(theta)`` pixels per line.
    separability : ndarray of float64, shape (count,)
        Score at ``theta`` divided by the mean score over the 180 coarse angles
        (NaN for a constant window).
    coarse_deg : ndarray of float64, shape (count,)
        Best whole-degree angle of the coarse search.
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    if image.ndim != 2 or image.shape[1] < 1:
        raise ValueError(f"image must be 2-D (n_lines, n_pixels), got shape {image.shape}")
    if window_lines < 4 or window_lines % 4:
        raise ValueError(f"window_lines must be a positive multiple of 4, got {window_lines}")
    total = window_count(image.shape[0], window_lines)
    if windows is None:
        count = total - first if count is None else count
        if first < 0 or count < 0 or first + count > total:
            raise ValueError(f"windows {first}..{first + count} outside 0..{total} of this block")
        windows = np.arange(first, first + count, dtype=np.int64)
    else:
        windows = np.ascontiguousarray(windows, dtype=np.int64).ravel()
        if windows.size and (windows.min() < 0 or windows.max() >= total):
            raise ValueError(f"window indices outside 0..{total - 1} of this block")
        count = windows.size
    n_ops, op_col, op_pix, op_w, size, energy = angle_table(window_lines, image.shape[1])
    if energy_power == 0:
        scale = np.ones_like(energy)
    elif energy_power == 1:
        scale = 1.0 / energy
    else:
        scale = energy ** -float(energy_power)
    coarse = np.zeros(count, dtype=np.int64)
    mean_var = np.zeros(count)
    best_idx = np.zeros(count, dtype=np.int64)
    best_var = np.zeros(count)
    if count:
        op_w32 = coarse_weights32(window_lines, image.shape[1])
        _coarse_pass(image, window_lines, windows, size, n_ops, op_col, op_pix, op_w32, scale, coarse, mean_var)
        _fine_pass(image, window_lines, windows, size, n_ops, op_col, op_pix, op_w, scale, coarse, best_idx, best_var)
    theta = _GRID_FIRST_DEG + best_idx / _GRID_PER_DEG
    with np.errstate(invalid="ignore", divide="ignore"):
        separability = np.where(mean_var > 0, best_var / np.where(mean_var > 0, mean_var, 1), np.nan)
    return theta, separability, coarse.astype(np.float64)
