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
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from ..errors import AnalysisCancelled, InputError, ParameterError
from .base import AnalysisResult, params_from_mapping

__all__ = [
    "RadonParams",
    "radon_velocity",
    "clean_velocity",
    "window_times_s",
    "FLAG_BITS",
    "SCORES",
    "THETA_90",
    "LOW_SEPARABILITY",
    "CLEAN_REJECTED",
]

THETA_90 = 1  # best angle is 90 degrees (mod 180): streaks along space, velocity undefined
LOW_SEPARABILITY = 2  # separability below params.min_separability (Drew's quality cut)
CLEAN_REJECTED = 4  # finite velocity removed by the +-2 SD cut of the cleaning
FLAG_BITS = {"theta_90": THETA_90, "low_separability": LOW_SEPARABILITY, "clean_rejected": CLEAN_REJECTED}
UNITS = {"time_s": "s", "theta_deg": "deg", "velocity_mm_s": "mm/s",
         "velocity_clean_mm_s": "mm/s", "separability": "1", "flags": "1"}
SCORES = ("variance", "path_normalized")
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
        coarse angles) is below this get the ``low_separability`` flag (default 3, Drew
        et al.). Flag only: velocities are not changed.
    clean_sd : float
        Cleaning cut: velocities farther than ``clean_sd`` standard deviations from the
        mean become NaN in ``velocity_clean_mm_s`` (default 2, as kymflow).
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
    min_separability: float = 3.0
    clean_sd: float = 2.0
    score: str = "variance"

    def __post_init__(self) -> None:
        _positive_finite("dx_um", self.dx_um, "give the pixel size in micrometres, e.g. dx_um=0.284")
        _positive_finite("dt_s", self.dt_s, "give the line period in seconds, e.g. dt_s=0.00117")
        w = self.window_lines
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 4 or w % 4:
            raise ParameterError(
                f"window_lines must be a positive multiple of 4 (e.g. 16 or 32), got {w!r}; "
                f"windows advance by window_lines // 4 lines"
            )
        object.__setattr__(self, "window_lines", int(w))
        _positive_finite("clean_sd", self.clean_sd, "e.g. clean_sd=2.0")
        if self.score not in SCORES:
            raise ParameterError(f"score must be one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        if isinstance(self.min_separability, bool) or not isinstance(
                self.min_separability, (int, float, np.integer, np.floating)) \
                or not math.isfinite(self.min_separability) or self.min_separability < 0:
            raise ParameterError(
                f"min_separability must be a finite number >= 0, got {self.min_separability!r}; "
                f"3.0 is Drew et al.'s cut, 0 disables the flag"
            )

    @property
    def step_lines(self) -> int:
        """Lines between the starts of consecutive windows."""
        return self.window_lines // 4

    @classmethod
    def from_mapping(cls, values) -> "RadonParams":
        """Build from a dict, rejecting unknown names (see ``params_from_mapping``)."""
        return params_from_mapping(cls, values)


def window_times_s(n_windows: int, *, window_lines: int, dt_s: float, row_offset: int = 0) -> np.ndarray:
    """Window centre times in seconds from the image's first line.

    ``(row_offset + k * step + window_lines / 2) * dt_s`` for ``k = 0 .. n_windows - 1``.
    """
    step = window_lines // 4
    return (row_offset + np.arange(n_windows) * step + window_lines / 2) * dt_s


def _nan_median3(v: np.ndarray) -> np.ndarray:
    """3-point running median ignoring NaN (2 points at the ends); NaN where all are NaN."""
    padded = np.concatenate(([np.nan], v, [np.nan]))
    stack = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    out = np.full(v.shape, np.nan)
    has = np.isfinite(stack).any(axis=0)
    if has.any():
        out[has] = np.nanmedian(stack[:, has], axis=0)
    return out


