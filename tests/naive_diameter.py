"""Slow, obviously-correct references for the diameter kernels (explicit loops, numpy, scipy).

Conventions as in hpcacq.kernels.diameter: image (n_lines, n_pixels), pixel j centred at j,
window of ``window_rows`` lines centred on each line and clipped at the image ends.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import erf

LEFT_EDGE_MISSING, RIGHT_EDGE_MISSING, NO_CONTRAST = 1, 2, 4


def naive_bin(image, window_rows=5, binning="mean", polarity="bright"):
    """Binned profile of every line: mean or median of the clipped window of lines."""
    image = np.asarray(image, dtype=float)
    n = image.shape[0]
    h = window_rows // 2
    out = np.empty_like(image)
    for i in range(n):
        rows = image[max(i - h, 0):min(i + h + 1, n)]
        out[i] = rows.mean(axis=0) if binning == "mean" else np.median(rows, axis=0)
    return -out if polarity == "dark" else out


def naive_halfmax_profile(profile, q_lo=10.0, q_hi=100.0):
    """(left, right, flags) of one profile, walking the pixels one by one."""
    base, peak = np.percentile(profile, [q_lo, q_hi])
    if not peak > base:
        return math.nan, math.nan, NO_CONTRAST | LEFT_EDGE_MISSING | RIGHT_EDGE_MISSING
    thr = base + 0.5 * (peak - base)
    above = [j for j in range(len(profile)) if profile[j] >= thr]
    first, last = above[0], above[-1]
    left = right = math.nan
    flags = 0
    if first == 0:
        flags |= LEFT_EDGE_MISSING
    else:
        lo, hi = profile[first - 1], profile[first]
        left = (first - 1) + (thr - lo) / (hi - lo)
    if last == len(profile) - 1:
        flags |= RIGHT_EDGE_MISSING
    else:
        hi, lo = profile[last], profile[last + 1]
        right = last + (hi - thr) / (hi - lo)
    return left, right, flags


def naive_halfmax(image, window_rows=5, binning="mean", polarity="bright", q_lo=10.0, q_hi=100.0):
    """(left, right, flags) arrays for every line."""
    prof = naive_bin(image, window_rows, binning, polarity)
    res = [naive_halfmax_profile(p, q_lo, q_hi) for p in prof]
    left, right, flags = (np.array(v) for v in zip(*res))
    return left.astype(float), right.astype(float), flags.astype(int)


def whole_pixel_diameter(profile, q_lo=10.0, q_hi=90.0):
    """kymflow-style diameter: last minus first pixel at or above the half-maximum threshold."""
    base, peak = np.percentile(profile, [q_lo, q_hi])
    thr = base + 0.5 * (peak - base)
    above = np.nonzero(profile >= thr)[0]
    if above[0] == 0 or above[-1] == len(profile) - 1:
        return math.nan
    return float(above[-1] - above[0])


def tophat_model(x, b, a, left, right, sigma):
    """Top-hat lumen [left, right] of height a over background b, blurred by a Gaussian."""
    s = math.sqrt(2.0) * sigma
    return b + 0.5 * a * (erf((x - left) / s) - erf((x - right) / s))


def reference_fit(profile, p0):
    """scipy's curve_fit of the top-hat model from p0 = (b, a, l, r, s): (params, r2)."""
    x = np.arange(len(profile), dtype=float)
    popt, _ = curve_fit(tophat_model, x, profile, p0=p0, method="lm", maxfev=20000,
                        xtol=1e-14, ftol=1e-14)
    res = profile - tophat_model(x, *popt)
    r2 = 1.0 - np.sum(res ** 2) / np.sum((profile - profile.mean()) ** 2)
    return popt, r2
