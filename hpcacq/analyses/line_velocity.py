"""Velocity of (narrow) line scans by multi-lag line cross-correlation, as a registered analysis.

An ROI block is ``(n_lines, n_pixels)``: axis 0 time (one row per line, ``dt_s`` seconds
apart), axis 1 space along the vessel (``dx_um`` micrometres per pixel). The windows are
the Radon search's (``window_lines`` lines, one every ``window_lines // 4``; ``time_s`` is
:func:`hpcacq.kernels.windows.window_times_s`), so the two analyses compare row for row.
Each window's speed comes from :func:`hpcacq.analyses.narrow_velocity.lag_estimate`
(the method is described there) after each column's running mean over
``background_lines`` lines is subtracted; ``velocity_mm_s = px_per_line * dx_um / dt_s /
1000``, positive toward increasing pixel index, as ``radon_velocity``.

Use it on narrow lines (7-12 pixels), where the Radon search reads 10-15% slow: on
synthetic 7-pixel lines cut from a wider scan, over static background, the median error of
its trusted windows is 1.4-1.8% at 16-line windows and <= 0.9% from 32 lines on
(tests/test_line_velocity_quality.py). Each window says whether it can be trusted
(``flags``; docs/QUALITY.md, "line_velocity"): ``no_lag`` (no usable lag: NaN; speed beyond
``max_shift_px - 1`` pixels per line), ``weak_correlation`` (lag-1 correlation peak as a
z-score against noise, ``peak_z``, below ``min_peak_z``), ``common_mode`` (the peak rests on
brightness common to whole lines: ``line_centred_z``, the same z-score with each line's mean
subtracted, below 3), ``lags_disagree`` (the lags do not line up on one speed) and
``clean_rejected`` (the local outlier rule of radon_velocity's ``clean="local"``). ``velocity_clean_mm_s`` holds the trusted values; the file's headline is
their median; a file mostly untrusted, or whose neighbouring windows disagree, gets a warning.

The windows are cut into chunks, each computed with the ``select_windows // 2`` windows
either side it needs for its running median of lag-1 peaks, so the answer does not depend
on the chunking beyond rounding (a block of one chunk equals ``lag_velocity`` exactly).
The background step runs once over the whole block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import checks
from ..errors import AnalysisCancelled, InputError
from ..kernels.windows import window_count, window_times_s
from .base import AnalysisResult, real_block, reject_non_finite
from .cleaning import clean_local, local_dispersion, span_windows
from .line_velocity_options import LineVelocityOptions
from .narrow_velocity import LagEstimate, lag_estimate, shift_range_px, subtract_running_mean
from .options import Units, options_from_mapping, stored_params
from .runtime import chunk_bounds, run_chunks
from .velocity_quality import trust_summary

__all__ = ["LineVelocityOptions", "line_velocity", "run_block", "estimate_windows", "window_flags", "file_warnings", "UNITS",
           "FLAG_BITS", "WARMUP", "NO_LAG", "WEAK_CORRELATION", "LAGS_DISAGREE", "CLEAN_REJECTED", "COMMON_MODE",
           "MAX_NAN_FRACTION", "MIN_TRUSTED_FRACTION", "MAX_DISPERSION"]

UNITS = {"time_s": "s", "px_per_line": "px/line", "velocity_mm_s": "mm/s", "velocity_clean_mm_s": "mm/s",
         "peak_z": "1", "line_centred_z": "1", "lags_used": "1", "flags": "1"}
NO_LAG = 1            # no lag usable: the speed is NaN
WEAK_CORRELATION = 2  # lag-1 correlation peak no stronger than noise gives (peak_z < min_peak_z)
LAGS_DISAGREE = 4     # of two or more lags tried, fewer than half put their peak on one speed
CLEAN_REJECTED = 8    # a trusted value the local outlier rule removed (disagrees with its neighbours)
COMMON_MODE = 16      # the correlation stands out only through brightness common to whole lines (flicker)
FLAG_BITS = {"no_lag": NO_LAG, "weak_correlation": WEAK_CORRELATION, "lags_disagree": LAGS_DISAGREE,
             "clean_rejected": CLEAN_REJECTED, "common_mode": COMMON_MODE}
#: ``line_centred_z`` below this (with ``peak_z`` passing) is flagged ``common_mode``; 0 with
#: ``min_peak_z`` = 0. Calibrated in docs/QUALITY.md (line flicker over a cell-free stretch).
MIN_LINE_CENTRED_Z = 3.0
#: One small run compiles (or loads) the kernel of kernels/line_correlation.py (float64 only: one signature).
WARMUP: tuple[dict, ...] = ({},)
#: A file with more NaN windows than this is doubtful (its speed is beyond the measurable limit).
MAX_NAN_FRACTION = 0.5
#: A file with fewer trusted windows than this is doubtful (as radon_velocity's rule).
MIN_TRUSTED_FRACTION = 0.5
#: Neighbouring windows disagreeing by more than this (median relative deviation) look like noise.
MAX_DISPERSION = 0.5
#: Local medians below this speed are stopped flow for the dispersion check (stalls read within
#: 0.03 px/line of 0: a ratio to them is noise).
STOPPED_PX_PER_LINE = 0.1
_CLEAN_MAD = 4.0      # robust SDs of the local outlier rule (radon_velocity's clean_mad default)
_CHUNK_PIXELS = 1 << 21  # pixels per chunk (~16 MB per float64 temporary; ~0.1-0.5 s of work): cancel/progress granularity


def _check_image(image, window_lines: int) -> np.ndarray:
    arr = real_block(image, "line_velocity")
    if arr.shape[0] < window_lines:
        raise InputError(f"the block has {arr.shape[0]} lines but one window needs {window_lines}; "
                         "use a taller ROI or a smaller window_lines (multiple of 4, >= 8)")
    arr = np.asarray(arr, dtype=np.float64)
    reject_non_finite(arr)
    return arr


def estimate_windows(clean: np.ndarray, options: LineVelocityOptions, n_windows: int, *, threads: int = 1,
                     cancel=None, progress=None) -> LagEstimate:
    """:func:`~hpcacq.analyses.narrow_velocity.lag_estimate` of the background-removed block
    ``clean``, chunk by chunk (each chunk with the running-median halo it needs, so the
    answer does not depend on the chunking beyond rounding): memory stays a few chunks of
    about ``_CHUNK_PIXELS`` pixels besides ``clean``. ``threads``, ``cancel`` and
    ``progress`` as :func:`line_velocity`'s."""
    w, step, half = options.window_lines, options.step_lines, options.select_windows // 2

    def work(first: int, stop: int) -> tuple[np.ndarray, ...]:
        k0, k1 = max(0, first - half), min(n_windows, stop + half)
        sub = clean[k0 * step:(k1 - 1) * step + w]  # exactly the lines of windows k0 .. k1 - 1
        est = lag_estimate(sub, window_lines=w, max_shift_px=options.max_shift_px or None,
                           min_overlap_px=options.min_overlap_px, max_lag_lines=options.max_lag_lines,
                           select_windows=options.select_windows)
        return tuple(a[first - k0:stop - k0] for a in est)

    chunk = max(64, _CHUNK_PIXELS // (step * clean.shape[1]))
    parts = run_chunks(work, chunk_bounds(n_windows, chunk), threads=threads, cancel=cancel,
                       progress=progress, what="line_velocity", unit="windows")
    if not parts:
        return LagEstimate(np.empty(0), np.empty(0), np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0))
    return LagEstimate(*(np.concatenate([part[k] for part in parts]) for k in range(5)))


