"""Radon-transform angle search over sliding windows of a line scan (Drew et al. 2010).

An image is ``(n_lines, n_pixels)``: axis 0 is time (one row per line scan), axis 1 is
space along the scan line. Window ``k`` covers rows ``[k*step, k*step + window_lines)``
with ``step = window_lines // 4``; there are ``n_lines // step - 3`` windows.

For each window (mean subtracted) the projection at angle ``theta`` (degrees) is exactly
``skimage.transform.radon(window, [theta], circle=False)[:, 0]``: the window is zero-padded
to a square of side ``N = ceil(sqrt(2) * max(window.shape))``, rotated about pixel
``(N // 2, N // 2)`` with bilinear sampling (zero outside), and summed over rows. The
score of an angle is the variance of its ``N`` projection values. The coarse search takes
the best of 0, 1, ..., 179 degrees, the fine search the best of ``coarse - 2, ..., coarse + 2``
in 0.25 degree steps; ties go to the first angle, as ``numpy.argmax`` does.

How it is fast: a projection is linear in the window, so for one window geometry and one
angle the map "pixel -> projection columns" is a fixed sparse matrix with at most a few
consecutive columns per pixel. It is built once per geometry by the gather formulation
over the ``N x N`` output grid (so edge and cropping effects match skimage) for every angle
of the 0.25 degree grid from -2 to 181 degrees, and cached. Windows are then processed in
batches held as ``(pixel, window)`` arrays, so the scatter ``proj[col, b] += w * x[pixel, b]``
runs over contiguous windows (SIMD). The fine pass groups windows by their coarse angle so
they share the 17 fine angles. Each window's arithmetic is the same sequence of float64
operations whatever its batch or chunk, so results do not depend on chunking or threads.

Option ``path_normalized``: each angle's variance is divided by the projection energy of
a window of ones at that angle (a per-angle constant), which removes the advantage that
longer paths through a non-square window give to steeper angles.

Angles here follow skimage: at ``theta`` the projection sums the window along the
direction ``d(col)/d(row) = tan(theta)``, so a streak moving ``v`` pixels per line scores
best at ``theta = atan(v)``.
"""

import math
import threading
from collections import OrderedDict

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS

__all__ = [
    "padded_size",
    "window_step",
    "window_count",
    "angle_table",
    "radon_projections",
    "radon_windows",
]

_GRID_FIRST_DEG = -2.0  # the table holds angles -2, -1.75, ..., 181 degrees
_GRID_PER_DEG = 4
_N_GRID = 4 * 183 + 1  # 733 angles
_N_FINE = 17
_BATCH = 64  # windows scored together (the SIMD axis)
_CACHE_BYTES = 256 * 2**20  # tables kept in memory (about 26 kB * window_lines * n_pixels each)
_cache: "OrderedDict[tuple[int, int], tuple]" = OrderedDict()
_cache_lock = threading.Lock()


def padded_size(n_rows, n_cols):
    """Side ``N`` of the square skimage pads a ``(n_rows, n_cols)`` window to (``circle=False``)."""
    return int(np.ceil(np.sqrt(2) * max(n_rows, n_cols)))


def window_step(window_lines):
    """Lines between consecutive windows: ``window_lines // 4``."""
    return window_lines // 4


