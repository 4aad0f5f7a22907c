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
    left, right, flags = (np.array(v) for v in zip(*res, strict=True))
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


def naive_gradient_profile(profile, sigma, min_strength=0.0):
    """(left, right, flags) of gradient edges of one profile, with scipy and numpy.

    Smooth (scipy gaussian_filter1d, mode 'nearest', truncate 4), np.gradient, steepest
    rise / fall, log-parabola vertex (parabola if a neighbour is not positive), and the
    rule that the profile beyond each edge must fall at least half the contrast.
    """
    from scipy.ndimage import gaussian_filter1d

    p = np.asarray(profile, dtype=float)
    s = gaussian_filter1d(p, sigma, mode="nearest", truncate=4.0) if sigma > 0 else p.copy()
    d = np.gradient(s)
    kl, kr = int(np.argmax(d)), int(np.argmin(d))
    if not (d[kl] > 0 or -d[kr] > 0):
        return math.nan, math.nan, 4 | 1 | 2

    def vertex(a, b, c):
        if a > 0 and c > 0:
            a, b, c = math.log(a), math.log(b), math.log(c)
        den = a - 2 * b + c
        return min(max(0.5 * (a - c) / den, -0.5), 0.5) if den < 0 else 0.0

    n = len(p)
    has_l = d[kl] > 0 and 0 < kl < n - 1
    has_r = -d[kr] > 0 and 0 < kr < n - 1
    if has_l and has_r and kl >= kr:
        return math.nan, math.nan, 1 | 2
    inside = s[(kl if has_l else 0):(kr if has_r else n - 1) + 1].max()
    out_l = s[:kl + 1].min() if has_l else inside
    out_r = s[kr:].min() if has_r else inside
    half = 0.5 * (inside - min(out_l, out_r))
    flags, left, right = 0, math.nan, math.nan
    if not (has_l and inside - out_l >= half):
        flags |= 1
    elif d[kl] < min_strength:
        flags |= 32
    else:
        left = kl + vertex(d[kl - 1], d[kl], d[kl + 1])
    if not (has_r and inside - out_r >= half):
        flags |= 2
    elif -d[kr] < min_strength:
        flags |= 32
    else:
        right = kr + vertex(-d[kr - 1], -d[kr], -d[kr + 1])
    return left, right, flags


def naive_threshold_profile(profile, thr):
    """(left, right, flags): linear-interpolated crossings of a fixed threshold."""
    above = [j for j in range(len(profile)) if profile[j] >= thr]
    if not above:
        return math.nan, math.nan, 1 | 2
    first, last = above[0], above[-1]
    left = right = math.nan
    flags = 0
    if first == 0:
        flags |= 1
    else:
        left = first - 1 + (thr - profile[first - 1]) / (profile[first] - profile[first - 1])
    if last == len(profile) - 1:
        flags |= 2
    else:
        right = last + (profile[last] - thr) / (profile[last] - profile[last + 1])
    return left, right, flags


def naive_motion_gate(left, right, edge, diam, centre):
    """Motion gating by explicit Python loops: (left, right, rejected) after gating."""
    left, right = list(left), list(right)
    rejected = [False] * len(left)
    ref = {"l": None, "r": None, "b": None}  # (value(s), line) of the last accepted
    for i in range(len(left)):
        lv, rv = left[i], right[i]
        if not math.isnan(lv) and ref["l"] and abs(lv - ref["l"][0]) > edge * (i - ref["l"][1]):
            lv, rejected[i] = math.nan, True
        if not math.isnan(rv) and ref["r"] and abs(rv - ref["r"][0]) > edge * (i - ref["r"][1]):
            rv, rejected[i] = math.nan, True
        if not math.isnan(lv) and not math.isnan(rv) and ref["b"]:
            (d0, c0), g = ref["b"][0], i - ref["b"][1]
            if abs(rv - lv - d0) > diam * g or abs((lv + rv) / 2 - c0) > centre * g:
                lv = rv = math.nan
                rejected[i] = True
        left[i], right[i] = lv, rv
        if not math.isnan(lv):
            ref["l"] = (lv, i)
        if not math.isnan(rv):
            ref["r"] = (rv, i)
        if not math.isnan(lv) and not math.isnan(rv):
            ref["b"] = ((rv - lv, (lv + rv) / 2), i)
    return np.array(left), np.array(right), np.array(rejected)
