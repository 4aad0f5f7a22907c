"""Summed intensity of each line of the ROI (acqstore's ``sum_intensity`` trace).

One value per line (row) of the ROI block ``(n_lines, n_pixels)``: the sum of its pixels
(``sum_intensity``, counts) and that sum divided by the ROI's width (``mean_intensity``,
counts per pixel), which makes ROIs of different widths comparable. Time runs down the
rows (``time_s`` = (row_offset + line) * dt_s); space across the columns.

It measures the ROI's brightness, not its geometry, so it belongs to no exclusive group:
it coexists with velocity or diameter on the same (channel, ROI). This module is the
whole analysis: kernel, parameters and the names the registry reads (``UNITS``,
``FLAG_BITS``, ``WARMUP``); the registry's line is in :mod:`hpcacq.analyses.registry`.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from .. import checks
from ..errors import InputError
from ..kernels._jit import JIT_OPTIONS
from .base import AnalysisResult, real_block, reject_non_finite
from .options import NoOptions, Units, stored_params
from .runtime import chunk_bounds, run_chunks

__all__ = ["SumIntensityOptions", "sum_intensity", "run_block", "line_sums", "UNITS", "FLAG_BITS", "WARMUP"]

UNITS = {"time_s": "s", "sum_intensity": "counts", "mean_intensity": "counts/px"}
FLAG_BITS: dict[str, int] = {}  # every line has a sum: nothing to flag
WARMUP: tuple[dict, ...] = ({},)
_CHUNK_LINES = 262144  # lines per chunk: the cancel/progress granularity (~10 ms of work)


@numba.njit(**JIT_OPTIONS)
def line_sums(block, first, count):  # pragma: no cover - compiled
    """Sum of each line ``first .. first+count-1`` of ``block`` (n_lines, n_pixels), in float64."""
    out = np.empty(count, dtype=np.float64)
    n_pixels = block.shape[1]
    for i in range(count):
        total = 0.0
        for j in range(n_pixels):
            total += block[first + i, j]
        out[i] = total
    return out


#: The analysis has no options: its one options value is the empty :class:`NoOptions`.
SumIntensityOptions = NoOptions


def _check_image(image) -> np.ndarray:
    arr = real_block(image, "sum_intensity")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"the block {arr.shape} is empty; choose an ROI of at least one line and one pixel")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    reject_non_finite(arr)
    return arr


def sum_intensity(image, *, dx_um: float, dt_s: float, row_offset: int = 0, threads: int = 1,
                  cancel: Callable[[], bool] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """Summed and mean intensity of every line of an ROI block.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        The ROI block; rows are lines (time), columns pixels (space). Any real dtype.
    dx_um, dt_s : float, keyword-only
        Micrometres per pixel and seconds per line (None raises MissingUnitsError).
    row_offset : int, keyword-only
        Line of the image where the block starts (``time_s`` counts from the image's first line).
    threads : int, keyword-only
        Threads over chunks of lines (the answer does not depend on it).
    cancel : callable, optional
        Polled between chunks; True raises :class:`~hpcacq.errors.AnalysisCancelled`.
    progress : callable, optional
        ``progress(done_lines, n_lines)`` between chunks.

    Returns
    -------
    AnalysisResult
        Columns ``time_s`` (s), ``sum_intensity`` (counts), ``mean_intensity`` (counts/px),
        one row per line.

    Examples
    --------
    >>> import numpy as np
    >>> r = sum_intensity(np.array([[1, 2], [3, 5]]), dx_um=0.5, dt_s=0.001)
    >>> r.columns["sum_intensity"].tolist(), r.columns["mean_intensity"].tolist()
    ([3.0, 8.0], [1.5, 4.0])
    """
    return run_block(image, NoOptions(), Units(dx_um, dt_s), row_offset=row_offset, threads=threads,
                     cancel=cancel, progress=progress)


def run_block(image, options: NoOptions, units: Units, *, row_offset: int = 0, threads: int = 1,
              cancel: Callable[[], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> AnalysisResult:
    """The sums of an ROI block with validated units: the body of :func:`sum_intensity` (``AnalysisSpec.run``)."""
    threads = checks.integer("threads", threads, 1, "e.g. threads=2")
    block = _check_image(image)
    n_lines, n_pixels = block.shape
    parts = run_chunks(lambda start, stop: line_sums(block, start, stop - start),
                       chunk_bounds(n_lines, _CHUNK_LINES), threads=threads, cancel=cancel,
                       progress=progress, what="sum_intensity", unit="lines")
    sums = np.concatenate(parts)
    time_s = (int(row_offset) + np.arange(n_lines, dtype=np.float64)) * units.dt_s
    columns = {"time_s": time_s, "sum_intensity": sums, "mean_intensity": sums / n_pixels}
    summary = {"median_mean_intensity": float(np.median(columns["mean_intensity"])), "n_lines": float(n_lines)}
    return AnalysisResult(analysis="sum_intensity", params=stored_params(options, units),
                          columns=columns, units=dict(UNITS), flag_bits=dict(FLAG_BITS), summary=summary)
