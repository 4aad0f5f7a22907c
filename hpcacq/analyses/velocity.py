"""Red-blood-cell velocity from a line scan by the Radon method (Drew et al. 2010).

An image block is ``(n_lines, n_pixels)``: axis 0 is time (one row per line, ``dt_s``
seconds apart), axis 1 is space along the vessel (``dx_um`` micrometres per pixel).
Windows of ``window_lines`` lines start every ``window_lines // 4`` lines; each gets the
angle of its streaks (see :mod:`hpcacq.kernels.radon`) and from it a velocity in mm/s,
positive when cells move toward increasing pixel index:
``velocity_mm_s = (dx_um / dt_s) * tan(theta) / 1000``. This is the same number and sign
as kymflow's ``velocity`` column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .. import checks
from ..errors import AnalysisCancelled, InputError
from ..kernels.windows import window_count, window_times_s
from .base import AnalysisResult, real_block, reject_non_finite
from .options import Units, options_from_mapping, stored_params
from .runtime import chunk_bounds, run_chunks
from .velocity_options import SCORE_ENERGY_POWER, SCORES, RadonOptions

__all__ = [
    "RadonOptions",
    "radon_velocity",
    "run_block",
    "clean_velocity",
    "window_times_s",
    "FLAG_BITS",
    "SCORES",
    "WARMUP",
    "THETA_90",
    "LOW_SEPARABILITY",
    "CLEAN_REJECTED",
    "THETA_0",
    "STATIC_BACKGROUND",
    "ANGLE_EDGE",
]

from .cleaning import clean_kymflow, clean_trace, local_dispersion, span_windows
from .velocity_quality import (
    ANGLE_EDGE,
    ANGLE_STEP_DEG,
    CLEAN_REJECTED,
    FLAG_BITS,
    LOW_SEPARABILITY,
    NARROW_PIXELS,
    STATIC_BACKGROUND,
    THETA_0,
    THETA_90,
    angle_step_fraction,
    file_warnings,
    median_px_per_line,
    quality_summary,
    remove_background,
    window_flags,
)

UNITS = {"time_s": "s", "theta_deg": "deg", "velocity_mm_s": "mm/s",
         "velocity_clean_mm_s": "mm/s", "separability": "1", "flags": "1", "background": "1"}
#: Option sets whose runs compile every kernel signature a velocity run uses (``hpcacq compile``).
WARMUP = ({"score": "variance"}, {"score": "path_normalized"})
_CHUNK_WINDOWS = 512  # windows per chunk: ~0.05-0.2 s of work, the cancel/progress granularity


def clean_velocity(velocity_mm_s: np.ndarray, *, n_sd: float = 2.0) -> np.ndarray:
    """kymflow's current cleaning (+-n_sd SD cut, 5-point median); see :mod:`.cleaning`."""
    return clean_kymflow(velocity_mm_s, n_sd=n_sd, median_points=5)


def _check_image(image) -> np.ndarray:
    arr = np.ascontiguousarray(real_block(image, "radon_velocity"), dtype=np.float64)
    if arr.shape[1] < 2:
        raise InputError(f"the block is {arr.shape[1]} pixel(s) wide; a velocity needs at least 2 pixels")
    reject_non_finite(arr)
    return arr


def _run_chunks(image, params, n_windows, threads, cancel, progress):
    """Run the kernel over chunks of windows on ``threads`` threads, polling ``cancel``."""
    from ..kernels.radon import angle_table, radon_windows

    window_lines = params.window_lines
    power = SCORE_ENERGY_POWER[params.score]
    angle_table(window_lines, image.shape[1])  # build the shared table once, outside the pool

    def work(first, stop):
        return radon_windows(image, window_lines=window_lines, first=first, count=stop - first,
                             energy_power=power)

    parts = run_chunks(work, chunk_bounds(n_windows, _CHUNK_WINDOWS), threads=threads, cancel=cancel,
                       progress=progress, what="radon_velocity", unit="windows")
    return [np.concatenate([part[k] for part in parts]) for k in range(3)]


