"""Projection weights of skimage's ``radon(..., circle=False)`` for one window shape.

A Radon projection is linear in the window: for one window shape ``(n_rows, n_cols)`` and
one angle it is a fixed sparse matrix ``N x (n_rows * n_cols)`` (``N`` the padded side).
This module builds that matrix once per shape, exactly as skimage samples (the window is
zero-padded to a square of side ``N = ceil(sqrt(2) * max(shape))``, rotated about pixel
``(N // 2, N // 2)`` with bilinear sampling, zero outside, and summed over rows), and
stores it as a *program* the projection kernel runs fast:

- per angle, a list of *ops*; op ``i`` adds ``sum_g w[g] * x[pixel[g]]`` to projection
  column ``col[i]``, for ``g < GROUP`` (8) terms in increasing pixel order;
- a column's terms are split over consecutive ops, padded with weight 0 on pixel
  ``n_rows * n_cols`` (a row of zeros the kernel appends to the window), so every op has
  exactly ``GROUP`` terms.

Adding the terms one by one, in increasing pixel order, to a column starting at 0 is the
same floating-point sequence as scattering every pixel's weights in pixel order; only
the padded ``+ 0 * 0`` terms are added, which change nothing.

Why windows are not split into shared blocks of lines: skimage rotates each window about
its own centre, so the weights of a pixel depend on its row *inside the window*; moving a
row by ``d`` lines moves its projection by ``d * sin(theta)`` columns, a fraction of a
bin, so the bilinear weights differ. The decomposition "window = sum of 4 blocks of
``step`` lines" is exact only with one weight set per block position, and projecting
each block at its 4 positions costs exactly as much as projecting every window.
"""

import math
import threading
from collections import OrderedDict

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .windows import window_count, window_step

__all__ = ["GROUP", "GRID_FIRST_DEG", "GRID_PER_DEG", "N_GRID", "padded_size", "window_step",
           "window_count", "make_table", "angle_table"]

GROUP = 8  # terms per op
GRID_FIRST_DEG = -2.0  # the cached table holds angles -2, -1.75, ..., 181 degrees
GRID_PER_DEG = 4
N_GRID = 4 * 183 + 1  # 733 angles
_CACHE_BYTES = 256 * 2**20  # tables kept in memory (about 24 kB * window_lines * n_pixels each)
_cache: "OrderedDict[tuple[int, int], tuple]" = OrderedDict()
_cache_lock = threading.Lock()


def padded_size(n_rows, n_cols):
    """Side ``N`` of the square skimage pads a ``(n_rows, n_cols)`` window to (``circle=False``)."""
    return int(np.ceil(np.sqrt(2) * max(n_rows, n_cols)))


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
def _column_terms(n_rows, n_cols, size, pad_row, pad_col, m, x, weights, marked, touched):
    """Weights of projection column ``x``, as skimage samples it: returns ``k``, the number of
    window pixels it touches, left in ``touched[:k]`` in increasing order.

    ``weights[p]`` is the weight of window pixel ``p = row * n_cols + col`` (added over the
    column's ``size`` samples in order); ``weights`` and ``marked`` must be zero on entry and
    are zero again once the caller has read them and called :func:`_clear_column`. Only the
    pixels a column touches are visited, so a table costs ``O(size**2)`` per angle, not
    ``O(size * n_pixels)``.
    """
    k = 0
    for y in range(size):
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
                p = rr * n_cols + cc
                if not marked[p]:
                    marked[p] = 1
                    touched[k] = p
                    k += 1
                weights[p] += fr * fc
    touched[:k].sort()
    return k


@njit(**JIT_OPTIONS)
def _clear_column(k, weights, marked, touched):
    for t in range(k):
        weights[touched[t]] = 0.0
        marked[touched[t]] = 0


@njit(**JIT_OPTIONS)
def _count_ops(n_rows, n_cols, size, pad_row, pad_col, rows):
    """Ops each angle needs (its columns' nonzero terms, rounded up to GROUP per column)."""
    n_pix = n_rows * n_cols
    weights = np.zeros(n_pix)
    marked = np.zeros(n_pix, dtype=np.uint8)
    touched = np.empty(4 * size, dtype=np.int64)
    n_ops = np.zeros(rows.shape[0], dtype=np.int32)
    for a in range(rows.shape[0]):
        for x in range(size):
            k = _column_terms(n_rows, n_cols, size, pad_row, pad_col, rows[a], x, weights, marked, touched)
            terms = 0
            for t in range(k):
                if weights[touched[t]] != 0.0:
                    terms += 1
            _clear_column(k, weights, marked, touched)
            n_ops[a] += (terms + GROUP - 1) // GROUP
    return n_ops


