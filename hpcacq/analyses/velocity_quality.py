"""Static background removal and the per-window / per-file quality of a Radon velocity.

Windows are those of :mod:`hpcacq.analyses.velocity`: ``(n_lines, n_pixels)`` blocks,
axis 0 time, axis 1 space. The rules, their thresholds and the measurements behind them
are in docs/QUALITY.md.

Flags (bits of the ``flags`` column); a set flag means "do not use this value", and the
window is NaN in ``velocity_clean_mm_s``:

``theta_90`` (1)
    Best angle 90 degrees: streaks along space, velocity undefined (NaN).
``low_separability`` (2)
    The best angle barely stands out from the others (separability below
    ``min_separability``): no streak pattern to measure.
``clean_rejected`` (4)
    A finite, otherwise trusted value removed as an outlier by the cleaning.
``theta_0`` (8)
    Best angle 0 degrees (streaks along time: nothing moves) and not confirmed as a stall;
    kymflow leaves these windows blank.
``static_background`` (16)
    The plain search locked on structure that does not move (angle 0); after the static
    background was removed the window still shows no clear streaks.
``angle_edge`` (32)
    Best angle within ``edge_deg`` of 90 degrees: streaks almost along space, the speed
    is at the limit the window can resolve.

A window whose plain angle is 0 but which, after background removal, still has its best
angle at 0 with separability >= ``stall_separability`` is a *stall* candidate (cells that
stopped are visible once the static background is gone); candidates in a run lasting at
least ``stall_min_s`` are stalls: velocity 0, trusted, no flag. Shorter runs (on very
narrow lines a few windows of moving cells can look static) are flagged ``theta_0``.
"""

from __future__ import annotations

import math

import numpy as np

from .velocity_options import BACKGROUND_MODES

__all__ = [
    "THETA_90", "LOW_SEPARABILITY", "CLEAN_REJECTED", "THETA_0", "STATIC_BACKGROUND", "ANGLE_EDGE",
    "FLAG_BITS", "BACKGROUND_MODES", "remove_background", "window_flags", "trust_summary", "quality_summary",
    "file_warnings", "median_px_per_line", "NARROW_PIXELS", "ANGLE_STEP_DEG", "angle_step_fraction",
]

THETA_90 = 1
LOW_SEPARABILITY = 2
CLEAN_REJECTED = 4
THETA_0 = 8
STATIC_BACKGROUND = 16
ANGLE_EDGE = 32
FLAG_BITS = {"theta_90": THETA_90, "low_separability": LOW_SEPARABILITY, "clean_rejected": CLEAN_REJECTED,
             "theta_0": THETA_0, "static_background": STATIC_BACKGROUND, "angle_edge": ANGLE_EDGE}
# a file is doubtful when fewer than this fraction of its windows are trusted
MIN_TRUSTED_FRACTION = 0.5
# ... or when more than this fraction of its windows read 0 (static) without being stalls
MAX_THETA0_FRACTION = 0.25
# ... or when neighbouring windows disagree this much (median |v - local median| / |local median|)
MAX_DISPERSION = 0.5
# lines of at most this many pixels get a second search with windows 4 times longer: there the
# Radon angle depends on the window length (7-pixel lines: up to 18 % on real files, docs/QUALITY.md)
NARROW_PIXELS = 12
# ... and the file is doubtful when it differs from that, or from the line cross-correlation
# estimator (narrow_velocity.lag_velocity), by more than this
MAX_WINDOW_DEPENDENCE = 0.10
# a file is doubtful when its streaks cross the line in fewer lines than this (median): the
# speed may be aliased. Measured crossings saturate near 2.2 lines when the true one is 1.5-1.9
# (synthetic dense cells), so an aliased file cannot be told from one at the limit by the Radon
# search alone; on narrow lines the line cross-correlation estimator is a second opinion that
# clears the doubt when it agrees (docs/QUALITY.md)
MIN_CROSSING_LINES = 2.5
#: The fine angle grid of the search (hpcacq.kernels.radon_table: GRID_PER_DEG = 4 steps per
#: degree, kymflow's); summary["angle_step_fraction"] is one step of it at the headline speed.
ANGLE_STEP_DEG = 0.25