def _background_pass(block, params, theta, separability, threads, cancel, progress):
    """Re-run the search on the background-removed block (see ``params.background``).

    Returns the final ``theta``, ``separability``, the bool mask of windows whose angle
    comes from the background-removed block, and the block's static fraction (NaN when
    not computed).
    """
    n = len(theta)
    reanalysed = np.zeros(n, dtype=bool)
    if params.background == "none":
        return theta, separability, reanalysed, math.nan
    if cancel is not None and cancel():
        raise AnalysisCancelled("radon_velocity cancelled before the background pass")
    _, static = remove_background(block, lines=params.background_lines, residual=False)
    if params.background == "always" or static >= params.static_fraction:
        reanalysed[:] = True
        clean, _ = remove_background(block, lines=params.background_lines)
        theta, separability, _ = _run_chunks(clean, params, n, threads, cancel, progress)
        return theta, separability, reanalysed, static
    reanalysed = np.mod(theta, 180.0) == 0.0
    if reanalysed.any():
        from ..kernels.radon import radon_windows

        clean, _ = remove_background(block, lines=params.background_lines)
        idx = np.flatnonzero(reanalysed)
        theta, separability = theta.copy(), separability.copy()
        theta[idx], separability[idx], _ = radon_windows(
            clean, window_lines=params.window_lines, windows=idx,
            energy_power=SCORE_ENERGY_POWER[params.score])
    return theta, separability, reanalysed, static


def _assemble(params: RadonOptions, units: Units, theta, separability, row_offset, *, plain_zero,
              reanalysed, extra: dict[str, float]) -> AnalysisResult:
    """The result: columns, flags, cleaning, the summary (then ``extra``) and the file warnings."""
    n = len(theta)
    flags, stall = window_flags(theta, separability, plain_zero=plain_zero, reanalysed=reanalysed,
                                min_separability=params.min_separability,
                                stall_separability=params.stall_separability, edge_deg=params.edge_deg,
                                stall_windows=max(3, math.ceil(params.stall_min_s / (params.step_lines * units.dt_s))))
    with np.errstate(over="ignore", invalid="ignore"):
        velocity = (units.dx_um / units.dt_s) * np.tan(np.deg2rad(theta)) / 1000.0
    velocity[(flags & THETA_90) != 0] = np.nan
    velocity[stall] = 0.0  # tan(180 deg) is -1.2e-16, not 0
    trusted = np.where(flags == 0, velocity, np.nan)
    span = span_windows(params.clean_span_s, params.step_lines, units.dt_s)
    clean = clean_trace(trusted, method=params.clean, n_sd=params.clean_sd, span=span, n_mad=params.clean_mad)
    flags[np.isfinite(trusted) & ~np.isfinite(clean)] |= CLEAN_REJECTED
    columns = {
        "time_s": window_times_s(n, window_lines=params.window_lines, dt_s=units.dt_s, row_offset=row_offset),
        "theta_deg": theta, "velocity_mm_s": velocity, "velocity_clean_mm_s": clean,
        "separability": separability, "flags": flags, "background": reanalysed.astype(np.int8),
    }
    summary = {"n_windows": float(n)}
    summary.update(quality_summary(flags, clean, velocity, theta, stall))
    summary["local_dispersion"] = local_dispersion(clean, span=span)
    summary["fraction_plain_theta_0"] = float(plain_zero.mean()) if n else math.nan
    summary["fraction_background_removed"] = float(reanalysed.mean()) if n else math.nan
    summary["angle_step_fraction"] = angle_step_fraction(
        summary["median_abs_velocity_mm_s"] * 1000.0 * units.dt_s / units.dx_um, ANGLE_STEP_DEG)
    summary.update(extra)
    return AnalysisResult(analysis="radon_velocity", params=stored_params(params, units), columns=columns,
                          units=dict(UNITS), flag_bits=dict(FLAG_BITS), summary=summary,
                          warnings=file_warnings(summary, score=params.score))