@njit(**JIT_OPTIONS)
def _fill_ops(n_rows, n_cols, size, pad_row, pad_col, rows, op_col, op_pix, op_w, energy):
    """Write every angle's ops; ``energy[a]``: sum of squares of a window of ones' projection."""
    n_pix = n_rows * n_cols
    weights = np.zeros(n_pix)
    marked = np.zeros(n_pix, dtype=np.uint8)
    touched = np.empty(4 * size, dtype=np.int64)
    op_pix[:, :, :] = n_pix  # padding terms read the zero row
    op_w[:, :, :] = 0.0
    op_col[:, :] = 0
    for a in range(rows.shape[0]):
        i = 0
        energy[a] = 0.0
        for x in range(size):
            k = _column_terms(n_rows, n_cols, size, pad_row, pad_col, rows[a], x, weights, marked, touched)
            g = 0
            ones = 0.0
            for t in range(k):
                p = touched[t]
                w = weights[p]
                if w != 0.0:
                    op_col[a, i] = x
                    op_pix[a, i, g] = p
                    op_w[a, i, g] = w
                    ones += w
                    g += 1
                    if g == GROUP:
                        g = 0
                        i += 1
            if g:
                i += 1
            energy[a] += ones * ones
            _clear_column(k, weights, marked, touched)


def _geometry(n_rows, n_cols):
    size = padded_size(n_rows, n_cols)
    return size, size // 2 - n_rows // 2, size // 2 - n_cols // 2


def make_table(n_rows, n_cols, angles_deg):
    """Projection program of a ``(n_rows, n_cols)`` window at the given angles (degrees).

    Returns
    -------
    n_ops : ndarray of int32, shape (n_angles,)
        Ops of each angle.
    op_col : ndarray of int32, shape (n_angles, max_ops)
        Projection column op ``i`` adds to.
    op_pix : ndarray of int32, shape (n_angles, max_ops, GROUP)
        Window pixels ``row * n_cols + col`` (``n_rows * n_cols`` = padding, a zero row).
    op_w : ndarray of float64, shape (n_angles, max_ops, GROUP)
        Weights of those pixels.
    size : int
        Projection length ``N``.
    uniform_energy : ndarray of float64, shape (n_angles,)
        Sum over columns of the squared projection of a window of ones.
    """
    size, pad_row, pad_col = _geometry(n_rows, n_cols)
    rows = _rotation_rows(angles_deg, size // 2)
    n_ops = _count_ops(n_rows, n_cols, size, pad_row, pad_col, rows)
    width = max(int(n_ops.max()), 1)
    op_col = np.empty((len(rows), width), dtype=np.int32)
    op_pix = np.empty((len(rows), width, GROUP), dtype=np.int32)
    op_w = np.empty((len(rows), width, GROUP))
    energy = np.empty(len(rows))
    _fill_ops(n_rows, n_cols, size, pad_row, pad_col, rows, op_col, op_pix, op_w, energy)
    return n_ops, op_col, op_pix, op_w, size, energy


def angle_table(window_lines, n_pixels):
    """:func:`make_table` of a ``(window_lines, n_pixels)`` window on the 0.25 degree grid.

    Grid angle ``a`` is ``GRID_FIRST_DEG + a / GRID_PER_DEG`` degrees (-2 .. 181, 733 angles).
    Built once per shape (16 x 38: 0.3 s, 16 x 150: 1 s, 128 x 150: 4 s on a busy 2-core
    machine) and kept in a least-recently-used cache of at
    most 256 MiB (thread safe; the newest table always stays); about 24 kB *
    window_lines * n_pixels per shape.
    """
    key = (int(window_lines), int(n_pixels))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        grid = GRID_FIRST_DEG + np.arange(N_GRID) / GRID_PER_DEG
        table = make_table(key[0], key[1], grid)
        _cache[key] = table
        while len(_cache) > 1 and _cached_bytes() > _CACHE_BYTES:
            old, _ = _cache.popitem(last=False)  # least recently used first; the newest always stays
            _weights32.pop(old, None)
        return table


def coarse_weights32(window_lines, n_pixels):
    """The weights of :func:`angle_table` as float32 (for the coarse search).

    Kept per shape beside the table while the table is cached (files of several widths
    analysed at once each keep theirs), counted in the same memory bound.
    """
    key = (int(window_lines), int(n_pixels))
    table = angle_table(*key)
    with _cache_lock:
        cached = _weights32.get(key)
        if cached is None or cached[0] is not table[3]:
            cached = (table[3], table[3].astype(np.float32))
            if _cache.get(key) is table:
                _weights32[key] = cached
        return cached[1]


_weights32 = {}  # shape -> (the table's float64 weights, their float32 copy)


def _cached_bytes():
    return sum(_table_bytes(t) for t in _cache.values()) + sum(w.nbytes for _, w in _weights32.values())


def _table_bytes(table):
    return sum(getattr(part, "nbytes", 0) for part in table)