FLAT_FLOOR = 0.1  # the divisor of the flat field is at least this fraction of the median background


_SLICE_LINES = 65536  # lines per slice of the passes over the block (bounds temporaries)


def _chunk_sums(block: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chunk of ``chunk`` lines: column sums, column sums of squares, line counts."""
    n = block.shape[0]
    starts = np.arange(0, n, chunk)
    s1 = np.add.reduceat(block, starts, axis=0)
    s2 = np.empty_like(s1)
    per = max(1, _SLICE_LINES // chunk)
    for k0 in range(0, len(starts), per):
        r0, r1 = starts[k0], min(n, starts[min(k0 + per, len(starts)) - 1] + chunk)
        part = block[r0:r1]
        s2[k0:k0 + per] = np.add.reduceat(part * part, starts[k0:k0 + per] - r0, axis=0)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    return s1, s2, counts


def remove_background(block: np.ndarray, *, lines: int, residual: bool = True):
    """The block with its static background removed: ``(block - bg) / bg`` (flat field).

    ``bg`` is each column's running mean over about ``lines`` lines, computed on chunks
    of ``lines // 16`` lines (the background changes slowly; one pass over the block);
    the divisor is at least ``FLAT_FLOOR`` x the median |bg| (dark columns are not
    amplified into noise).

    Parameters
    ----------
    block : ndarray, shape (n_lines, n_pixels)
        Float block, axis 0 time.
    lines : int
        Length of the running mean in lines; 0 or a value >= n_lines uses each column's
        mean over the whole block.
    residual : bool
        False: only the static fraction is computed (no block-sized array).

    Returns
    -------
    residual : ndarray of float64, shape (n_lines, n_pixels), or None
        The flat-fielded block (dimensionless, about 0).
    static : float
        Fraction of the block's variance held by the background,
        ``1 - var(block - bg) / var(block)`` (0 .. 1; 0 for a constant block).
    """
    n = block.shape[0]
    whole = lines <= 0 or lines >= n
    chunk = n if whole else max(1, lines // 16)
    s1, s2, counts = _chunk_sums(block, chunk)
    if whole:
        bg = s1 / counts[:, None]
    else:
        half = 8  # 17 chunks: about `lines` lines centred on each chunk
        c1 = np.concatenate((np.zeros((1, s1.shape[1])), np.cumsum(s1, axis=0)))
        cn = np.concatenate(([0.0], np.cumsum(counts)))
        k = np.arange(len(counts))
        lo, hi = np.clip(k - half, 0, len(counts)), np.clip(k + half + 1, 0, len(counts))
        bg = (c1[hi] - c1[lo]) / (cn[hi] - cn[lo])[:, None]
    total_n = float(n * block.shape[1])
    mean = s1.sum() / total_n
    total = s2.sum() / total_n - mean * mean
    res_mean = (s1 - counts[:, None] * bg).sum() / total_n
    res_var = (s2 - 2 * bg * s1 + counts[:, None] * bg * bg).sum() / total_n - res_mean * res_mean
    static = 0.0 if total <= 0 else float(min(1.0, max(0.0, 1.0 - res_var / total)))
    if not residual:
        return None, static
    floor = max(float(np.median(np.abs(bg))) * FLAT_FLOOR, np.finfo(np.float64).tiny)
    scale = np.maximum(np.abs(bg), floor)
    out = np.empty(block.shape)
    for r0 in range(0, n, _SLICE_LINES):
        r1 = min(n, r0 + _SLICE_LINES)
        which = np.arange(r0, r1) // chunk
        np.subtract(block[r0:r1], bg[which], out=out[r0:r1])
        out[r0:r1] /= scale[which]
    return out, static


def _long_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """``mask`` keeping only runs of at least ``min_run`` consecutive True values."""
    if min_run <= 1 or not mask.any():
        return mask.copy()
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros_like(mask)
    for a, b in zip(starts, stops, strict=True):  # one iteration per run of candidates, not per window
        if b - a >= min_run:
            out[a:b] = True
    return out


def window_flags(theta_deg, separability, *, plain_zero, reanalysed, min_separability: float,
                 stall_separability: float, edge_deg: float, stall_windows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Quality flags of each window before cleaning, and which windows are stalls.

    Parameters
    ----------
    theta_deg, separability : ndarray, shape (n_windows,)
        Final angle (deg) and separability of each window.
    plain_zero : ndarray of bool
        The plain search (no background removal) gave angle 0.
    reanalysed : ndarray of bool
        The final angle comes from the background-removed block.
    min_separability, stall_separability, edge_deg : float
        Thresholds (see the module docstring).
    stall_windows : int
        A stall needs at least this many consecutive candidate windows.

    Returns
    -------
    flags : ndarray of int32
    stall : ndarray of bool
        Trusted zero velocity (a stall).
    """
    theta = np.asarray(theta_deg, dtype=np.float64)
    sep = np.asarray(separability, dtype=np.float64)
    mod = np.mod(theta, 180.0)
    at_90 = mod == 90.0
    at_0 = mod == 0.0
    strong = sep >= stall_separability  # False for NaN
    stall = _long_runs(at_0 & reanalysed & strong, stall_windows)
    flags = np.zeros(theta.shape, dtype=np.int32)
    flags[at_90] |= THETA_90
    flags[at_0 & ~stall] |= THETA_0
    flags[~(sep >= min_separability) & ~stall] |= LOW_SEPARABILITY
    flags[plain_zero & reanalysed & ~(sep >= min_separability) & ~stall] |= STATIC_BACKGROUND
    flags[~at_90 & (np.abs(mod - 90.0) <= edge_deg)] |= ANGLE_EDGE
    return flags, stall


def trust_summary(flags: np.ndarray, flag_bits: dict[str, int], velocity: np.ndarray,
                  velocity_clean: np.ndarray) -> dict[str, float]:
    """The quality scalars every velocity analysis stores (radon_velocity, line_velocity).

    ``fraction_trusted`` (no flag, finite value), ``fraction_<flag>`` for each of
    ``flag_bits``, ``fraction_nan`` (of ``velocity_clean``), the headline
    ``median_velocity_mm_s`` (median of the trusted windows) and
    ``median_velocity_all_mm_s`` (of every finite window); NaN for an empty file.
    """
    n = len(flags)
    trusted = (flags == 0) & np.isfinite(velocity)
    out = {"fraction_trusted": float(trusted.mean()) if n else math.nan}
    for name, bit in flag_bits.items():
        out[f"fraction_{name}"] = float(((flags & bit) != 0).mean()) if n else math.nan
    out["fraction_nan"] = float((~np.isfinite(velocity_clean)).mean()) if n else math.nan
    good = velocity[trusted]
    out["median_velocity_mm_s"] = float(np.median(good)) if good.size else math.nan
    finite = velocity[np.isfinite(velocity)]
    out["median_velocity_all_mm_s"] = float(np.median(finite)) if finite.size else math.nan
    return out


def quality_summary(flags: np.ndarray, velocity_clean: np.ndarray, velocity: np.ndarray,
                    theta_deg: np.ndarray, stall: np.ndarray) -> dict[str, float]:
    """Per-file quality scalars: :func:`trust_summary`, stalls and the median speed of the trusted windows."""
    out = trust_summary(flags, FLAG_BITS, velocity, velocity_clean)
    n = len(flags)
    out["fraction_stall"] = float(stall.mean()) if n else math.nan
    good = velocity[(flags == 0) & np.isfinite(velocity)]
    out["median_abs_velocity_mm_s"] = float(np.median(np.abs(good))) if good.size else math.nan
    out["fraction_plain_theta_0"] = math.nan  # filled by the caller
    return out


def angle_step_fraction(px_per_line: float, step_deg: float) -> float:
    """How much one step of the angle grid changes a speed of ``px_per_line``, relative.

    The fine search reports angles on a ``step_deg`` grid, so a speed ``v`` is resolved in
    steps of ``tan(atan|v| + step) / |v| - 1`` (about ``0.0044 (1 + v^2) / |v|`` at 0.25
    degrees: 1.1 % at 2 px/line, 4.6 % at 10). NaN for a speed of 0 or not finite, inf
    when the next step reaches 90 degrees.

    >>> round(angle_step_fraction(10.0, 0.25), 3)
    0.046
    """
    speed = abs(float(px_per_line))
    if not math.isfinite(speed) or speed == 0.0:
        return math.nan
    theta = math.atan(speed) + math.radians(step_deg)
    return math.tan(theta) / speed - 1.0 if theta < math.pi / 2 else math.inf


def median_px_per_line(theta_deg, separability, *, min_separability: float) -> float:
    """Median speed, pixels per line, of the windows with a measurable angle.

    Windows at exactly 0 or 90 degrees or below ``min_separability`` are left out; NaN
    when none is left.
    """
    theta = np.asarray(theta_deg, dtype=np.float64)
    mod = np.mod(theta, 180.0)
    ok = (mod != 0.0) & (mod != 90.0) & (np.asarray(separability) >= min_separability)
    return float(np.median(np.tan(np.deg2rad(theta[ok])))) if ok.any() else math.nan


def file_warnings(summary: dict[str, float], *, score: str = "variance") -> list[str]:
    """Why a file's velocity as a whole is doubtful (empty when it can be trusted)."""
    out = []
    trusted = summary.get("fraction_trusted", math.nan)
    if not (trusted >= MIN_TRUSTED_FRACTION):
        worst = max((k for k in summary if k.startswith("fraction_") and k[9:] in FLAG_BITS),
                    key=lambda k: summary[k] if math.isfinite(summary[k]) else -1.0, default=None)
        why = f", most often {worst[9:]} ({summary[worst]:.0%})" if worst else ""
        out.append(f"only {trusted:.0%} of velocity windows trusted{why}")
    theta0 = summary.get("fraction_theta_0", 0.0)
    if theta0 > MAX_THETA0_FRACTION:
        out.append(f"{theta0:.0%} of windows read 0 mm/s on static structure (theta = 0)")
    dispersion = summary.get("local_dispersion", math.nan)
    if dispersion > MAX_DISPERSION:
        out.append(f"neighbouring windows disagree by {dispersion:.0%} (median): the angles look like "
                   f"noise, no streaks to measure")
    if summary.get("median_velocity_mm_s") == 0.0 and summary.get("fraction_stall", 0.0) < 0.5:
        out.append("median velocity pinned at 0 mm/s")
    crossing = summary.get("median_crossing_lines", math.nan)
    confirmed = abs(summary.get("lag_ratio", math.nan)) <= MAX_WINDOW_DEPENDENCE  # another method agrees
    if crossing < MIN_CROSSING_LINES and not confirmed:
        out.append(f"streaks cross the line in {crossing:.1f} lines (median): at the sampling limit, the speed "
                   f"may be aliased (a faster true speed can read like this); check on a wider ROI, or scan a longer stretch of the vessel or at a higher line rate")
    dependence = summary.get("window_dependence", math.nan)
    lag = summary.get("lag_ratio", math.nan)
    if abs(dependence) > MAX_WINDOW_DEPENDENCE or abs(lag) > MAX_WINDOW_DEPENDENCE:
        parts = []
        if math.isfinite(dependence):
            parts.append(f"{dependence:+.0%} with windows of {summary.get('long_window_lines', math.nan):.0f} lines")
        if math.isfinite(lag):
            other = summary.get("line_correlation_mm_s", math.nan)
            parts.append(f"{lag:+.0%} against line cross-correlation over the same windows (its trusted windows "
                         f"read {other:.3g} mm/s)")
        out.append(f"on {summary.get('n_pixels', math.nan):.0f}-pixel lines the Radon velocity is uncertain: "
                   f"{', '.join(parts)} (docs/QUALITY.md, narrow lines"
                   + ("; compare --analysis line_velocity and score=balanced)" if score != "balanced" else ")"))
    return out
