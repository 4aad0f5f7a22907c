"""Pooled Pearson correlation of lines ``lag`` apart, at every integer shift, per window.

An image is ``(n_lines, n_pixels)``: axis 0 is time (one row per line scan), axis 1 is
space along the scan line. Windows are the Radon search's: window ``k`` holds lines
``[k*step, k*step + window_lines)`` with ``step = window_lines // 4``, so its pairs of lines
``(t, t + lag)`` are those with ``t`` in ``[k*step, k*step + window_lines - lag)``.

``R[k, s + max_shift]`` is the Pearson correlation of line ``t + lag`` shifted by ``s``
pixels (pixel ``p + s``) against line ``t`` (pixel ``p``), pooled over every pair of window
``k`` and over the overlapping pixels only (``n_pixels - |s|`` of them). NaN where a
variance is zero (constant lines) or negative by rounding, and where a window pools a
single point (one pair, one overlapping pixel: ``lag = window_lines - 1`` at
``|s| = n_pixels - 1``).

How it is fast: one pass over the pairs of lines keeps running sums over the pairs of
(1) each shift's products over the overlap, computed once per pair and shift (for each
pixel of line ``t``, a multiply-add over the shifts: contiguous, SIMD, fused), and (2)
both lines' values and squares per pixel. A window's sums are differences of those
running sums (snapshots of the windows still open are kept in a small ring); its sums of
values and squares over each shift's overlap come from its column sums summed along the
line. The cost per lag is ``O(n_lines * n_pixels * shifts)``, independent of the window
length; the memory a few arrays of ``shifts`` and ``n_pixels`` values. Serial and nogil:
the analysis runs chunks of windows on threads. The products follow the NumPy reference
``hpcacq.analyses.narrow_velocity._lag_correlation_numpy`` (row terms, running sums over
the pairs, differences); the sums of values and squares are added in another order (per
pixel over the pairs, then along the line): correlations agree within about 1e-13 (4e-9
where a window pools only 2 points, whose correlation cancels badly in both).
"""

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS

__all__ = ["lag_correlation"]

_A, _AA, _B, _BB = 0, 1, 2, 3  # column sums of the later lines, their squares; of the earlier lines, squares
# contract: a * b + c as one fused multiply-add (as the Radon projections)
_OPTIONS = dict(JIT_OPTIONS, fastmath={"contract"})


@njit(**_OPTIONS)
def _add_pair(a, b, max_shift, ab, run_ab, run_cols):
    """Add pair ``(b, a)`` (lines ``t``, ``t + lag``) to the running sums over pairs.

    ``run_ab[s + max_shift]`` += the products over the overlap at shift ``s`` (computed in
    ``ab``: for each pixel ``p`` of ``b``, a multiply-add over the shifts, contiguous so
    SIMD; each shift's sum runs over ``p`` in order); ``run_cols`` += both lines and their
    squares, per pixel.
    """
    n_pix = a.size
    ab[:] = 0.0
    for p in range(n_pix):  # pixel p of b meets pixel p + s of a
        lo = max(-max_shift, -p)
        hi = min(max_shift, n_pix - 1 - p)
        bp = b[p]
        into = ab[lo + max_shift:hi + max_shift + 1]
        later = a[p + lo:p + hi + 1]
        for j in range(into.size):
            into[j] += later[j] * bp
    for i in range(ab.size):
        run_ab[i] += ab[i]
    for p in range(n_pix):
        run_cols[_A, p] += a[p]
        run_cols[_AA, p] += a[p] * a[p]
        run_cols[_B, p] += b[p]
        run_cols[_BB, p] += b[p] * b[p]


@njit(**_OPTIONS)
def _finish(run_ab, start_ab, run_cols, start_cols, pairs, max_shift, prefix, out_row):
    """Pearson correlation per shift of the pairs summed since the ``start_*`` snapshots.

    The window's column sums (run - start) are summed along the line into ``prefix``
    (``prefix[j, p]``: pixels ``[0, p)``), so each shift's overlap is one difference.
    """
    n_pix = run_cols.shape[1]
    for j in range(4):
        acc = 0.0
        prefix[j, 0] = 0.0
        for p in range(n_pix):
            acc += run_cols[j, p] - start_cols[j, p]
            prefix[j, p + 1] = acc
    for i in range(2 * max_shift + 1):
        s = i - max_shift
        n = n_pix - abs(s)
        a0 = max(s, 0)  # pixel a0 + p of the later line meets pixel b0 + p of the earlier one
        b0 = max(-s, 0)
        m = pairs * n
        if m < 2:  # one point (one pair, one pixel): no correlation (the sums would leave rounding noise)
            out_row[i] = np.nan
            continue
        sab = run_ab[i] - start_ab[i]
        sa = prefix[_A, a0 + n] - prefix[_A, a0]
        saa = prefix[_AA, a0 + n] - prefix[_AA, a0]
        sb = prefix[_B, b0 + n] - prefix[_B, b0]
        sbb = prefix[_BB, b0 + n] - prefix[_BB, b0]
        cov = sab - sa * sb / m
        var_a = saa - sa * sa / m
        var_b = sbb - sb * sb / m
        out_row[i] = cov / np.sqrt(var_a * var_b)


