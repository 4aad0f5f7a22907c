"""Synthetic line scans across a vessel, with a diameter known to sub-pixel accuracy.

Each line crosses a vessel lumen ``[center - d/2, center + d/2]`` (pixels; pixel ``j`` is
centred at ``x = j`` and covers ``[j - 0.5, j + 0.5]``). The lumen is a top-hat seen through
a Gaussian point-spread function of sigma ``psf_sigma_px``, and every pixel records the
exact integral of that blurred profile over its own extent (as a scanning beam does while
it crosses the pixel). So the true diameter of line ``i`` is exactly ``diameter_px[i]``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["make_vessel_kymograph", "vasomotion", "make_moving_vessel"]

try:  # vectorised erf when scipy is present (it is with scikit-image); same values either way
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - exercised only without scipy
    _erf = np.vectorize(math.erf, otypes=[float])


def _erf_antiderivative(u: np.ndarray) -> np.ndarray:
    """G(u) = u erf(u) + exp(-u^2) / sqrt(pi), so that G'(u) = erf(u)."""
    return u * _erf(u) + np.exp(-u * u) / math.sqrt(math.pi)


def _pixel_step(x_lo: np.ndarray, x_hi: np.ndarray, edge: np.ndarray, sigma: float) -> np.ndarray:
    """Mean over [x_lo, x_hi] of the blurred unit step H(x - edge) * Gaussian(sigma)."""
    if sigma == 0.0:
        return np.clip(x_hi - edge, 0.0, x_hi - x_lo) / (x_hi - x_lo)
    scale = math.sqrt(2.0) * sigma
    big_g = _erf_antiderivative((x_hi - edge) / scale) - _erf_antiderivative((x_lo - edge) / scale)
    return 0.5 + 0.5 * scale * big_g / (x_hi - x_lo)


def _lumen_fraction(n_pixels: int, left: np.ndarray, right: np.ndarray, sigma: float) -> np.ndarray:
    """(n_lines, n_pixels) fraction of each pixel filled by the blurred lumen [left, right]."""
    x = np.arange(n_pixels, dtype=float)[None, :]
    lo, hi = x - 0.5, x + 0.5
    return _pixel_step(lo, hi, left[:, None], sigma) - _pixel_step(lo, hi, right[:, None], sigma)


def _per_line(value, n_lines: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(n_lines, float(arr))
    if arr.shape != (n_lines,):
        raise ValueError(f"{name} must be a number or {n_lines} values (one per line), got shape {arr.shape}")
    return arr


def vasomotion(n_lines: int, *, mean_px: float, amplitude_px: float, period_lines: float,
               phase: float = 0.0) -> np.ndarray:
    """A slow sinusoidal diameter change, per line, in pixels (for ``diameter_px=``).

    Returns ``mean_px + amplitude_px * sin(2 pi i / period_lines + phase)`` for line ``i``.
    """
    i = np.arange(n_lines, dtype=float)
    return mean_px + amplitude_px * np.sin(2.0 * math.pi * i / period_lines + phase)


def make_vessel_kymograph(n_lines: int, n_pixels: int, *, diameter_px, center_px=None,
                          psf_sigma_px: float = 1.0, noise_sd: float = 0.0,
                          background: float = 100.0, amplitude: float = 1000.0,
                          polarity: str = "bright", rng=None) -> np.ndarray:
    """A line scan across a vessel whose diameter is known exactly.

    Parameters
    ----------
    n_lines, n_pixels : int
        Shape of the image: axis 0 time (lines), axis 1 space (pixels).
    diameter_px : float or array of n_lines floats, keyword-only
        True lumen width in pixels, per line if an array (e.g. from :func:`vasomotion`).
    center_px : float or array of n_lines floats, keyword-only
        Lumen centre in pixels (pixel j centred at j); default the middle of the line,
        ``(n_pixels - 1) / 2``.
    psf_sigma_px : float, keyword-only
        Gaussian point-spread sigma in pixels (0 = no blur, exact pixel coverage).
    noise_sd : float, keyword-only
        Standard deviation of additive Gaussian noise (same units as ``amplitude``).
    background, amplitude : float, keyword-only
        Level outside the vessel, and lumen level above it.
    polarity : {"bright", "dark"}, keyword-only
        ``"bright"``: fluorescent plasma, lumen = background + amplitude. ``"dark"``: the
        lumen is darker: pixel = background + amplitude - lumen signal.
    rng : numpy.random.Generator, int or None, keyword-only
        Noise source (seed or generator).

    Returns
    -------
    ndarray, float64, shape (n_lines, n_pixels)
        Left edge of line i is ``center - diameter / 2``, right edge ``center + diameter / 2``.
    """
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    if psf_sigma_px < 0 or noise_sd < 0:
        raise ValueError("psf_sigma_px and noise_sd must be >= 0")
    diam = _per_line(diameter_px, n_lines, "diameter_px")
    if np.any(diam < 0):
        raise ValueError("diameter_px must be >= 0")
    centre = _per_line((n_pixels - 1) / 2.0 if center_px is None else center_px, n_lines, "center_px")
    frac = _lumen_fraction(n_pixels, centre - diam / 2.0, centre + diam / 2.0, float(psf_sigma_px))
    signal = amplitude * frac if polarity == "bright" else amplitude * (1.0 - frac)
    image = background + signal
    if noise_sd > 0:
        image = image + np.random.default_rng(rng).normal(0.0, noise_sd, size=image.shape)
    return image


def make_moving_vessel(n_lines: int, n_pixels: int, *, diameter_px, center_px, glitch_fraction: float = 0.0,
                       glitch_shift_px: float = 10.0, psf_sigma_px: float = 1.5, noise_sd: float = 0.0,
                       background: float = 100.0, amplitude: float = 1000.0, rng=None):
    """A vessel that moves and changes width, with optional single-line motion glitches.

    Parameters
    ----------
    n_lines, n_pixels : int
        Image shape (lines, pixels).
    diameter_px, center_px : float or array of n_lines floats, keyword-only
        True width and centre per line (pixels), e.g. from :func:`vasomotion`.
    glitch_fraction : float, keyword-only
        Fraction of lines (chosen at random, never the first) recorded with the vessel
        displaced by ``+-glitch_shift_px`` (a sudden tissue jerk lasting one line): the
        edges those lines show are not the vessel's.
    glitch_shift_px : float, keyword-only
    psf_sigma_px, noise_sd, background, amplitude, rng
        As in :func:`make_vessel_kymograph`.

    Returns
    -------
    image : ndarray, float64, shape (n_lines, n_pixels)
    left_px, right_px : ndarray, float64, shape (n_lines,)
        The true vessel edges of every line (``centre -+ diameter / 2``), glitch lines included.
    glitch : ndarray of bool, shape (n_lines,)
        True on the glitch lines.
    """
    rng = np.random.default_rng(rng)
    diam = _per_line(diameter_px, n_lines, "diameter_px")
    centre = _per_line(center_px, n_lines, "center_px")
    glitch = np.zeros(n_lines, bool)
    n_glitch = int(round(glitch_fraction * (n_lines - 1)))
    glitch[1 + rng.choice(n_lines - 1, size=n_glitch, replace=False)] = True
    seen = centre + np.where(glitch, rng.choice([-1.0, 1.0], size=n_lines) * glitch_shift_px, 0.0)
    image = make_vessel_kymograph(n_lines, n_pixels, diameter_px=diam, center_px=seen, psf_sigma_px=psf_sigma_px,
                                  noise_sd=noise_sd, background=background, amplitude=amplitude, rng=rng)
    return image, centre - diam / 2.0, centre + diam / 2.0, glitch