def window_flags(speed: np.ndarray, peak_z: np.ndarray, lags_tried: np.ndarray, lags_kept: np.ndarray,
                 line_centred_z: np.ndarray, *, min_peak_z: float) -> np.ndarray:
    """The ``flags`` of each window before cleaning (``no_lag``, ``weak_correlation``,
    ``lags_disagree``, ``common_mode``; ``clean_rejected`` comes later).

    A window is trusted when none is set: a finite speed, a lag-1 correlation peak of at
    least ``min_peak_z`` (noise-level peaks read random speeds) that still reaches
    ``min(MIN_LINE_CENTRED_Z, min_peak_z)`` once each line's own mean is subtracted
    (``common_mode``: else the peak rests on brightness common to whole lines, as flicker
    makes, or cells filling most of a narrow line; a NaN there is flagged too), and, where
    two or more lags were tried, at least half of them agreeing on one speed (noise puts
    each lag's peak somewhere else). ``min_peak_z`` = 0 disables both significance flags.
    """
    flags = np.zeros(speed.shape, dtype=np.int32)
    flags[~np.isfinite(speed)] |= NO_LAG
    if min_peak_z > 0:  # 0 disables both significance flags
        weak = ~(peak_z >= min_peak_z)
        flags[weak] |= WEAK_CORRELATION
        flags[~weak & ~(line_centred_z >= min(MIN_LINE_CENTRED_Z, min_peak_z))] |= COMMON_MODE
    flags[(lags_tried >= 2) & (2 * lags_kept < lags_tried)] |= LAGS_DISAGREE
    return flags