def radon_velocity(image, *, dx_um: float, dt_s: float, window_lines: int = 16, row_offset: int = 0,
                   threads: int = 1, cancel: Callable[[], bool] | None = None,
                   progress: Callable[[int, int], None] | None = None, **options) -> AnalysisResult:
    """Velocity of red blood cells per window of a line-scan block (Radon method).

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        The ROI block: axis 0 time (one row per line), axis 1 space. Any real dtype;
        NaN/inf pixels are rejected.
    dx_um : float, keyword-only
        Micrometres per pixel.
    dt_s : float, keyword-only
        Seconds per line.
    window_lines : int, keyword-only
        Lines per window (multiple of 4, default 16 as kymflow).
    row_offset : int, keyword-only
        Row of the block's first line in the image (the ROI's r0), for ``time_s``.
    threads : int, keyword-only
        Threads running chunks of windows in parallel; results are identical for any value.
    cancel : callable or None, keyword-only
        Polled between chunks; when it returns True, :class:`AnalysisCancelled` is raised.
    progress : callable or None, keyword-only
        ``progress(done_windows, total_windows)``, called between chunks.
    **options
        Further :class:`RadonOptions` fields (``min_separability``, ``clean``, ``clean_sd``,
        ``score``, ``background``, ``background_lines``, ...).

    Returns
    -------
    AnalysisResult
        One row per window: ``time_s`` (s, window centre from the image's first line),
        ``theta_deg`` (deg), ``velocity_mm_s`` (mm/s, + toward increasing pixel index, NaN
        at theta = 90), ``velocity_clean_mm_s`` (mm/s; NaN where any flag is set),
        ``separability`` (1), ``flags`` (bits in ``FLAG_BITS``), ``background`` (1 where
        the angle comes from the background-removed block). ``summary`` holds the
        headline ``median_velocity_mm_s`` (median of trusted windows), the fraction of
        trusted windows and of each flag; ``warnings`` says why the file is doubtful.

    Raises
    ------
    InputError
        Not 2-D, non-numeric, NaN/inf pixels, or fewer lines than one window.
    ParameterError
        Invalid or unknown parameter.
    AnalysisCancelled
        ``cancel()`` returned True.

    Examples
    --------
    Streaks moving 2 pixels per line, at 0.5 um per pixel and 1 ms per line, move
    2 x 0.5 um / 1 ms = 1 mm/s toward increasing pixel index:

    >>> import numpy as np
    >>> lines, x = np.mgrid[0:64, 0:32]  # 64 lines (axis 0, time) x 32 pixels (axis 1, space)
    >>> image = 1000 + 500 * np.cos(2 * np.pi * (x - 2 * lines) / 10)
    >>> result = radon_velocity(image, dx_um=0.5, dt_s=0.001)
    >>> result.columns["velocity_mm_s"].size  # windows of 16 lines, one every 4 lines
    13
    >>> round(float(result.summary["median_velocity_mm_s"]), 2)
    1.0
    """
    units = Units(dx_um, dt_s)
    chosen = options_from_mapping(RadonOptions, dict(window_lines=window_lines, **options))
    return run_block(image, chosen, units, row_offset=row_offset, threads=threads, cancel=cancel,
                     progress=progress)