def window_count(n_lines, window_lines):
    """Number of windows of ``window_lines`` lines in ``n_lines`` lines: ``n_lines // step - 3``."""
    return max(0, n_lines // window_step(window_lines) - 3)


def _rotation_rows(angles_deg, center):
    """The first two rows of skimage's inverse map for each angle, shape (n_angles, 6).

    Computed with numpy exactly as ``skimage.transform.radon`` does, so sampling
    coordinates are bit-identical: ``col_in = m0*x + m1*y + m2``, ``row_in = m3*x + m4*y + m5``.
    """
    out = np.empty((len(angles_deg), 6))
    for i, angle in enumerate(np.deg2rad(np.asarray(angles_deg, dtype=np.float64))):
        cos_a, sin_a = np.cos(angle), np.sin(angle)
        out[i] = (cos_a, sin_a, -center * (cos_a + sin_a - 1),
                  -sin_a, cos_a, -center * (cos_a - sin_a - 1))
    return out


@njit(**JIT_OPTIONS)
def _dense_weights(n_rows, n_cols, size, pad_row, pad_col, m, dense):
    """Fill ``dense[pixel, col]``: weight of window pixel ``row*n_cols + c`` in projection ``col``."""
    dense[:, :] = 0.0
    for y in range(size):
        for x in range(size):
            tc = m[0] * x + m[1] * y + m[2]
            tr = m[3] * x + m[4] * y + m[5]
            r0 = math.floor(tr)
            c0 = math.floor(tc)
            dr = tr - r0
            dc = tc - c0
            wr0 = int(r0) - pad_row
            wc0 = int(c0) - pad_col
            for i in range(2):
                rr = wr0 + i
                if rr < 0 or rr >= n_rows:
                    continue
                fr = (1.0 - dr) if i == 0 else dr
                for j in range(2):
                    cc = wc0 + j
                    if cc < 0 or cc >= n_cols:
                        continue
                    fc = (1.0 - dc) if j == 0 else dc
                    dense[rr * n_cols + cc, x] += fr * fc


@njit(**JIT_OPTIONS)
def _build_table(n_rows, n_cols, size, pad_row, pad_col, rows, k_max, start, n_used, weights):
    """Compress each angle's dense weights to at most ``k_max`` consecutive columns per pixel.

    Pixel ``p`` at angle ``a`` adds ``weights[a, p, k] * value`` to column ``start[a, p] + k``
    for ``k < n_used[a, p]``. Returns the largest span of columns any pixel needs; if it
    exceeds ``k_max`` the table is incomplete and the caller must rebuild with a larger one.
    """
    n_pix = n_rows * n_cols
    dense = np.zeros((n_pix, size))
    widest = 0
    for a in range(rows.shape[0]):
        _dense_weights(n_rows, n_cols, size, pad_row, pad_col, rows[a], dense)
        for p in range(n_pix):
            first = -1
            last = -1
            for x in range(size):
                if dense[p, x] != 0.0:
                    if first < 0:
                        first = x
                    last = x
            widest = max(widest, last - first + 1)
            start[a, p] = max(first, 0)
            n_used[a, p] = min(last - first + 1, k_max)
            for k in range(n_used[a, p]):
                weights[a, p, k] = dense[p, first + k]
    return widest


@njit(**JIT_OPTIONS)
def _uniform_energy(start, n_used, weights, size):
    """Per angle, the sum over columns of the squared projection of a window of ones."""
    energy = np.zeros(start.shape[0])
    proj = np.zeros(size)
    for a in range(start.shape[0]):
        proj[:] = 0.0
        for p in range(start.shape[1]):
            for k in range(n_used[a, p]):
                proj[start[a, p] + k] += weights[a, p, k]
        for c in range(size):
            energy[a] += proj[c] * proj[c]
    return energy


def _geometry(n_rows, n_cols):
    size = padded_size(n_rows, n_cols)
    pad_row = size // 2 - n_rows // 2
    pad_col = size // 2 - n_cols // 2
    return size, pad_row, pad_col


def _make_table(n_rows, n_cols, angles_deg):
    size, pad_row, pad_col = _geometry(n_rows, n_cols)
    rows = _rotation_rows(angles_deg, size // 2)
    k_max = 4
    while True:
        start = np.zeros((len(angles_deg), n_rows * n_cols), dtype=np.int32)
        n_used = np.zeros((len(angles_deg), n_rows * n_cols), dtype=np.int32)
        weights = np.zeros((len(angles_deg), n_rows * n_cols, k_max))
        widest = _build_table(n_rows, n_cols, size, pad_row, pad_col, rows, k_max, start, n_used, weights)
        if widest <= k_max:
            return start, n_used, weights, size, _uniform_energy(start, n_used, weights, size)
        k_max = widest


def angle_table(window_lines, n_pixels):
    """Sparse projection weights of a ``(window_lines, n_pixels)`` window on the 0.25 degree grid.

    Parameters
    ----------
    window_lines, n_pixels : int
        Window shape (time, space).

    Returns
    -------
    start : ndarray of int32, shape (733, window_lines * n_pixels)
        First projection column each pixel contributes to, per grid angle
        ``-2 + index / 4`` degrees (pixel ``p = row * n_pixels + col``).
    n_used : ndarray of int32, shape (733, window_lines * n_pixels)
        Number of consecutive columns (<= K) the pixel contributes to.
    weights : ndarray of float64, shape (733, window_lines * n_pixels, K)
        Weights on columns ``start .. start + n_used - 1``.
    size : int
        Projection length ``N``.
    uniform_energy : ndarray of float64, shape (733,)
        Sum over columns of the squared projection of a window of ones, per angle.

    The table is built once per shape (about 0.1-0.5 s for typical shapes) and kept in a
    least-recently-used cache of at most 256 MiB (thread safe; the newest table always
    stays). Memory is about 26 kB * window_lines * n_pixels per shape.
    """
    key = (int(window_lines), int(n_pixels))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        grid = _GRID_FIRST_DEG + np.arange(_N_GRID) / _GRID_PER_DEG
        table = _make_table(key[0], key[1], grid)
        _cache[key] = table
        while len(_cache) > 1 and sum(_table_bytes(t) for t in _cache.values()) > _CACHE_BYTES:
            _cache.popitem(last=False)  # least recently used first; the newest always stays
        return table


def _table_bytes(table):
    return sum(getattr(part, "nbytes", 0) for part in table)


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
    start, n_used, weights, size, _ = _make_table(window.shape[0], window.shape[1], angles)
    x = window.reshape(-1, 1).copy()
    out = np.zeros((size, len(angles)))
    proj = np.zeros((size, 1))
    for a in range(len(angles)):
        _project(x, 1, a, start, n_used, weights, proj)
        out[:, a] = proj[:, 0]
    return out


@njit(**JIT_OPTIONS)
def _project(x, nb, a, start, n_used, weights, proj):
    """Projections at table angle ``a`` of ``nb`` windows (columns of ``x``) into ``proj[:, :nb]``.

    x : (n_pix, B) windows, one per column; proj : (N, B). The loop over windows is
    innermost and contiguous, so it runs as SIMD.
    """
    proj[:, :nb] = 0.0
    for p in range(x.shape[0]):
        s = start[a, p]
        for k in range(n_used[a, p]):
            w = weights[a, p, k]
            for b in range(nb):
                proj[s + k, b] += w * x[p, b]


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
def _score(x, nb, angle_idx, start, n_used, weights, scale, proj, var):
    """``var[i, b]``: variance of window ``b``'s projection at table angle ``a = angle_idx[i]``,
    times ``scale[a]`` (1 for kymflow's score, 1 / uniform energy for the path-normalized one)."""
    for i in range(angle_idx.shape[0]):
        a = angle_idx[i]
        _project(x, nb, a, start, n_used, weights, proj)
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
def _argmax_first(var, b, n):
    """Index of the largest ``var[:n, b]``, the first one on ties (as ``numpy.argmax``)."""
    best = 0
    for a in range(1, n):
        if var[a, b] > var[best, b]:
            best = a
    return best


@njit(**JIT_OPTIONS)
def _coarse_pass(image, window_lines, first, size, start, n_used, weights, scale, coarse, mean_var):
    """Best whole-degree angle and mean coarse variance of windows ``first .. first + len(coarse)``."""
    count = coarse.shape[0]
    x = np.zeros((window_lines * image.shape[1], _BATCH))
    proj = np.zeros((size, _BATCH))
    var = np.zeros((180, _BATCH))
    idx = np.arange(180) * _GRID_PER_DEG + 8
    for b0 in range(0, count, _BATCH):
        nb = min(_BATCH, count - b0)
        _load(image, window_lines, np.arange(first + b0, first + b0 + nb), x)
        _score(x, nb, idx, start, n_used, weights, scale, proj, var)
        for b in range(nb):
            coarse[b0 + b] = _argmax_first(var, b, 180)
            total = 0.0
            for a in range(180):
                total += var[a, b]
            mean_var[b0 + b] = total / 180.0


@njit(**JIT_OPTIONS)
def _fine_pass(image, window_lines, first, size, start, n_used, weights, scale, coarse, best_idx, best_var):
    """Best angle of the 0.25 degree grid within +-2 degrees of each window's coarse angle.

    Windows are grouped by coarse angle (stable order) and scored in batches that share
    the 17 fine angles.
    """
    x = np.zeros((window_lines * image.shape[1], _BATCH))
    proj = np.zeros((size, _BATCH))
    var = np.zeros((_N_FINE, _BATCH))
    order = np.argsort(coarse, kind="mergesort")
    n = coarse.shape[0]
    i = 0
    while i < n:
        c = coarse[order[i]]
        j = i
        while j < n and j - i < _BATCH and coarse[order[j]] == c:
            j += 1
        members = order[i:j]
        _load(image, window_lines, members + first, x)
        idx = np.arange(_N_FINE) + c * _GRID_PER_DEG
        _score(x, j - i, idx, start, n_used, weights, scale, proj, var)
        for b in range(j - i):
            best = _argmax_first(var, b, _N_FINE)
            best_idx[members[b]] = idx[best]
            best_var[members[b]] = var[best, b]
        i = j


def radon_windows(image, *, window_lines=16, first=0, count=None, path_normalized=False):
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
    path_normalized : bool, keyword-only
        False (default): the score is the projection variance, as kymflow. True: the
        variance divided by the angle's *uniform energy* (sum of squared projections of
        a window of ones), which removes the gain of longer paths through a non-square
        window; it lowers the low-speed bias at W=16 (see ``hpcacq.analyses.velocity``).

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
    count = total - first if count is None else count
    if first < 0 or count < 0 or first + count > total:
        raise ValueError(f"windows {first}..{first + count} outside 0..{total} of this block")
    start, n_used, weights, size, energy = angle_table(window_lines, image.shape[1])
    scale = 1.0 / energy if path_normalized else np.ones_like(energy)
    coarse = np.zeros(count, dtype=np.int64)
    mean_var = np.zeros(count)
    best_idx = np.zeros(count, dtype=np.int64)
    best_var = np.zeros(count)
    if count:
        _coarse_pass(image, window_lines, first, size, start, n_used, weights, scale, coarse, mean_var)
        _fine_pass(image, window_lines, first, size, start, n_used, weights, scale, coarse, best_idx, best_var)
    theta = _GRID_FIRST_DEG + best_idx / _GRID_PER_DEG
    with np.errstate(invalid="ignore", divide="ignore"):
        separability = np.where(mean_var > 0, best_var / np.where(mean_var > 0, mean_var, 1), np.nan)
    return theta, separability, coarse.astype(np.float64)
