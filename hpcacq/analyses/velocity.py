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
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import AnalysisCancelled, InputError, ParameterError
from .base import AnalysisResult, params_from_mapping
from .runtime import chunk_bounds, require_unit, run_chunks

__all__ = [
    "RadonParams",
    "radon_velocity",
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

from .cleaning import CLEAN_METHODS, clean_kymflow, clean_trace, local_median
from .velocity_quality import (
    ANGLE_EDGE,
    BACKGROUND_MODES,
    CLEAN_REJECTED,
    FLAG_BITS,
    LOW_SEPARABILITY,
    STATIC_BACKGROUND,
    THETA_0,
    THETA_90,
    file_warnings,
    median_px_per_line,
    NARROW_PIXELS,
    quality_summary,
    remove_background,
    window_flags,
)

UNITS = {"time_s": "s", "theta_deg": "deg", "velocity_mm_s": "mm/s",
         "velocity_clean_mm_s": "mm/s", "separability": "1", "flags": "1", "background": "1"}
SCORES = ("variance", "path_normalized")
#: Option sets whose runs compile every kernel signature a velocity run uses (``hpcacq compile``).
WARMUP = ({"score": "variance"}, {"score": "path_normalized"})
_CHUNK_WINDOWS = 512  # windows per chunk: ~0.05-0.2 s of work, the cancel/progress granularity


def _positive_finite(name: str, value, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r} ({type(value).__name__}); {hint}")
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be positive and finite, got {value!r}; {hint}")


@dataclass(frozen=True)
class RadonParams:
    """Validated parameters of the Radon velocity analysis.

    Attributes
    ----------
    dx_um : float
        Micrometres per pixel (axis 1), > 0.
    dt_s : float
        Seconds per line (axis 0), > 0.
    window_lines : int
        Lines per window, a multiple of 4 (default 16, as kymflow); windows start every
        ``window_lines // 4`` lines.
    min_separability : float
        Windows whose separability (variance at the best angle / mean variance over the
        coarse angles) is below this get the ``low_separability`` flag and are NaN in
        ``velocity_clean_mm_s`` (default 1.5, calibrated in docs/QUALITY.md; Drew et al.'s
        3 flags most good windows of narrow real scans).
    clean : {"local", "kymflow", "kymflow_3pt"}
        Cleaning recipe for ``velocity_clean_mm_s`` (see :mod:`hpcacq.analyses.cleaning`):
        ``"local"`` (default) removes values far from their neighbours' median and keeps
        slow changes; ``"kymflow"`` is kymflow's current +-clean_sd SD cut and 5-point
        median, ``"kymflow_3pt"`` its older 3-point one.
    clean_sd : float
        SD cut of the kymflow recipes (default 2, as kymflow).
    clean_span_s : float
        Time span of the neighbourhood of the ``"local"`` recipe, seconds (default 0.15;
        at least 7 windows): shorter than a stall or a physiological slow-down, longer
        than a spike.
    clean_mad : float
        Cut of the ``"local"`` recipe in robust SDs (1.4826 MAD) (default 4).
    background : {"auto", "none", "always"}
        Static background removal before the angle search (each column's running mean
        over ``background_lines`` lines is subtracted). ``"auto"`` (default) re-analyses
        only the windows whose plain best angle is 0 (locked on structure that does not
        move), so every other window is kymflow's number; ``"none"`` is kymflow's plain
        search; ``"always"`` searches every window on the background-removed block.
        ``"auto"`` also searches every window on the background-removed block when the
        static background holds at least ``static_fraction`` of the block's variance
        (walls, bright spots or uneven illumination dominate; no kymflow reference file
        comes near: 0.01-0.28).
    background_lines : int
        Length of the running mean, lines (default 4096; 0 = each column's mean over
        the whole ROI). Much longer than a stall, so stopped cells stay visible.
    static_fraction : float
        ``1 - var(block - background) / var(block)`` from which ``"auto"`` removes the
        background from every window (default 0.5).
    stall_separability : float
        A window still at angle 0 after background removal is a trusted stall (0 mm/s)
        when its separability is at least this (default 3).
    stall_min_s : float
        ... and when such windows follow each other for at least this long, seconds
        (default 0.1; at least 3 windows).
    edge_deg : float
        Windows whose best angle is within this of 90 degrees (but not 90) get the
        ``angle_edge`` flag (default 1, i.e. faster than tan(89 deg) = 57 px per line).
    score : {"variance", "path_normalized"}
        ``"variance"`` (default) scores an angle by the variance of its projection, as
        kymflow and Drew et al. In a window wider than it is tall, paths at steeper angles
        are longer and gain variance, which biases slow speeds upward (about +3.5% at
        0.3 px/line with W=16 on 38 pixels). ``"path_normalized"`` divides each angle's
        variance by the projection energy of a uniform window at that angle, which removes
        that gain: the median velocity is then within 0.5% of the truth from 0.3 to 5
        px/line at W=16 (see tests/test_velocity.py).

    Build one from a dict with ``params_from_mapping(RadonParams, {...})``.
    """

    dx_um: float
    dt_s: float
    window_lines: int = 16
    min_separability: float = 1.5
    clean_sd: float = 2.0
    score: str = "variance"
    clean: str = "local"
    clean_span_s: float = 0.15
    clean_mad: float = 4.0
    background: str = "auto"
    background_lines: int = 4096
    static_fraction: float = 0.5
    stall_separability: float = 3.0
    stall_min_s: float = 0.1
    edge_deg: float = 1.0

    def __post_init__(self) -> None:
        for unit, hint in (("dx_um", "give the pixel size in micrometres, e.g. dx_um=0.284"),
                           ("dt_s", "give the line period in seconds, e.g. dt_s=0.00117")):
            require_unit(unit, getattr(self, unit), hint)
            _positive_finite(unit, getattr(self, unit), hint)
        w = self.window_lines
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 4 or w % 4:
            raise ParameterError(
                f"window_lines must be a positive multiple of 4 (e.g. 16 or 32), got {w!r}; "
                f"windows advance by window_lines // 4 lines"
            )
        object.__setattr__(self, "window_lines", int(w))
        _positive_finite("clean_sd", self.clean_sd, "e.g. clean_sd=2.0")
        _positive_finite("clean_mad", self.clean_mad, "e.g. clean_mad=4.0")
        if self.clean not in CLEAN_METHODS:
            raise ParameterError(f"clean must be one of {', '.join(map(repr, CLEAN_METHODS))}, got {self.clean!r}")
        if self.background not in BACKGROUND_MODES:
            raise ParameterError(
                f"background must be one of {', '.join(map(repr, BACKGROUND_MODES))}, got {self.background!r}")
        _positive_finite("clean_span_s", self.clean_span_s, "e.g. clean_span_s=0.15")
        value = self.background_lines
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"background_lines must be an integer >= 0 (0: whole ROI), got {value!r}")
        object.__setattr__(self, "background_lines", int(value))
        for name in ("stall_separability", "edge_deg", "static_fraction", "stall_min_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value) or value < 0:
                raise ParameterError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.score not in SCORES:
            raise ParameterError(f"score must be one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        if isinstance(self.min_separability, bool) or not isinstance(
                self.min_separability, (int, float, np.integer, np.floating)) \
                or not math.isfinite(self.min_separability) or self.min_separability < 0:
            raise ParameterError(
                f"min_separability must be a finite number >= 0, got {self.min_separability!r}; "
                f"1.5 is the default (docs/QUALITY.md), 0 disables the flag"
            )

    @property
    def step_lines(self) -> int:
        """Lines between the starts of consecutive windows."""
        return self.window_lines // 4

    @classmethod
    def from_mapping(cls, values) -> RadonParams:
        """Build from a dict, rejecting unknown names (see ``params_from_mapping``)."""
        return params_from_mapping(cls, values)


def window_times_s(n_windows: int, *, window_lines: int, dt_s: float, row_offset: int = 0) -> np.ndarray:
    """Window centre times in seconds from the image's first line.

    ``(row_offset + k * step + window_lines / 2) * dt_s`` for ``k = 0 .. n_windows - 1``.
    """
    step = window_lines // 4
    return (row_offset + np.arange(n_windows) * step + window_lines / 2) * dt_s


def clean_velocity(velocity_mm_s: np.ndarray, *, n_sd: float = 2.0) -> np.ndarray:
    """kymflow's current cleaning (+-n_sd SD cut, 5-point median); see :mod:`.cleaning`."""
    return clean_kymflow(velocity_mm_s, n_sd=n_sd, median_points=5)


def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InputError(
            f"radon_velocity needs a 2-D block (n_lines, n_pixels), got shape {arr.shape}; "
            f"pick one channel (image[c]) and cut the ROI first"
        )
    if not (np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)) and arr.dtype != bool:
        raise InputError(f"image must hold real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape[1] < 2:
        raise InputError(f"the block is {arr.shape[1]} pixel(s) wide; a velocity needs at least 2 pixels")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"image has {int(bad.sum())} NaN/inf pixel(s) (first at line {row}, pixel {col}); "
            f"replace them (e.g. np.nan_to_num) or choose an ROI without them"
        )
    return arr


