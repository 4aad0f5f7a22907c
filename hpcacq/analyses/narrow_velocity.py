"""Velocity of narrow line scans by multi-lag line cross-correlation (a prototype, not the default).

An image is ``(n_lines, n_pixels)``: axis 0 time (one row per line), axis 1 space.
Velocity is in mm/s, positive when cells move toward increasing pixel index.

Why: on lines of a few pixels (7 on A89_0005/0006) the Radon angle search of Drew et al.
is biased by the window's shape: a streak crosses the line in ``n_pixels / speed`` lines,
so the path of each projection ray through the window, and with it the score, changes with
the candidate angle. On synthetic 7-pixel lines the median error of the Radon search is
-3 to -17% and depends on the window length; the path-normalized score and per-ray
normalization over-correct (+15%).

What this estimator does instead, over the same windows as the Radon search (``W`` lines,
one every ``W // 4`` lines, ``n_lines // (W // 4) - 3`` windows):

1. Each column's running mean over ``background_lines`` lines is subtracted (static
   background: walls, bright spots, uneven illumination).
2. For lags ``L = 1, 2, ...`` lines and integer shifts ``s`` (pixels), the Pearson
   correlation ``R(L, s)`` of line ``t`` with line ``t + L`` shifted by ``s``, pooled over
   every pair of the window and over the overlapping pixels only (so the score does not
   depend on how many pixels overlap). Its peak is at ``s = v L``.
3. The peak of each lag is located to sub-pixel precision by a three-point Gaussian fit
   (parabolic where a value is not positive). No shift wins over a larger correlation
   elsewhere when it is a peak of its own within one noise SD of it (stopped cells: a
   chance match of a few pixels must not beat the static pattern's own position).
4. A guide speed ``g`` per window: the NaN-aware running median, over ``select_windows``
   windows, of the lag-1 peaks. Lags whose expected shift ``|g| L`` stays at least one
   pixel inside the shift range are used, and a lag whose peak disagrees with ``g L`` by
   more than ``1 + 0.3 |g| L`` pixels is dropped. (Guiding by the window's own lag-1 peak
   gives the same accuracy but 5-9% NaN windows at W = 16 and 0.3-0.5 px/line, where
   lag 1 alone is ambiguous; the running median brings that to 1-2%.) The speed is the
   least-squares slope through the origin: ``v = sum(L d_L) / sum(L^2)`` pixels per line.

The largest measurable speed is ``max_shift_px - 1`` pixels per line, with
``max_shift_px = min(n_pixels - min_overlap_px, 24)`` by default. Windows with no usable
lag are NaN; a file where most windows are NaN is faster than that limit (on a 7-pixel
line: 3 px per line) and the median of its few finite windows is biased low.

Known weakness: the three-point peak fit locks slightly toward whole pixels when only
lag 1 is usable and the correlation peak is narrow (a cosine of period 6 px at 1.3 px per
line reads 1.36 on a 7-pixel line; cell-like synthetic streaks: <= 1%).

Measured (synthetic 7-pixel lines cut from a wider synthetic kymograph, 3 seeds x 4000
lines, 0.3-2 px per line; tests/test_narrow_velocity.py): median |error| 0.3-1.5% for
W = 32-128 and 1-3.5% for W = 16 (signed -2% at 0.3 px per line), with or without static
walls, spots and illumination, against 3-15% (signed -15 to 0%) for the Radon search;
20-150 pixel lines: <= 1% (Radon <= 3.8%). Real 7-pixel files A89_0005/0006: the file
median changes by 3-4% between W = 16 and 64 (Radon: 14-17%); cutting the central 7
pixels out of the 14-pixel A89_0004 changes its median by 0-2% (Radon: -20 to -27%).

This is the line-scanning PIV idea of Kim et al. 2012 (PLoS ONE 7:e38590) computed over
Radon-style windows; written from the description, no code copied.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import checks
from ..errors import InputError
from ..kernels.line_correlation import lag_correlation
from ..kernels.windows import window_count, window_times_s

__all__ = ["LagEstimate", "lag_estimate", "lag_velocity", "lag_speed_px_per_line", "shift_range_px", "subtract_running_mean"]


def subtract_running_mean(block: np.ndarray, *, lines: int) -> np.ndarray:
    """``block`` minus each column's centred running mean over about ``lines`` lines.

    ``lines <= 0`` or ``lines >= n_lines`` subtracts each column's mean over the block.
    Axis 0 is time. Returns a new float64 array; besides it, memory stays within a few
    chunks of ``_MEAN_CHUNK_LINES`` lines (the running sums are taken chunk by chunk over
    each chunk's lines and the ``lines // 2`` either side).
    """
    block = np.asarray(block)
    n = block.shape[0]
    if lines <= 0 or lines >= n:
        return block - block.mean(axis=0, dtype=np.float64, keepdims=True)
    half = lines // 2
    out = np.empty(block.shape, dtype=np.float64)
    for a in range(0, n, _MEAN_CHUNK_LINES):
        b = min(n, a + _MEAN_CHUNK_LINES)
        first, stop = max(0, a - half), min(n, b + half + 1)
        c = np.zeros((stop - first + 1, block.shape[1]))
        np.cumsum(block[first:stop], axis=0, dtype=np.float64, out=c[1:])
        t = np.arange(a, b)
        lo, hi = np.clip(t - half, 0, n), np.clip(t + half + 1, 0, n)
        np.subtract(block[a:b], (c[hi - first] - c[lo - first]) / (hi - lo)[:, None], out=out[a:b])
    return out


_MEAN_CHUNK_LINES = 1 << 16  # lines per chunk of subtract_running_mean


def _lag_correlation(x: np.ndarray, window_lines: int, lag: int, max_shift: int, n_windows: int) -> np.ndarray:
    """``R[k, s + max_shift]``: correlation of lines ``t`` and ``t + lag`` shifted by ``s`` pixels,
    pooled over window ``k``'s pairs and the overlapping pixels (the Numba kernel
    :func:`hpcacq.kernels.line_correlation.lag_correlation`; :func:`_lag_correlation_numpy`
    is the same in NumPy, kept as its reference)."""
    return lag_correlation(x, window_lines=window_lines, lag=lag, max_shift=max_shift, n_windows=n_windows)


def _window_sums(per_pair: np.ndarray, window_lines: int, lag: int, n_windows: int) -> np.ndarray:
    """Sums of ``per_pair`` (row ``t``: the pair of lines ``t, t + lag``) over each window's pairs."""
    c = np.concatenate((np.zeros((1,) + per_pair.shape[1:]), np.cumsum(per_pair, axis=0)))
    starts = np.arange(n_windows) * (window_lines // 4)
    return c[starts + window_lines - lag] - c[starts]


def _lag_correlation_numpy(x: np.ndarray, window_lines: int, lag: int, max_shift: int,
                           n_windows: int) -> np.ndarray:
    """:func:`_lag_correlation` in NumPy, one shift at a time (the kernel's reference, for tests
    and ``benchmarks/bench_line_velocity.py``)."""
    n_pix = x.shape[1]
    out = np.empty((n_windows, 2 * max_shift + 1))
    for i, s in enumerate(range(-max_shift, max_shift + 1)):
        later = x[lag:, max(s, 0):n_pix + min(s, 0)]
        earlier = x[:-lag, max(-s, 0):n_pix - max(s, 0)]
        terms = np.stack([(later * earlier).sum(1), (later * later).sum(1), (earlier * earlier).sum(1),
                          later.sum(1), earlier.sum(1)], axis=1)
        t = _window_sums(terms, window_lines, lag, n_windows)
        m = (window_lines - lag) * later.shape[1]
        cov = t[:, 0] - t[:, 3] * t[:, 4] / m
        var_a = t[:, 1] - t[:, 3] ** 2 / m
        var_b = t[:, 2] - t[:, 4] ** 2 / m
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = cov / np.sqrt(var_a * var_b)
    return out


def _peak(r: np.ndarray, zero_tolerance: float) -> np.ndarray:
    """Sub-pixel position (index units) of each row's peak; NaN at the ends or all-NaN rows.

    The peak is the largest correlation, except that no shift (the middle index) wins when
    it is a peak of its own within ``zero_tolerance`` of the largest: on a static pattern
    (stopped cells) a shift that lines up a few pixels by chance can correlate as well as
    no shift (a shift of 13 pixels sharing 7 of 20 did), and no shift is the one that needs
    no coincidence. (Where no shift lies on the flank of a broad peak, as at 1.6 pixels per
    line on 7-pixel lines, it is not a peak of its own and the largest wins.) The sub-pixel
    position is then fitted around the chosen index.
    """
    n, k = r.shape
    filled = np.where(np.isfinite(r), r, -np.inf)
    j = np.argmax(filled, axis=1)
    middle = k // 2
    at_zero = filled[:, middle]
    with np.errstate(invalid="ignore"):
        local_max = (at_zero >= filled[:, middle - 1]) & (at_zero >= filled[:, middle + 1])
        j = np.where(local_max & (at_zero >= filled[np.arange(n), j] - zero_tolerance), middle, j)
    inner = (j > 0) & (j < k - 1) & np.isfinite(filled[np.arange(n), j])
    jc = np.clip(j, 1, k - 2)
    rows = np.arange(n)
    y0, y1, y2 = filled[rows, jc - 1], filled[rows, jc], filled[rows, jc + 1]
    positive = (y0 > 0) & (y1 > 0) & (y2 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g0, g1, g2 = (np.log(np.where(positive, y, 1.0)) for y in (y0, y1, y2))
        curv_g = g0 - 2 * g1 + g2
        curv_p = y0 - 2 * y1 + y2
        d = np.where(positive & (curv_g < 0), 0.5 * (g0 - g2) / curv_g,
                     np.where(curv_p < 0, 0.5 * (y0 - y2) / curv_p, 0.0))
    d = np.where(np.isfinite(d), np.clip(d, -1.0, 1.0), 0.0)
    return np.where(inner, jc + d, np.nan)


def _running_nanmedian(values: np.ndarray, span: int) -> np.ndarray:
    """NaN-aware centred running median over ``span`` values (shorter at the ends); NaN if all are."""
    n = values.size
    half = max(span, 1) // 2
    padded = np.concatenate((np.full(half, np.nan), values, np.full(half, np.nan)))
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)[:n]
    out = np.full(n, np.nan)
    some = np.isfinite(view).any(axis=1)
    out[some] = np.nanmedian(view[some], axis=1)
    return out


def shift_range_px(n_pixels: int, max_shift_px: int | None, min_overlap_px: int) -> int:
    """The largest shift searched between two lines, pixels: ``max_shift_px`` capped at
    ``n_pixels - 1``, or by default ``min(n_pixels - min_overlap_px, 24)``. The fastest
    measurable speed is one pixel per line less."""
    return min(n_pixels - min_overlap_px, 24) if max_shift_px is None else min(max_shift_px, n_pixels - 1)


class LagEstimate(NamedTuple):
    """Per-window output of :func:`lag_estimate` (arrays of shape ``(n_windows,)``).

    Attributes
    ----------
    speed : ndarray of float64
        Pixels per line, + toward increasing pixel index; NaN where no lag is usable.
    peak_z : ndarray of float64
        The strongest lag-1 correlation as a z-score against white noise: the largest, over
        the shifts searched, of ``R(s) * sqrt((W - 1) * overlap(s))`` (``overlap``: pixels
        the two lines share at shift ``s``). White noise, 20 000 lines, 7-150 pixels,
        W = 16-128: median 1.4-2.2, 99th percentile 2.9-3.7. NaN where no shift has a value.
        Correlated noise common to a line (flicker) raises it: see docs/QUALITY.md.
    lags_tried : ndarray of int32
        Lags whose expected shift stays inside the shift range.
    lags_kept : ndarray of int32
        Lags whose peak agrees with the guide speed (those the slope is fitted to).
    line_centred_z : ndarray of float64
        ``peak_z`` of the lines with each line's own mean subtracted: what is common to a
        whole line (brightness flicker) no longer correlates. Lower than ``peak_z`` on
        narrow lines, where a cell changes the line's mean too.
    """

    speed: np.ndarray
    peak_z: np.ndarray
    lags_tried: np.ndarray
    lags_kept: np.ndarray
    line_centred_z: np.ndarray


def lag_estimate(block, *, window_lines: int = 16, max_shift_px: int | None = None,
                 min_overlap_px: int = 3, max_lag_lines: int = 32, select_windows: int = 15) -> LagEstimate:
    """Speed of each window and the evidence behind it; no background step.

    ``block`` is ``(n_lines, n_pixels)`` (axis 0 time) with its static background already
    removed. Windows as the Radon search; see the module docstring for the method.
    """
    x = np.asarray(block, dtype=np.float64)
    n_lines, n_pix = x.shape
    n_windows = window_count(n_lines, window_lines)
    shift = shift_range_px(n_pix, max_shift_px, min_overlap_px)
    if shift < 2:
        raise InputError(f"lines of {n_pix} pixels are too short for the lag estimator (need a shift range "
                         f"of at least 2 pixels with {min_overlap_px} overlapping); lower min_overlap_px")
    tolerance = 1.0 / np.sqrt((window_lines - 1) * n_pix)  # about one noise SD of the correlation at no shift
    r1 = _lag_correlation(x, window_lines, 1, shift, n_windows)
    first = _peak(r1, tolerance) - shift
    guide = _running_nanmedian(first, select_windows)
    num = np.zeros(n_windows)
    den = np.zeros(n_windows)
    tried = np.zeros(n_windows, dtype=np.int32)
    kept = np.zeros(n_windows, dtype=np.int32)
    for lag in range(1, min(window_lines - 1, max_lag_lines) + 1):
        with np.errstate(invalid="ignore"):
            use = np.abs(guide) * lag <= shift - 1.0
        if not use.any():
            break
        d = first if lag == 1 else _peak(_lag_correlation(x, window_lines, lag, shift, n_windows), tolerance) - shift
        with np.errstate(invalid="ignore"):
            ok = use & (np.abs(d - guide * lag) < 1.0 + 0.3 * lag * np.abs(guide))
        num += np.where(ok, lag * d, 0.0)
        den += np.where(ok, lag * lag, 0.0)
        tried += use
        kept += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where(den > 0, num / den, np.nan)
    centred = x - x.mean(axis=1, keepdims=True)
    r_centred = _lag_correlation(centred, window_lines, 1, shift, n_windows)
    return LagEstimate(speed, _peak_z(r1, window_lines, n_pix, shift), tried, kept,
                       _peak_z(r_centred, window_lines, n_pix, shift))


def _peak_z(r: np.ndarray, window_lines: int, n_pix: int, shift: int) -> np.ndarray:
    """Each row's largest ``r * sqrt(samples pooled at that shift)``; NaN for all-NaN rows."""
    samples = (window_lines - 1) * (n_pix - np.abs(np.arange(-shift, shift + 1)))
    z = np.where(np.isfinite(r), r * np.sqrt(samples), -np.inf).max(axis=1)
    return np.where(np.isfinite(z), z, np.nan)


def lag_speed_px_per_line(block, **options) -> np.ndarray:
    """Speed of each window in pixels per line (+ toward increasing pixel index); no background step.

    The ``speed`` of :func:`lag_estimate` (same arguments). Returns float64 of shape
    ``(n_windows,)``, NaN where the speed cannot be measured.
    """
    return lag_estimate(block, **options).speed


def lag_velocity(image, *, dx_um: float, dt_s: float, window_lines: int = 16, background_lines: int = 4096,
                 max_shift_px: int | None = None, min_overlap_px: int = 3,
                 max_lag_lines: int = 32, select_windows: int = 15) -> dict[str, np.ndarray]:
    """Velocity per window of a (narrow) line-scan block by multi-lag line cross-correlation.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        Axis 0 time (one row per line), axis 1 space.
    dx_um, dt_s : float, keyword-only
        Micrometres per pixel, seconds per line.
    window_lines : int, keyword-only
        Lines per window (multiple of 4, >= 8); windows start every ``window_lines // 4`` lines.
    background_lines : int, keyword-only
        Running mean subtracted from each column first, lines (0: the block's column means).
    max_shift_px, min_overlap_px, max_lag_lines : keyword-only
        Shift range searched (default ``min(n_pixels - min_overlap_px, 24)``), pixels two
        lines must share, and the longest lag used.
    select_windows : int, keyword-only
        Windows in the running median of lag-1 peaks that chooses each window's lags (15).

    Returns
    -------
    dict
        ``time_s`` (s, window centre), ``px_per_line`` and ``velocity_mm_s`` (mm/s, + toward
        increasing pixel index; NaN where not measurable).

    Examples
    --------
    >>> import numpy as np
    >>> lines, x = np.mgrid[0:256, 0:7]  # 7-pixel lines, streaks moving 1.3 px per line
    >>> image = 1000 + 300 * np.cos(2 * np.pi * (x - 1.3 * lines) / 10.0)
    >>> out = lag_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=32)
    >>> round(float(np.median(out["px_per_line"])), 2)
    1.3
    """
    checks.positive("dx_um", dx_um, "e.g. dx_um=0.5")
    checks.positive("dt_s", dt_s, "e.g. dt_s=0.001")
    w = checks.window_lines(window_lines, 8)
    block = np.asarray(image, dtype=np.float64)
    if block.ndim != 2 or block.shape[0] < w or not np.all(np.isfinite(block)):
        raise InputError(f"image must be a finite 2-D (n_lines, n_pixels) array with at least {w} lines, "
                         f"got shape {block.shape}")
    clean = subtract_running_mean(block, lines=checks.integer("background_lines", background_lines, 0, "0: whole"))
    speed = lag_speed_px_per_line(clean, window_lines=w, max_shift_px=max_shift_px,
                                  min_overlap_px=min_overlap_px, max_lag_lines=max_lag_lines,
                                  select_windows=checks.integer("select_windows", select_windows, 1, "e.g. 15"))
    time_s = window_times_s(speed.size, window_lines=w, dt_s=dt_s)
    return {"time_s": time_s, "px_per_line": speed, "velocity_mm_s": speed * dx_um / dt_s / 1000.0}