def run_block(image, options: RadonOptions, units: Units, *, row_offset: int = 0, threads: int = 1,
              cancel: Callable[[], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """The velocity of an ROI block with validated options and units: the body of :func:`radon_velocity`.

    What a job runs on every file (``AnalysisSpec.run``): ``options`` is the job's one
    :class:`RadonOptions`, ``units`` the file's :class:`~hpcacq.analyses.options.Units`.
    Arguments, result and errors as :func:`radon_velocity`.
    """
    params = options
    threads = checks.integer("threads", threads, 1, "e.g. threads=2")
    row_offset = checks.integer("row_offset", row_offset, 0, "the ROI's first row")
    block = _check_image(image)
    n_windows = window_count(block.shape[0], params.window_lines)
    if n_windows < 1:
        raise InputError(
            f"the block has {block.shape[0]} lines but one window needs {params.window_lines}; "
            f"use a taller ROI or a smaller window_lines (multiple of 4)"
        )
    theta, separability, plain_zero, reanalysed, static = _search(block, params, n_windows, threads, cancel,
                                                                  progress)
    extra = {"static_fraction": static, **_resolution(block, params, theta, separability, threads, cancel)}
    extra["line_correlation_mm_s"] = units.mm_per_s(extra.pop("line_correlation_px_per_line"))
    return _assemble(params, units, theta, separability, row_offset, plain_zero=plain_zero, reanalysed=reanalysed,
                     extra=extra)


def _search(block, params, n_windows, threads, cancel, progress):
    """The plain angle search, then the background pass: final theta, separability, which
    windows were at 0 in the plain search, which were re-analysed, the static fraction."""
    theta, separability, _ = _run_chunks(block, params, n_windows, threads, cancel, progress)
    plain_zero = np.mod(theta, 180.0) == 0.0
    theta, separability, reanalysed, static = _background_pass(block, params, theta, separability, threads,
                                                               cancel, progress)
    return theta, separability, plain_zero, reanalysed, static


def _resolution(block, params, theta, separability, threads, cancel) -> dict[str, float]:
    """How close the file is to what the method resolves (docs/QUALITY.md).

    ``median_crossing_lines``: pixels per line / median speed in pixels per line. On lines
    of at most ``NARROW_PIXELS`` pixels, two second opinions (cheap on lines this narrow):
    ``window_dependence``, the median speed with windows 4 times longer relative to this
    one, and ``lag_ratio``, this median relative to that of the line cross-correlation
    estimator (:func:`hpcacq.analyses.narrow_velocity.lag_estimate`, same windows and
    background step, in pixels per line: no units needed), over its windows that
    ``line_velocity``'s flags would trust before its outlier rule (NaN when fewer than half
    are); that median itself is ``line_correlation_px_per_line`` (the caller stores it in
    mm/s). It is not ``--analysis line_velocity``'s headline: that one has its own window
    length (32 by default), background and outlier rule.
    """
    from .line_velocity import estimate_windows, window_flags
    from .line_velocity_options import LineVelocityOptions
    from .narrow_velocity import subtract_running_mean

    n_pixels = block.shape[1]
    speed = median_px_per_line(theta, separability, min_separability=params.min_separability)
    out = {"n_pixels": float(n_pixels), "median_crossing_lines": n_pixels / abs(speed) if speed else math.nan,
           "window_dependence": math.nan, "long_window_lines": math.nan, "lag_ratio": math.nan,
           "line_correlation_px_per_line": math.nan}
    long_lines = 4 * params.window_lines
    n = window_count(block.shape[0], long_lines)
    if n_pixels > NARROW_PIXELS or n < 8 or not math.isfinite(speed):
        return out
    if cancel is not None and cancel():
        raise AnalysisCancelled("radon_velocity cancelled before the narrow-line checks")
    long_params = replace(params, window_lines=long_lines)
    long_theta, long_sep, *_ = _search(block, long_params, n, threads, cancel, None)
    long_speed = median_px_per_line(long_theta, long_sep, min_separability=params.min_separability)
    out.update(window_dependence=long_speed / speed - 1.0, long_window_lines=float(long_lines))
    if n_pixels >= 5 and params.window_lines >= 8:  # lag_velocity's smallest window
        clean = subtract_running_mean(block, lines=params.background_lines)  # 0: the whole block, as there
        lag_options = LineVelocityOptions(window_lines=params.window_lines)  # lag_estimate's defaults otherwise
        lag = estimate_windows(clean, lag_options, window_count(block.shape[0], params.window_lines),
                               threads=threads, cancel=cancel)
        trusted = window_flags(lag.speed, lag.peak_z, lag.lags_tried, lag.lags_kept, lag.line_centred_z,
                               min_peak_z=lag_options.min_peak_z) == 0  # as line_velocity's, before cleaning
        if np.mean(trusted) >= 0.5:
            out["line_correlation_px_per_line"] = float(np.median(lag.speed[trusted]))
            out["lag_ratio"] = speed / out["line_correlation_px_per_line"] - 1.0
    return out
