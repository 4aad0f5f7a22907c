"""Slow, obviously-correct Radon velocity built on ``skimage.transform.radon``.

The method of :func:`hpcacq.analyses.velocity.radon_velocity`, written the way kymflow runs
it (window cast to float32, mean subtracted, ``radon(window, theta, circle=False)``,
``numpy.var`` of each projection, ``numpy.argmax``), one window at a time. It is the
yardstick for tests and benchmarks (about 10-15 ms per window), not for production use.
Needs scikit-image (a test dependency).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError
from .base import AnalysisResult

__all__ = ["reference_radon_velocity", "reference_window_angle"]

_COARSE = np.arange(180)
_FINE_OFFSETS = np.arange(-2, 2.25, 0.25)


def _radon():
    try:
        from skimage.transform import radon
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reference_radon_velocity needs scikit-image: pip install scikit-image "
            "(or pip install 'hpcacq[test]')"
        ) from None
    return radon


def reference_window_angle(window, *, radon=None) -> tuple[float, float]:
    """Best angle (deg) and separability of one window, with skimage in float32.

    Parameters
    ----------
    window : array_like, shape (window_lines, n_pixels)
        Axis 0 time, axis 1 space.
    """
    radon = radon or _radon()
    w = np.asarray(window, dtype=np.float32)
    w = w - w.mean()
    coarse_var = np.var(radon(w, _COARSE, circle=False), axis=0)
    best = _COARSE[np.argmax(coarse_var)]
    fine = best + _FINE_OFFSETS
    fine_var = np.var(radon(w, fine, circle=False), axis=0)
    i = int(np.argmax(fine_var))
    mean = float(np.mean(coarse_var))
    return float(fine[i]), (float(fine_var[i]) / mean if mean > 0 else float("nan"))


def reference_radon_velocity(image, *, dx_um: float, dt_s: float, window_lines: int = 16,
                             windows=None) -> AnalysisResult:
    """kymflow's Radon velocity, window by window with ``skimage.transform.radon``.

    Parameters
    ----------
    image : array_like, shape (n_lines, n_pixels)
        Axis 0 time, axis 1 space.
    dx_um, dt_s : float, keyword-only
        Micrometres per pixel, seconds per line.
    window_lines : int, keyword-only
        Lines per window (multiple of 4); windows start every ``window_lines // 4`` lines.
    windows : sequence of int or None, keyword-only
        Indices of the windows to compute (default all ``n_lines // step - 3``).

    Returns
    -------
    AnalysisResult
        Columns ``window`` (index), ``time_s`` (s, window centre from the block's first
        line: ``(k * step + window_lines / 2) * dt_s``), ``theta_deg`` (deg),
        ``velocity_mm_s`` (mm/s, + toward increasing pixel index; NaN at 90 degrees
        where kymflow prints about +-5e6), ``separability`` (1).
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"image must be 2-D (n_lines, n_pixels), got shape {image.shape}")
    if not isinstance(window_lines, (int, np.integer)) or window_lines < 4 or window_lines % 4:
        raise ParameterError(f"window_lines must be a positive multiple of 4, got {window_lines!r}")
    radon = _radon()
    step = window_lines // 4
    n_total = max(0, image.shape[0] // step - 3)
    idx = np.arange(n_total) if windows is None else np.asarray(windows, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_total):
        raise InputError(f"window indices must lie in 0..{n_total - 1}")
    theta = np.empty(idx.size)
    sep = np.empty(idx.size)
    for n, k in enumerate(idx):
        theta[n], sep[n] = reference_window_angle(image[k * step: k * step + window_lines], radon=radon)
    velocity = (dx_um / dt_s) * np.tan(np.deg2rad(theta)) / 1000.0
    velocity[np.mod(theta, 180.0) == 90.0] = np.nan
    columns = {"window": idx, "time_s": (idx * step + window_lines / 2) * dt_s, "theta_deg": theta,
               "velocity_mm_s": velocity, "separability": sep}
    units = {"window": "1", "time_s": "s", "theta_deg": "deg", "velocity_mm_s": "mm/s", "separability": "1"}
    params = {"dx_um": dx_um, "dt_s": dt_s, "window_lines": window_lines}
    return AnalysisResult(analysis="radon_velocity_reference", params=params, columns=columns, units=units)