def _run_chunks(image, params, n_windows, threads, cancel, progress):
    """Run the kernel over chunks of windows on ``threads`` threads, polling ``cancel``."""
    from ..kernels.radon import angle_table, radon_windows

    window_lines = params.window_lines
    normalized = params.score == "path_normalized"
    angle_table(window_lines, image.shape[1])  # build the shared table once, outside the pool

    def work(first, stop):
        return radon_windows(image, window_lines=window_lines, first=first, count=stop - first,
                             path_normalized=normalized)

    parts = run_chunks(work, chunk_bounds(n_windows, _CHUNK_WINDOWS), threads=threads, cancel=cancel,
                       progress=progress, what="radon_velocity", unit="windows")
    return [np.concatenate([part[k] for part in parts]) for k in range(3)]


def local_dispersion(velocity_clean, *, span: int) -> float:
    """Median of |v - local median| / |local median| over the windows with a value.

    About 0.05-0.2 on real recordings; near or above 1 when the angles are noise.
    """
    v = np.asarray(velocity_clean, dtype=np.float64)
    med = local_median(v, span=span)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(v - med) / np.abs(med)
    rel = rel[np.isfinite(rel)]
    return float(np.median(rel)) if rel.size else math.nan


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
            clean, window_lines=params.window_lines, windows=idx, path_normalized=params.score == "path_normalized")
    return theta, separability, reanalysed, static


