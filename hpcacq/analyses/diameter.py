"""Vessel diameter per line of a line scan across a vessel.

An image block is ``(n_lines, n_pixels)``: axis 0 is time (one row per line, ``dt_s``
seconds apart), axis 1 is space across the vessel (``dx_um`` micrometres per pixel).
Each line is binned with its neighbours (``window_rows`` lines, mean or median), then its
two vessel edges are found in pixels (pixel ``j`` centred at ``j``):

- ``method="halfmax"``: half-maximum threshold half-way between the baseline (10th
  percentile of the binned profile) and the peak (its maximum), with sub-pixel edges by
  linear interpolation at the crossings. Kymflow takes the 90th percentile as the peak
  (``peak_percentile=90`` reproduces its threshold); that level falls on the shoulder of
  a lumen covering less than ~10% of the line and over-reads narrow vessels (+0.9 px at
  4 px / PSF sigma 1), so the default is the maximum. The method reads the full width at
  half maximum of the *blurred* profile: it over-reads lumens narrower than ~4 PSF sigma
  whatever the peak (+0.11 px at 4 sigma, +0.67 px at 3 sigma, +1.5 px at 2 sigma, even
  without noise). Measured (tests/test_diameter.py, widths 4-60 px, PSF sigma 1-2, line =
  2 x width + 16 px, 2% noise): mean absolute error 0.07 px over the vessels >= 4 sigma
  wide (at most 0.30 px, 8 px / sigma 2), 0.18 px over the whole grid. Noise lifts the
  maximum: with noise of 10% / 20% of the contrast per pixel (before binning 5 lines) a
  20 px vessel (PSF sigma 1.5) reads 0.17 / 0.33 px narrow (the 90th percentile 0.09 /
  0.18 px wide); bin more lines (``window_rows``) or use the fit on noisy data. Kymflow's
  whole-pixel edges read about 1 px low.
- ``method="fit"``: least-squares fit of a top-hat lumen seen through a Gaussian PSF,
  ``b + a/2 (erf((x-l)/(sqrt2 s)) - erf((x-r)/(sqrt2 s)))``, by Levenberg-Marquardt from
  the half-maximum edges; mean absolute error <= 0.08 px down to 4 PSF sigma (0.16 px at
  3 sigma), with R^2 as ``fit_quality``; about 30x slower than halfmax.

- ``method="gradient"``: edges at the steepest rise and fall of the binned profile smoothed
  by a Gaussian (``gradient_sigma_px``), refined to sub-pixel by a parabola through the
  logarithms of the derivative samples around each extremum; an edge counts only where the
  profile falls to background beyond it, and (``gradient_min_strength``) only if its
  derivative peak is strong enough. Mean absolute error as halfmax's (0.057 px over vessels
  >= 4 sigma wide; tests/test_diameter_options.py).

Options (acqstore's, see docs/ACQSTORE_DIAMETER.md): ``stride`` (analyse every n-th line),
``threshold_mode="absolute"`` with ``threshold_value`` (halfmax), ``motion_gating`` (edges
that jump from the last accepted line by more than ``max_edge_shift_um``,
``max_diameter_change_um``, ``max_center_shift_um`` per line are NaN and flagged), and
``post_filter_lines`` (running median of the diameter, extra columns). Their defaults give
the results of the methods without them, bit for bit.

Diameter = right - left. An edge that does not lie inside the line is NaN and flagged.
Diameter needs a scan ACROSS the vessel: ``summary["fraction_with_edges"]`` counts the lines
with both edges, and fewer than half make the result doubtful (``result.warnings``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import checks
from ..errors import InputError
from .base import AnalysisResult, real_block, reject_non_finite
from .diameter_options import BINNINGS, METHODS, POLARITIES, THRESHOLD_MODES, DiameterOptions
from .options import Units, options_from_mapping
from .runtime import chunk_bounds, run_chunks

__all__ = ["DiameterOptions", "vessel_diameter", "run_block", "FLAG_BITS", "METHODS", "BINNINGS", "POLARITIES",
           "THRESHOLD_MODES", "MIN_PIXELS", "WARMUP"]

#: Option sets whose runs compile every kernel signature a diameter run uses (``hpcacq compile``).
WARMUP = (
    {"method": "halfmax", "binning": "mean", "polarity": "bright"},
    {"method": "halfmax", "binning": "median", "polarity": "dark"},
    {"method": "fit", "binning": "mean", "polarity": "bright"},
    {"method": "fit", "binning": "median", "polarity": "dark"},
    {"method": "gradient", "binning": "mean", "polarity": "bright", "motion_gating": True, "post_filter_lines": 3},
    {"method": "gradient", "binning": "median", "polarity": "dark", "stride": 2},
    {"method": "halfmax", "stride": 2, "threshold_mode": "absolute", "threshold_value": 100.0},
    {"method": "fit", "stride": 2},
)
MIN_PIXELS = {"halfmax": 3, "fit": 6, "gradient": 3}
# Same values as hpcacq.kernels.diameter.FLAG_BITS (kept here so importing this module
# does not load Numba; tests/test_diameter.py checks they agree).
FLAG_BITS = {"left_edge_missing": 1, "right_edge_missing": 2, "no_contrast": 4,
             "fit_not_converged": 8, "fit_poor": 16, "weak_edge": 32, "motion_rejected": 64}
UNITS = {"time_s": "s", "left_px": "px", "right_px": "px", "diameter_px": "px", "left_um": "um",
         "right_um": "um", "diameter_um": "um", "fit_quality": "1", "flags": "1"}
_CHUNK_LINES = {"halfmax": 65536, "fit": 4096, "gradient": 16384}  # at most ~0.02-0.1 s of work per chunk


def _check_image(image, method: str) -> np.ndarray:
    arr = real_block(image, "vessel_diameter")
    if arr.shape[1] < MIN_PIXELS[method]:
        raise InputError(
            f"the block is {arr.shape[1]} pixel(s) across; method {method!r} needs at least "
            f"{MIN_PIXELS[method]} pixels: draw the ROI wider than the vessel, with background on both sides")
    if arr.shape[0] < 1:
        raise InputError("the block has no lines; choose an ROI with at least one line")
    from ..kernels.diameter import all_finite  # here: numba is imported only when the kernels run

    if not all_finite(arr):  # a pass without a temporary mask; locate the first bad pixel only then
        reject_non_finite(arr)
    return np.ascontiguousarray(arr, dtype=np.float64)


def _kernel_call(block: np.ndarray, params: DiameterOptions) -> Callable[[int, int], tuple]:
    """work(start, stop) -> (left, right, r2, flags[, left_strength, right_strength]) for lines [start, stop)."""
    from ..kernels import diameter as kern

    common = dict(window_rows=params.window_rows, binning=params.binning, polarity=params.polarity,
                  check_finite=False, stride=params.stride)  # _check_image has tested the whole block
    levels = dict(baseline_percentile=params.baseline_percentile, peak_percentile=params.peak_percentile)
    if params.method == "fit":
        def work(start, stop):
            return kern.fit_edges(block, start=start, stop=stop, max_iter=params.max_iter,
                                  min_r2=params.min_fit_r2, **levels, **common)
    elif params.method == "gradient":
        def work(start, stop):
            left, right, s_left, s_right, flags = kern.gradient_edges(
                block, start=start, stop=stop, sigma_px=params.gradient_sigma_px,
                min_strength=params.gradient_min_strength, **common)
            return left, right, np.full(len(left), np.nan), flags, s_left, s_right
    else:
        value = params.threshold_value if params.threshold_mode == "absolute" else None

        def work(start, stop):
            left, right, flags = kern.halfmax_edges(block, start=start, stop=stop, threshold_value=value,
                                                    **levels, **common)
            return left, right, np.full(len(left), np.nan), flags
    return work


def _run_chunks(work, n_lines: int, chunk: int, threads: int, cancel, progress) -> list[np.ndarray]:
    """Run ``work`` over chunks of lines on ``threads`` threads, polling ``cancel`` between them."""
    parts = run_chunks(work, chunk_bounds(n_lines, chunk), threads=threads, cancel=cancel, progress=progress,
                       what="vessel_diameter", unit="lines")
    if len(parts) == 1:
        return list(parts[0])
    return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def vessel_diameter(image, *, dx_um: float, dt_s: float, window_rows: int = 5, method: str = "halfmax",
                    polarity: str = "bright", row_offset: int = 0, threads: int = 1,
                    cancel: Callable[[], bool] | None = None,
                    progress: Callable[[int, int], None] | None = None, **options) -> AnalysisResult:
    """Vessel edges and diameter for every (``stride``-th) line of a block across a vessel.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        The ROI block: axis 0 time (one row per line), axis 1 space across the vessel.
        Any real dtype; NaN/inf pixels are rejected.
    dx_um : float, keyword-only
        Micrometres per pixel.
    dt_s : float, keyword-only
        Seconds per line.
    window_rows : int, keyword-only
        Odd number of lines binned around each line (default 5).
    method : {"halfmax", "fit"}, keyword-only
        Sub-pixel half-maximum edges (fast) or top-hat * Gaussian profile fit (accurate for
        narrow vessels, about 30x slower).
    polarity : {"bright", "dark"}, keyword-only
        Bright lumen on dark background (default) or the reverse.
    row_offset : int, keyword-only
        Row of the block's first line in the image (the ROI's r0), for ``time_s``.
    threads : int, keyword-only
        Threads running chunks of lines; results are identical for any value.
    cancel : callable or None, keyword-only
        Polled between chunks; when it returns True, :class:`AnalysisCancelled` is raised.
    progress : callable or None, keyword-only
        ``progress(done_lines, total_lines)``, called between chunks.
    **options
        Further :class:`DiameterOptions` fields (``binning``, ``baseline_percentile``,
        ``peak_percentile``, ``max_iter``, ``min_fit_r2``, ``stride``, ``threshold_mode``,
        ``threshold_value``, ``gradient_sigma_px``, ``gradient_min_strength``,
        ``motion_gating``, ``max_edge_shift_um``, ``max_diameter_change_um``,
        ``max_center_shift_um``, ``post_filter_lines``).

    Returns
    -------
    AnalysisResult
        One row per analysed line: ``time_s`` (s, ``(row_offset + i) * dt_s`` for line ``i``), ``left_px``,
        ``right_px``, ``diameter_px`` (px), ``left_um``, ``right_um``, ``diameter_um`` (um,
        edges measured from the block's first pixel centre), ``fit_quality`` (R^2 of the fit,
        NaN for halfmax), ``flags`` (bits in ``FLAG_BITS``).

    Raises
    ------
    InputError
        Not 2-D, non-numeric, NaN/inf pixels, or too few pixels across.
    ParameterError
        Invalid or unknown parameter (:class:`MissingUnitsError` if ``dx_um``/``dt_s`` is None).
    AnalysisCancelled
        ``cancel()`` returned True.

    Examples
    --------
    A bright lumen 12 pixels wide on a dark background, at 0.5 um per pixel, is 6 um wide;
    the half-maximum edges fall half-way between the last background pixel and the first
    lumen pixel:

    >>> import numpy as np
    >>> image = np.full((20, 40), 100.0)  # 20 lines (axis 0, time) x 40 pixels (axis 1, space)
    >>> image[:, 14:26] = 1100.0
    >>> result = vessel_diameter(image, dx_um=0.5, dt_s=0.001)
    >>> float(result.columns["left_px"][0]), float(result.columns["right_px"][0])
    (13.5, 25.5)
    >>> float(result.summary["median_diameter_um"])
    6.0
    """
    units = Units(dx_um, dt_s)
    chosen = options_from_mapping(DiameterOptions, dict(window_rows=window_rows, method=method, polarity=polarity,
                                                         **options))
    return run_block(image, chosen, units, row_offset=row_offset, threads=threads, cancel=cancel,
                     progress=progress)


def run_block(image, options: DiameterOptions, units: Units, *, row_offset: int = 0, threads: int = 1,
              cancel: Callable[[], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """Edges and diameter of an ROI block with validated options and units: the body of :func:`vessel_diameter`.

    What a job runs on every file (``AnalysisSpec.run``): ``options`` is the job's one
    :class:`DiameterOptions`, ``units`` the file's :class:`~hpcacq.analyses.options.Units`.
    Arguments, result and errors as :func:`vessel_diameter`.
    """
    params = options
    threads = checks.integer("threads", threads, 1, "e.g. threads=2")
    row_offset = checks.integer("row_offset", row_offset, 0, "the ROI's first row")
    block = _check_image(image, params.method)
    work = _kernel_call(block, params)
    n_lines = block.shape[0]
    if threads == 1 and cancel is None and progress is None:
        chunk = n_lines  # chunks only serve threads, cancellation and progress
    else:
        chunk = max(1024, min(_CHUNK_LINES[params.method], -(-n_lines // (4 * threads))))
    outputs = _run_chunks(work, n_lines, chunk, threads, cancel, progress)
    from .diameter_quality import assemble_result

    return assemble_result(params, units, outputs, row_offset, units=UNITS, flag_bits=FLAG_BITS)
