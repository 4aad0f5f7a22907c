"""Cleaning a per-window velocity trace: remove outliers, keep physiology.

A trace is a 1-D array of velocities (mm/s) of consecutive windows; NaN marks a window
without a usable value and stays NaN. Three recipes, chosen by name:

``"local"`` (default)
    A window is an outlier when it is farther than ``n_mad`` robust standard deviations
    (1.4826 x the median absolute deviation) from the median of the ``span`` windows
    centred on it (NaN ignored); outliers become NaN, every other value is kept as is.
    The rule is local, so a slow change of speed (a slow-down over many windows) moves
    the median with it and is kept; only values that disagree with their neighbours go.
    The MAD has a floor of ``floor`` x |local median| so that a very steady trace does
    not lose windows to tiny deviations.
``"kymflow"``
    kymflow's current recipe: values outside ``mean +- n_sd * SD`` of the whole trace
    (NaN ignored, population SD) become NaN, then a 5-point median filter zero-padded at
    the ends like ``scipy.signal.medfilt`` (NaN ignored; NaN where all 5 are NaN).
    Removed values stay NaN.
``"kymflow_3pt"``
    kymflow's older recipe: the same +-n_sd SD cut, then a 3-point median filter.
"""

from __future__ import annotations

import math

import numpy as np

from .velocity_options import CLEAN_METHODS

__all__ = ["CLEAN_METHODS", "clean_trace", "clean_local", "clean_kymflow", "local_median", "local_dispersion", "span_windows"]


def _nan_medfilt(v: np.ndarray, size: int) -> np.ndarray:
    """Running median of ``size`` points, zero-padded at the ends like scipy.signal.medfilt,
    ignoring NaN; NaN where every point is NaN."""
    half = size // 2
    padded = np.concatenate((np.zeros(half), v, np.zeros(half)))
    stack = np.lib.stride_tricks.sliding_window_view(padded, size)
    out = np.full(v.shape, np.nan)
    has = np.isfinite(stack).any(axis=1)
    if has.any():
        out[has] = np.nanmedian(stack[has], axis=1)
    return out


def clean_kymflow(velocity_mm_s, *, n_sd: float = 2.0, median_points: int = 5) -> np.ndarray:
    """kymflow's cleaning, NaN-aware: a +-n_sd SD cut, then a ``median_points`` median.

    ``median_points=5`` is kymflow's current recipe, ``3`` its older one.
    """
    v = np.asarray(velocity_mm_s, dtype=np.float64).copy()
    finite = np.isfinite(v)
    if finite.sum() >= 2:
        mean, sd = np.mean(v[finite]), np.std(v[finite])
        v[finite & (np.abs(v - mean) > n_sd * sd)] = np.nan
    keep = np.isfinite(v)
    out = _nan_medfilt(v, median_points) if v.size else v
    out[~keep] = np.nan
    return out


def _rolling_nanmedian(v: np.ndarray, span: int) -> np.ndarray:
    half = span // 2
    padded = np.concatenate((np.full(half, np.nan), v, np.full(half, np.nan)))
    stack = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    out = np.full(v.shape, np.nan)
    has = np.isfinite(stack).sum(axis=1) >= 3
    if has.any():
        out[has] = np.nanmedian(stack[has], axis=1)
    return out


def clean_local(velocity_mm_s, *, span: int = 31, n_mad: float = 4.0, floor: float = 0.05) -> np.ndarray:
    """Local robust outlier removal (see the module docstring); values kept are unchanged.

    Parameters
    ----------
    velocity_mm_s : array_like, shape (n_windows,)
        The trace, NaN for windows without a value.
    span : int, keyword-only
        Windows in the rolling neighbourhood (odd; even values are rounded up).
    n_mad : float, keyword-only
        Cut in robust standard deviations (1.4826 x MAD).
    floor : float, keyword-only
        Lower bound of the robust SD as a fraction of |local median|.

    Returns
    -------
    ndarray of float64, shape (n_windows,)
        The trace with outliers (and the input's NaN) as NaN.
    """
    v = np.asarray(velocity_mm_s, dtype=np.float64).copy()
    if v.size == 0:
        return v
    med = local_median(v, span=span)
    dev = np.abs(v - med)
    mad = local_median(dev, span=span)
    robust_sd = np.maximum(1.4826 * mad, floor * np.abs(med))
    with np.errstate(invalid="ignore"):
        out_mask = np.isfinite(med) & (dev > n_mad * robust_sd)
    v[out_mask] = np.nan
    return v


def local_median(values, *, span: int) -> np.ndarray:
    """Median of the ``span`` values centred on each one (NaN ignored; NaN where fewer
    than 3 are finite). ``span`` is made odd."""
    v = np.asarray(values, dtype=np.float64)
    span = int(span) | 1
    # slices keep the (n, span) view that nanmedian copies small in memory
    return np.concatenate([_rolling_nanmedian_slice(v, span, s, min(s + 65536, v.size))
                           for s in range(0, v.size, 65536)]) if v.size else v.copy()


def _rolling_nanmedian_slice(v: np.ndarray, span: int, start: int, stop: int) -> np.ndarray:
    half = span // 2
    lo, hi = max(0, start - half), min(v.size, stop + half)
    part = _rolling_nanmedian(v[lo:hi], span)
    return part[start - lo:start - lo + (stop - start)]


def clean_trace(velocity_mm_s, *, method: str = "local", n_sd: float = 2.0, span: int = 31,
                n_mad: float = 4.0) -> np.ndarray:
    """Clean a velocity trace by the recipe ``method`` (one of :data:`CLEAN_METHODS`)."""
    if method == "local":
        return clean_local(velocity_mm_s, span=span, n_mad=n_mad)
    if method == "kymflow":
        return clean_kymflow(velocity_mm_s, n_sd=n_sd, median_points=5)
    if method == "kymflow_3pt":
        return clean_kymflow(velocity_mm_s, n_sd=n_sd, median_points=3)
    raise ValueError(f"clean method must be one of {', '.join(CLEAN_METHODS)}, got {method!r}")


def local_dispersion(velocity_clean, *, span: int, floor: float = 0.0) -> float:
    """Median of |v - local median| / |local median| over the windows with a value.

    About 0.05-0.2 on real recordings; near or above 1 when the angles are noise. Windows
    whose local median is at most ``floor`` in magnitude (stopped flow, where a ratio to
    about 0 means nothing) are left out; with ``floor=0`` only exact zeros are.
    """
    v = np.asarray(velocity_clean, dtype=np.float64)
    med = local_median(v, span=span)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(np.abs(med) > floor, np.abs(v - med) / np.abs(med), np.nan)
    rel = rel[np.isfinite(rel)]
    return float(np.median(rel)) if rel.size else math.nan


def span_windows(span_s: float, step_lines: int, dt_s: float) -> int:
    """Windows within ``span_s`` seconds of windows ``step_lines`` lines apart (at least 7):
    the neighbourhood of the local cleaning rule and of :func:`local_dispersion`."""
    return max(7, int(round(span_s / (step_lines * dt_s))))