@njit(**_OPTIONS)
def _lag_correlation(x, window_lines, lag, max_shift, n_windows, out):
    n_pix = x.shape[1]
    n_shifts = 2 * max_shift + 1
    step = window_lines // 4
    pairs = window_lines - lag  # pairs of lines per window
    ring = pairs // step + 2  # more than the windows open at once
    run_ab = np.zeros(n_shifts)  # sums over the pairs [0, t)
    run_cols = np.zeros((4, n_pix))
    start_ab = np.empty((ring, n_shifts))  # the sums when window k opened, in slot k % ring
    start_cols = np.empty((ring, 4, n_pix))
    ab = np.empty(n_shifts)
    prefix = np.empty((4, n_pix + 1))
    last = (n_windows - 1) * step + pairs  # the pairs needed: [0, last)
    opened = 0
    closed = 0
    for t in range(last + 1):
        if closed < n_windows and closed * step + pairs == t:
            slot = closed % ring
            _finish(run_ab, start_ab[slot], run_cols, start_cols[slot], pairs, max_shift, prefix, out[closed])
            closed += 1
        if opened < n_windows and opened * step == t:
            start_ab[opened % ring] = run_ab
            start_cols[opened % ring] = run_cols
            opened += 1
        if t < last:
            _add_pair(x[t + lag], x[t], max_shift, ab, run_ab, run_cols)


def lag_correlation(x, *, window_lines, lag, max_shift, n_windows):
    """``R[k, s + max_shift]``: pooled correlation of lines ``t + lag`` (shifted ``s`` px) and ``t``.

    Parameters
    ----------
    x : array_like, shape (n_lines, n_pixels)
        Axis 0 time, axis 1 space; usually with its static background removed. Finite values.
    window_lines : int, keyword-only
        Lines per window, a multiple of 4 (>= 4); windows start every ``window_lines // 4`` lines.
    lag : int, keyword-only
        Lines between the two lines of a pair, ``1 <= lag < window_lines``.
    max_shift : int, keyword-only
        Shifts ``-max_shift .. max_shift`` pixels, ``0 <= max_shift < n_pixels``.
    n_windows : int, keyword-only
        Windows computed (the first ``n_windows``; all of them must fit in ``n_lines``).

    Returns
    -------
    ndarray, float64, shape (n_windows, 2 * max_shift + 1)
        Correlations, in [-1, 1] up to rounding (a window whose variance is rounding noise can give
        +-inf); NaN where a line set has no variance.

    Examples
    --------
    >>> import numpy as np
    >>> lines, px = np.mgrid[0:64, 0:20]
    >>> x = np.cos(2 * np.pi * (px - 2 * lines) / 9.0)  # streaks moving 2 px per line
    >>> r = lag_correlation(x, window_lines=16, lag=1, max_shift=4, n_windows=3)
    >>> r.shape, int(np.argmax(r[0])) - 4
    ((3, 9), 2)
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n_lines, n_pixels), got shape {x.shape}")
    n_lines, n_pix = x.shape
    if window_lines < 4 or window_lines % 4:
        raise ValueError(f"window_lines must be a positive multiple of 4, got {window_lines}")
    if not 1 <= lag < window_lines:
        raise ValueError(f"lag must be in 1 .. window_lines - 1 = {window_lines - 1}, got {lag}")
    if not 0 <= max_shift < n_pix:
        raise ValueError(f"max_shift must be in 0 .. n_pixels - 1 = {n_pix - 1}, got {max_shift}")
    if n_windows < 0 or (n_windows and (n_windows - 1) * (window_lines // 4) + window_lines > n_lines):
        raise ValueError(f"{n_windows} windows of {window_lines} lines do not fit in {n_lines} lines")
    out = np.empty((n_windows, 2 * max_shift + 1))
    if n_windows:
        _lag_correlation(x, int(window_lines), int(lag), int(max_shift), int(n_windows), out)
    return out
