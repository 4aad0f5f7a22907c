"""Per-line vessel diameter kernels: row binning, sub-pixel half-maximum edges, profile fit.

The kernels live in :mod:`.diameter_profile` (binning, percentiles, half maximum),
:mod:`.diameter_fit` (profile fit) and :mod:`.diameter_lines` (the loops over analysed
lines with a stride); this module holds the default half-maximum loop and the public wrappers.

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
- ``WEAK_EDGE`` (32): gradient edge whose derivative peak is below ``min_strength``; NaN.
- ``MOTION_REJECTED`` (64): set by :func:`hpcacq.kernels.diameter_series.motion_gate`.

With ``stride > 1`` only the lines whose absolute index is a multiple of ``stride`` are
analysed (their rows equal the ``stride=1`` rows at those lines).
"""

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .diameter_lines import analysed_lines, fit_lines, gradient_lines, threshold_lines
from .diameter_profile import (
    _ANCHOR,
    FIT_NOT_CONVERGED,
    FIT_POOR,
    FLAG_BITS,
    LEFT_EDGE_MISSING,
    MOTION_REJECTED,
    NO_CONTRAST,
    RIGHT_EDGE_MISSING,
    WEAK_EDGE,
    _edges_at,
    _extremes5_lanes,
    _lerp,
    _low5_max,
    _next_profile,
    _order_index,
    _percentile_scratch,
    _two_percentiles,
)

_LANES = 32  # lines whose percentiles are found together (SIMD over lines)

__all__ = [
    "all_finite",
    "FLAG_BITS",
    "LEFT_EDGE_MISSING",
    "RIGHT_EDGE_MISSING",
    "NO_CONTRAST",
    "FIT_NOT_CONVERGED",
    "FIT_POOR",
    "WEAK_EDGE",
    "MOTION_REJECTED",
    "bin_lines",
    "gradient_edges",
    "gaussian_weights",
    "halfmax_edges",
    "fit_edges",
]


@njit(**JIT_OPTIONS)
def _bin_lines(img, start, stop, h, median, flip, out):
    n_pix = img.shape[1]
    acc = np.empty(n_pix)
    buf = np.empty(2 * h + 1)
    for i in range(start, stop):
        _next_profile(img, i, start, h, median, flip, acc, buf, out[i - start])


@njit(**JIT_OPTIONS)
def _halfmax_lines(img, start, stop, h, median, flip, q_lo, q_hi, left, right, flags):
    """Half-maximum edges of lines ``start..stop-1``, ``_LANES`` lines at a time.

    With the default peak (the maximum) and a baseline among the 5 smallest values (10th
    percentile of up to 44 pixels), one pass per line keeps those order statistics in
    registers (:func:`_low5_max`). Other percentiles needing at most 5 order statistics at
    each end come from one compare-exchange pass over all the block's profiles at once
    (SIMD over lines); the rest line by line. All give numpy's exact percentiles.
    """
    n_pix = img.shape[1]
    acc = np.empty(n_pix)
    buf = np.empty(2 * h + 1)
    rows = np.empty((_LANES, n_pix))
    cols = np.empty((n_pix, _LANES))
    low = np.empty((5, _LANES))
    high = np.empty((5, _LANES))
    scratch = _percentile_scratch(n_pix)
    k_lo, g_lo = _order_index(q_lo, n_pix)
    k_hi, g_hi = _order_index(q_hi, n_pix)
    t = n_pix - 1 - k_hi  # rank of order statistic k_hi counted from the largest
    lanes = min(k_lo + 2, n_pix) <= 5 and t + 1 <= 5
    low5 = np.empty(5)
    for i0 in range(start, stop, _LANES):
        nl = min(_LANES, stop - i0)
        for b in range(nl):
            _next_profile(img, i0 + b, start, h, median, flip, acc, buf, rows[b])
        if lanes and t > 0:
            for b in range(nl):
                for j in range(n_pix):
                    cols[j, b] = rows[b, j]
            _extremes5_lanes(cols, nl, low, high)
        for b in range(nl):
            if lanes and t == 0:  # peak = the maximum (default): order statistics in registers
                peak = _low5_max(rows[b], low5)
                base = _lerp(low5[k_lo], low5[k_lo + 1] if g_lo > 0.0 else low5[k_lo], g_lo)
            elif lanes:
                base = _lerp(low[k_lo, b], low[k_lo + 1, b] if g_lo > 0.0 else low[k_lo, b], g_lo)
                peak = _lerp(high[t, b], high[t - 1, b] if g_hi > 0.0 else high[t, b], g_hi)
            else:
                base, peak = _two_percentiles(rows[b], q_lo, q_hi, scratch)
            k = i0 + b - start
            left[k], right[k], flags[k] = _edges_at(rows[b], base, peak)