def _assemble(params: RadonParams, theta, separability, row_offset, *, plain_zero, reanalysed) -> AnalysisResult:
    n = len(theta)
    flags, stall = window_flags(theta, separability, plain_zero=plain_zero, reanalysed=reanalysed,
                                min_separability=params.min_separability,
                                stall_separability=params.stall_separability, edge_deg=params.edge_deg,
                                stall_windows=max(3, math.ceil(params.stall_min_s / (params.step_lines * params.dt_s))))
    with np.errstate(over="ignore", invalid="ignore"):
        velocity = (params.dx_um / params.dt_s) * np.tan(np.deg2rad(theta)) / 1000.0
    velocity[(flags & THETA_90) != 0] = np.nan
    velocity[stall] = 0.0  # tan(180 deg) is -1.2e-16, not 0
    trusted = np.where(flags == 0, velocity, np.nan)
    span = max(7, int(round(params.clean_span_s / (params.step_lines * params.dt_s))))
    clean = clean_trace(trusted, method=params.clean, n_sd=params.clean_sd, span=span, n_mad=params.clean_mad)
    flags[np.isfinite(trusted) & ~np.isfinite(clean)] |= CLEAN_REJECTED
    columns = {
        "time_s": window_times_s(n, window_lines=params.window_lines, dt_s=params.dt_s, row_offset=row_offset),
        "theta_deg": theta, "velocity_mm_s": velocity, "velocity_clean_mm_s": clean,
        "separability": separability, "flags": flags, "background": reanalysed.astype(np.int8),
    }
    summary = {"n_windows": float(n)}
    summary.update(quality_summary(flags, clean, velocity, theta, stall))
    summary["local_dispersion"] = local_dispersion(clean, span=span)
    summary["fraction_plain_theta_0"] = float(plain_zero.mean()) if n else math.nan
    summary["fraction_background_removed"] = float(reanalysed.mean()) if n else math.nan
    return AnalysisResult(analysis="radon_velocity", params=asdict(params), columns=columns,
                          units=dict(UNITS), flag_bits=dict(FLAG_BITS), summary=summary,
                          warnings=file_warnings(summary))


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
        Further :class:`RadonParams` fields (``min_separability``, ``clean``, ``clean_sd``,
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
    params = params_from_mapping(RadonParams, dict(dx_um=dx_um, dt_s=dt_s, window_lines=window_lines, **options))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ParameterError(f"threads must be an integer >= 1, got {threads!r}")
    if isinstance(row_offset, bool) or not isinstance(row_offset, (int, np.integer)) or row_offset < 0:
        raise ParameterError(f"row_offset must be an integer >= 0 (the ROI's first row), got {row_offset!r}")
    block = _check_image(image)
    from ..kernels.radon import window_count

    n_windows = window_count(block.shape[0], params.window_lines)
    if n_windows < 1:
        raise InputError(
            f"the block has {block.shape[0]} lines but one window needs {params.window_lines}; "
            f"use a taller ROI or a smaller window_lines (multiple of 4)"
        )
    theta, separability, plain_zero, reanalysed, static = _search(block, params, n_windows, int(threads), cancel,
                                                                  progress)
    result = _assemble(params, theta, separability, int(row_offset), plain_zero=plain_zero, reanalysed=reanalysed)
    result.summary["static_fraction"] = static
    result.summary.update(_resolution(block, params, theta, separability, int(threads), cancel, progress))
    result.warnings = file_warnings(result.summary)
    return result


def _search(block, params, n_windows, threads, cancel, progress):
    """The plain angle search, then the background pass: final theta, separability, which
    windows were at 0 in the plain search, which were re-analysed, the static fraction."""
    theta, separability, _ = _run_chunks(block, params, n_windows, threads, cancel, progress)
    plain_zero = np.mod(theta, 180.0) == 0.0
    theta, separability, reanalysed, static = _background_pass(block, params, theta, separability, threads,
                                                               cancel, progress)
    return theta, separability, plain_zero, reanalysed, static


def _resolution(block, params, theta, separability, threads, cancel, progress) -> dict[str, float]:
    """How close the file is to what the method resolves (docs/QUALITY.md).

    ``median_crossing_lines``: pixels per line / median speed in pixels per line. On lines
    of at most ``NARROW_PIXELS`` pixels, ``window_dependence``: the median speed with
    windows 4 times longer (a second search, cheap on narrow lines) relative to this one.
    """
    from ..kernels.radon import window_count

    n_pixels = block.shape[1]
    speed = median_px_per_line(theta, separability, min_separability=params.min_separability)
    out = {"n_pixels": float(n_pixels), "median_crossing_lines": n_pixels / abs(speed) if speed else math.nan,
           "window_dependence": math.nan, "long_window_lines": math.nan}
    long_lines = 4 * params.window_lines
    if n_pixels > NARROW_PIXELS or window_count(block.shape[0], long_lines) < 8 or not math.isfinite(speed):
        return out
    if cancel is not None and cancel():
        raise AnalysisCancelled("radon_velocity cancelled before the window-length check")
    long_params = replace(params, window_lines=long_lines)
    n = window_count(block.shape[0], long_lines)
    long_theta, long_sep, *_ = _search(block, long_params, n, threads, cancel, None)
    long_speed = median_px_per_line(long_theta, long_sep, min_separability=params.min_separability)
    out.update(window_dependence=long_speed / speed - 1.0, long_window_lines=float(long_lines))
    return out