def file_warnings(summary: dict[str, float]) -> list[str]:
    """Why a file's line velocity as a whole is doubtful (empty when it can be trusted).

    One reason for the untrusted windows, the likeliest first: lines that correlate no
    better than noise (no moving streaks), then speeds beyond the shift range, then the
    most frequent flag; and, apart, neighbouring windows that disagree.
    """
    out = []
    limit = summary.get("max_speed_px_per_line", math.nan)
    shift, line_shift = summary.get("max_shift_px", math.nan), summary.get("line_max_shift_px", math.nan)
    if shift < line_shift:  # the shift cap (24 by default), not the line, sets the limit
        remedy = f"raise max_shift_px (now {shift:.0f}; these lines allow up to {line_shift:.0f})"
    else:
        remedy = "use a wider ROI or a higher line rate"
    weak = summary.get("fraction_weak_correlation", math.nan)
    nan = summary.get("fraction_no_lag", math.nan)
    trusted = summary.get("fraction_trusted", math.nan)
    if weak > MAX_NAN_FRACTION:
        out.append(f"in {weak:.0%} of windows the lines correlate no better than noise: no moving streaks, "
                   f"or streaks faster than the measurable {limit:.0f} px per line on "
                   f"{summary.get('n_pixels', math.nan):.0f}-pixel lines; then {remedy}")
    elif nan > MAX_NAN_FRACTION:
        out.append(f"{nan:.0%} of windows have no usable lag: the speed is likely beyond the measurable "
                   f"{limit:.0f} px per line on {summary.get('n_pixels', math.nan):.0f}-pixel lines (the finite "
                   f"windows read low); {remedy}")
    elif not trusted >= MIN_TRUSTED_FRACTION:
        worst = max(FLAG_BITS, key=lambda k: summary.get(f"fraction_{k}", -1.0))
        out.append(f"only {trusted:.0%} of line_velocity windows trusted, most often {worst} "
                   f"({summary.get(f'fraction_{worst}', math.nan):.0%})")
    dispersion = summary.get("local_dispersion", math.nan)
    if dispersion > MAX_DISPERSION:
        out.append(f"neighbouring windows disagree by {dispersion:.0%} (median): the speeds look like noise")
    return out


def line_velocity(image, *, dx_um: float, dt_s: float, window_lines: int = 32, row_offset: int = 0,
                  threads: int = 1, cancel: Callable[[], bool] | None = None,
                  progress: Callable[[int, int], None] | None = None, **options) -> AnalysisResult:
    """Velocity per window of a line-scan block by multi-lag line cross-correlation.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        The ROI block: axis 0 time (one row per line), axis 1 space (at least 5 pixels
        with the default ``min_overlap_px``). Any real dtype; NaN/inf pixels are rejected.
    dx_um, dt_s : float, keyword-only
        Micrometres per pixel and seconds per line (None raises MissingUnitsError).
    window_lines : int, keyword-only
        Lines per window (multiple of 4, >= 8; default 32); one window every ``window_lines // 4``.
    row_offset : int, keyword-only
        Row of the block's first line in the image (the ROI's r0), for ``time_s``.
    threads : int, keyword-only
        Threads over chunks of windows (the answer does not depend on it).
    cancel : callable or None, keyword-only
        Polled between chunks; True raises :class:`~hpcacq.errors.AnalysisCancelled`.
    progress : callable or None, keyword-only
        ``progress(done_windows, total_windows)`` between chunks.
    **options
        Further :class:`LineVelocityOptions` fields (``background_lines``, ``max_shift_px``,
        ``min_overlap_px``, ``max_lag_lines``, ``select_windows``, ``min_peak_z``,
        ``clean_span_s``).

    Returns
    -------
    AnalysisResult
        One row per window: ``time_s`` (s, window centre from the image's first line, as
        ``radon_velocity``), ``px_per_line`` (px/line), ``velocity_mm_s`` (mm/s, + toward
        increasing pixel index; NaN where no lag is usable), ``velocity_clean_mm_s`` (the
        trusted windows after the local outlier rule, NaN elsewhere), ``peak_z`` (the lag-1
        correlation peak as a z-score against noise), ``line_centred_z`` (the same with each
        line's mean subtracted), ``lags_used`` and ``flags`` (``no_lag``,
        ``weak_correlation``, ``lags_disagree``, ``clean_rejected``, ``common_mode``).
        ``summary`` holds ``median_velocity_mm_s`` and ``median_px_per_line`` (medians of the
        trusted windows), ``median_velocity_all_mm_s`` (of every finite window),
        ``fraction_trusted``, ``fraction_<flag>``, ``fraction_nan``, ``local_dispersion``,
        ``n_windows``, ``n_pixels``, ``max_shift_px``, ``line_max_shift_px``,
        ``max_speed_px_per_line`` and the fixed thresholds ``min_line_centred_z`` and
        ``stopped_px_per_line``;
        ``warnings`` says why a file is doubtful (:func:`file_warnings`).

    Raises
    ------
    InputError
        Not 2-D, non-numeric, NaN/inf pixels, fewer lines than one window, or lines too
        short for a shift range of 2 pixels.
    ParameterError
        Invalid or unknown option.
    AnalysisCancelled
        ``cancel()`` returned True.

    Examples
    --------
    Streaks moving 1.3 pixels per line on 7-pixel lines, 0.5 um per pixel, 1 ms per line:
    1.3 x 0.5 um / 1 ms = 0.65 mm/s.

    >>> import numpy as np
    >>> lines, x = np.mgrid[0:256, 0:7]
    >>> image = 1000 + 300 * np.cos(2 * np.pi * (x - 1.3 * lines) / 10.0)
    >>> result = line_velocity(image, dx_um=0.5, dt_s=0.001)
    >>> result.columns["velocity_mm_s"].size  # windows of 32 lines, one every 8 lines
    29
    >>> round(result.summary["median_velocity_mm_s"], 2)
    0.65
    """
    units = Units(dx_um, dt_s)
    chosen = options_from_mapping(LineVelocityOptions, dict(window_lines=window_lines, **options))
    return run_block(image, chosen, units, row_offset=row_offset, threads=threads, cancel=cancel,
                     progress=progress)