# -------------------------------------------------------------------- public wrappers
def all_finite(values: np.ndarray) -> bool:
    """True if no element is NaN or infinite (always for integer and boolean arrays).

    NaN and inf propagate through a sum, so one summing pass (no temporary array) decides;
    only when the sum is not finite (which finite values near 1e308 can also cause) are the
    elements tested one by one.
    """
    if values.dtype.kind in "biu":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):
            return True
    return bool(np.isfinite(values).all())


def _prepare(image, window_rows, binning, polarity, start, stop, min_pixels, check_finite=True):
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
    h = int(window_rows) // 2
    first_read = max((start // _ANCHOR) * _ANCHOR - h, 0)  # only the lines this call reads
    if check_finite and not all_finite(img[first_read:stop + h]):
        raise ValueError("image holds NaN or infinite pixels; replace them (np.nan_to_num) or crop")
    img = np.ascontiguousarray(img, dtype=np.float64)
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


def _stride(stride):
    if isinstance(stride, bool) or not (isinstance(stride, (int, np.integer)) and stride >= 1):
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    return int(stride)


def halfmax_edges(image, *, window_rows=5, binning="mean", polarity="bright",
                  baseline_percentile=10.0, peak_percentile=100.0, start=0, stop=None, check_finite=True,
                  stride=1, threshold_value=None):
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
        Percentiles (0-100) of the profile taken as background and vessel level
        (default 10 and 100: the peak is the binned profile's maximum).
    check_finite : bool, keyword-only
        Test the lines read for NaN/inf and raise ValueError (default). False skips the
        test for a block the caller has already checked; NaN/inf pixels then give
        undefined edges.
    stride : int, keyword-only
        Analyse only the lines whose index is a multiple of ``stride`` (default 1: all).
    threshold_value : float or None, keyword-only
        An absolute threshold (image intensity) instead of the half maximum: the lumen is
        where the binned profile is >= it (``"bright"``) or <= it (``"dark"``); edges with
        no crossing inside the line are NaN and flagged, as are both when no pixel is in
        the lumen. The percentiles are then not used.

    Returns
    -------
    left_px, right_px : ndarray, float64, shape (number of analysed lines,)
        Edge positions in pixels (pixel j centred at j); diameter = right - left.
    flags : ndarray, int32
        Bit mask, see :data:`FLAG_BITS`.
    """
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 3, check_finite)
    q_lo, q_hi = _check_percentiles(baseline_percentile, peak_percentile)
    stride = _stride(stride)
    if stride == 1 and threshold_value is None:  # the default path: lanes of lines, no per-line branches
        n = stop - start
        left, right, flags = np.empty(n), np.empty(n), np.empty(n, np.int32)
        _halfmax_lines(img, start, stop, h, median, flip, q_lo, q_hi, left, right, flags)
        return left, right, flags
    absolute = threshold_value is not None
    thr = float(threshold_value) if absolute else 0.0
    if not np.isfinite(thr):
        raise ValueError(f"threshold_value must be finite, got {threshold_value!r}")
    n = analysed_lines(start, stop, stride)[1]
    left, right, flags = np.empty(n), np.empty(n), np.empty(n, np.int32)
    threshold_lines(img, start, stop, stride, h, median, flip, absolute, -thr if flip else thr,
                    q_lo, q_hi, left, right, flags)
    return left, right, flags


def fit_edges(image, *, window_rows=5, binning="mean", polarity="bright",
              baseline_percentile=10.0, peak_percentile=100.0, max_iter=50, min_r2=0.9,
              start=0, stop=None, check_finite=True, stride=1):
    """Vessel edges of each line from a least-squares fit of a blurred top-hat.

    Model (x in pixels): ``f(x) = b + a/2 * (erf((x-l)/(sqrt2 s)) - erf((x-r)/(sqrt2 s)))``,
    a lumen ``[l, r]`` of level ``a`` above background ``b`` seen through a Gaussian PSF of
    sigma ``s``. Levenberg-Marquardt starts from the half-maximum edges.

    Parameters
    ----------
    image, window_rows, binning, polarity, baseline_percentile, peak_percentile, start, stop, check_finite, stride
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
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 6, check_finite)
    q_lo, q_hi = _check_percentiles(baseline_percentile, peak_percentile)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    stride = _stride(stride)
    n = analysed_lines(start, stop, stride)[1]
    left, right, r2, flags = np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.int32)
    fit_lines(img, start, stop, stride, h, median, flip, q_lo, q_hi, int(max_iter), float(min_r2),
              left, right, r2, flags)
    return left, right, r2, flags


def gaussian_weights(sigma_px):
    """Normalised Gaussian weights of sigma ``sigma_px`` (pixels), radius ``int(4 sigma + 0.5)``.

    The radius is scipy.ndimage's (``truncate=4``); ``sigma_px = 0`` gives ``[1.0]``.
    """
    sigma = float(sigma_px)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma_px must be a finite number >= 0, got {sigma_px!r}")
    radius = int(4.0 * sigma + 0.5)
    if radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def gradient_edges(image, *, window_rows=5, binning="mean", polarity="bright", sigma_px=1.5, min_strength=0.0,
                   stride=1, start=0, stop=None, check_finite=True):
    """Vessel edges at the steepest rise and fall of each smoothed, binned line.

    The binned profile (``polarity="dark"`` negated) is smoothed by a Gaussian of sigma
    ``sigma_px`` (end pixels repeated), differentiated by central differences (one-sided
    at the ends); the left edge is at the derivative's maximum, the right edge at its
    minimum, each refined to sub-pixel by a parabola through the logarithms of the three
    derivative samples around it (through the samples if a neighbour changes sign).

    Parameters
    ----------
    image, window_rows, binning, polarity, start, stop, check_finite, stride
        As in :func:`halfmax_edges`; at least 3 pixels per line.
    sigma_px : float, keyword-only
        Smoothing sigma in pixels (>= 0; 0 = none).
    min_strength : float, keyword-only
        Edges whose derivative peak (intensity per pixel, of the smoothed binned profile)
        is below this are NaN and flagged ``WEAK_EDGE``.

    Returns
    -------
    left_px, right_px : ndarray, float64
        Edges in pixels; NaN (flagged) when the extremum lies at an end pixel of the line
        or the profile never rises (falls), when the profile beyond the edge does not fall
        to background (at least half the contrast below the lumen), when the steepest fall
        comes before the steepest rise (both), when the profile is flat (both,
        ``NO_CONTRAST``), or when the edge is weak (``WEAK_EDGE``).
    left_strength, right_strength : ndarray, float64
        Height of the derivative's maximum and depth of its minimum (intensity per pixel).
    flags : ndarray, int32
    """
    img, h, median, flip, start, stop = _prepare(image, window_rows, binning, polarity, start, stop, 3, check_finite)
    weights = gaussian_weights(sigma_px)
    min_strength = float(min_strength)
    if not (np.isfinite(min_strength) and min_strength >= 0):
        raise ValueError(f"min_strength must be a finite number >= 0, got {min_strength!r}")
    stride = _stride(stride)
    n = analysed_lines(start, stop, stride)[1]
    out = [np.empty(n) for _ in range(4)]
    flags = np.empty(n, np.int32)
    gradient_lines(img, start, stop, stride, h, median, flip, weights, min_strength, *out, flags)
    return (*out, flags)