def clean_velocity(velocity_mm_s: np.ndarray, *, n_sd: float = 2.0) -> np.ndarray:
    """kymflow's cleaning done NaN-aware: a +-n_sd SD cut, then a 3-point median.

    Values outside ``mean +- n_sd * SD`` (NaN ignored, population SD) become NaN and stay
    NaN; every other value is replaced by the median of itself and its finite neighbours.
    """
    v = np.asarray(velocity_mm_s, dtype=np.float64).copy()
    finite = np.isfinite(v)
    if finite.sum() >= 2:
        mean, sd = np.mean(v[finite]), np.std(v[finite])
        v[finite & (np.abs(v - mean) > n_sd * sd)] = np.nan
    keep = np.isfinite(v)
    out = _nan_median3(v)
    out[~keep] = np.nan
    return out


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
    bounds = [(s, min(_CHUNK_WINDOWS, n_windows - s)) for s in range(0, n_windows, _CHUNK_WINDOWS)]
    parts: dict[int, tuple] = {}
    stop = threading.Event()

    def work(i):
        if stop.is_set():
            return i, None
        first, count = bounds[i]
        return i, radon_windows(image, window_lines=window_lines, first=first, count=count,
                                path_normalized=normalized)

    def poll(done):
        if progress is not None:
            progress(done, n_windows)
        if cancel is not None and cancel():
            stop.set()
            raise AnalysisCancelled(f"radon_velocity cancelled after {done} of {n_windows} windows")

    poll(0)
    if threads <= 1:
        for i in range(len(bounds)):
            parts[i] = work(i)[1]
            poll(sum(bounds[j][1] for j in parts))
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pending = {pool.submit(work, i) for i in range(len(bounds))}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i, part = fut.result()
                        parts[i] = part
                    poll(sum(bounds[j][1] for j in parts))
            finally:
                stop.set()
                for fut in pending:
                    fut.cancel()
    return [np.concatenate([parts[i][k] for i in range(len(bounds))]) for k in range(3)]


def _assemble(params: RadonParams, theta, separability, row_offset) -> AnalysisResult:
    n = len(theta)
    at_90 = np.mod(theta, 180.0) == 90.0
    with np.errstate(over="ignore", invalid="ignore"):
        velocity = (params.dx_um / params.dt_s) * np.tan(np.deg2rad(theta)) / 1000.0
    velocity[at_90] = np.nan
    clean = clean_velocity(velocity, n_sd=params.clean_sd)
    flags = np.zeros(n, dtype=np.int32)
    flags[at_90] |= THETA_90
    flags[~(separability >= params.min_separability)] |= LOW_SEPARABILITY
    flags[np.isfinite(velocity) & ~np.isfinite(clean)] |= CLEAN_REJECTED
    columns = {
        "time_s": window_times_s(n, window_lines=params.window_lines, dt_s=params.dt_s, row_offset=row_offset),
        "theta_deg": theta, "velocity_mm_s": velocity, "velocity_clean_mm_s": clean,
        "separability": separability, "flags": flags,
    }
    finite = velocity[np.isfinite(velocity)]
    summary = {
        "n_windows": float(n),
        "median_velocity_mm_s": float(np.median(finite)) if finite.size else math.nan,
        "median_abs_velocity_mm_s": float(np.median(np.abs(finite))) if finite.size else math.nan,
        "fraction_theta_90": float(at_90.mean()) if n else math.nan,
        "fraction_low_separability": float(((flags & LOW_SEPARABILITY) != 0).mean()) if n else math.nan,
    }
    return AnalysisResult(analysis="radon_velocity", params=asdict(params), columns=columns,
                          units=dict(UNITS), flag_bits=dict(FLAG_BITS), summary=summary)


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
        Further :class:`RadonParams` fields (``min_separability``, ``clean_sd``, ``score``).

    Returns
    -------
    AnalysisResult
        One row per window: ``time_s`` (s, window centre from the image's first line),
        ``theta_deg`` (deg), ``velocity_mm_s`` (mm/s, + toward increasing pixel index, NaN
        at theta = 90), ``velocity_clean_mm_s`` (mm/s), ``separability`` (1), ``flags``
        (bits in ``FLAG_BITS``).

    Raises
    ------
    InputError
        Not 2-D, non-numeric, NaN/inf pixels, or fewer lines than one window.
    ParameterError
        Invalid or unknown parameter.
    AnalysisCancelled
        ``cancel()`` returned True.
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
    theta, separability, _ = _run_chunks(block, params, n_windows, int(threads), cancel, progress)
    return _assemble(params, theta, separability, int(row_offset))