def run_block(image, options: LineVelocityOptions, units: Units, *, row_offset: int = 0, threads: int = 1,
              cancel: Callable[[], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """The line velocity of an ROI block with validated options and units: the body of :func:`line_velocity`."""
    threads = checks.integer("threads", threads, 1, "e.g. threads=2")
    row_offset = checks.integer("row_offset", row_offset, 0, "the ROI's first row")
    block = _check_image(image, options.window_lines)
    n_lines, n_pixels = block.shape
    shift = shift_range_px(n_pixels, options.max_shift_px or None, options.min_overlap_px)
    if shift < 2:
        raise InputError(f"lines of {n_pixels} pixels are too short for line_velocity (a shift range of at least "
                         f"2 pixels with min_overlap_px={options.min_overlap_px} shared); lower min_overlap_px "
                         "or use a wider ROI")
    if cancel is not None and cancel():
        raise AnalysisCancelled("line_velocity cancelled before the background step")
    clean = subtract_running_mean(block, lines=options.background_lines)
    del block
    n_windows = window_count(n_lines, options.window_lines)
    speed, peak_z, tried, kept, centred_z = estimate_windows(clean, options, n_windows, threads=threads,
                                                            cancel=cancel, progress=progress)
    velocity = units.mm_per_s(speed)
    flags = window_flags(speed, peak_z, tried, kept, centred_z, min_peak_z=options.min_peak_z)
    span = span_windows(options.clean_span_s, options.step_lines, units.dt_s)
    velocity_clean = clean_local(np.where(flags == 0, velocity, np.nan), span=span, n_mad=_CLEAN_MAD)
    flags[(flags == 0) & ~np.isfinite(velocity_clean)] |= CLEAN_REJECTED
    columns = {"time_s": window_times_s(n_windows, window_lines=options.window_lines, dt_s=units.dt_s,
                                        row_offset=row_offset),
               "px_per_line": speed, "velocity_mm_s": velocity, "velocity_clean_mm_s": velocity_clean,
               "peak_z": peak_z, "line_centred_z": centred_z, "lags_used": kept, "flags": flags}
    summary = _summary(flags, speed, velocity, velocity_clean, n_pixels, shift)
    summary["line_max_shift_px"] = float(n_pixels - options.min_overlap_px)
    # the fixed thresholds behind the flags and the warning, so a stored result says what made it
    summary["min_line_centred_z"] = min(MIN_LINE_CENTRED_Z, float(options.min_peak_z))
    summary["stopped_px_per_line"] = STOPPED_PX_PER_LINE
    summary["local_dispersion"] = local_dispersion(velocity_clean, span=span, floor=units.mm_per_s(STOPPED_PX_PER_LINE))
    return AnalysisResult(analysis="line_correlation_velocity", params=stored_params(options, units),
                          columns=columns, units=dict(UNITS), flag_bits=dict(FLAG_BITS), summary=summary,
                          warnings=file_warnings(summary))


def _summary(flags, speed, velocity, velocity_clean, n_pixels: int, shift: int) -> dict[str, float]:
    """Per-file scalars: window counts and shift range, then :func:`trust_summary`'s flag fractions
    and headline (median of trusted windows), and the trusted median in pixels per line."""
    trusted = flags == 0
    out = {"n_windows": float(len(flags)), "n_pixels": float(n_pixels), "max_shift_px": float(shift),
           "max_speed_px_per_line": float(shift - 1)}
    out.update(trust_summary(flags, FLAG_BITS, velocity, velocity_clean))
    out["median_px_per_line"] = float(np.median(speed[trusted])) if trusted.any() else math.nan
    return out
