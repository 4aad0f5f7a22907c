"""Synthetic line scans of red blood cells moving at a known speed.

A kymograph is ``(n_lines, n_pixels)``: axis 0 time (one row per line), axis 1 space.
Cells are dark intervals on bright plasma, riding a "tape" that moves ``px_per_line``
pixels per line (positive toward increasing pixel index). Each pixel's value is the
exact fraction of its area ``[j - 0.5, j + 0.5]`` covered by cells at that line
(anti-aliased, so sub-pixel positions are rendered faithfully), optionally blurred by a
Gaussian point-spread function, plus Gaussian noise.

The line is a window on a longer vessel: the cells just beyond its ends exist, and the
blur at an end pixel sees them (as a microscope's does). So the generators render the
line plus the blur's reach on both sides and keep the 'valid' part of the convolution;
a short line is exactly the middle of a wider scan of the same cells.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["make_velocity_kymograph", "px_per_line_to_mm_s", "mm_s_to_px_per_line"]


def px_per_line_to_mm_s(px_per_line: float, *, dx_um: float, dt_s: float) -> float:
    """Speed in mm/s of a streak moving ``px_per_line`` pixels per line.

    ``px_per_line * dx_um / dt_s`` is in µm/s; divided by 1000 gives mm/s.
    """
    return px_per_line * dx_um / dt_s / 1000.0


def mm_s_to_px_per_line(velocity_mm_s: float, *, dx_um: float, dt_s: float) -> float:
    """Inverse of :func:`px_per_line_to_mm_s`."""
    return velocity_mm_s * 1000.0 * dt_s / dx_um


def _cell_edges(length: float, rng, cell_density: float, cell_length_px: float) -> np.ndarray:
    """Sorted, non-overlapping cell intervals (start, stop) on a tape ``[0, length]``.

    Gaps between cells are exponential with mean chosen so that cells cover about
    ``cell_density`` of the tape.
    """
    mean_gap = cell_length_px * (1.0 - cell_density) / cell_density
    n = int(length / (cell_length_px + mean_gap) * 1.5) + 8
    gaps = rng.exponential(mean_gap, size=n) + 0.5
    starts = np.cumsum(gaps + cell_length_px) - cell_length_px
    starts = starts[starts < length]
    return np.stack([starts, starts + cell_length_px], axis=1)


def _coverage_integral(u: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Length of tape covered by cells in ``(-inf, u]`` (piecewise linear in ``u``)."""
    knots = edges.ravel()
    covered = np.zeros(knots.size)
    covered[1::2] = np.cumsum(edges[:, 1] - edges[:, 0])
    covered[2::2] = covered[1:-1:2]
    return np.interp(u, knots, covered, left=0.0, right=covered[-1])


def _blur_reach(sigma_px: float) -> int:
    """Half-width in pixels of the Gaussian kernel of :func:`_blur_valid` (0 for no blur)."""
    return int(math.ceil(4 * sigma_px)) if sigma_px > 0 else 0


def _blur_valid(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur along space (axis 1), keeping only the 'valid' part.

    ``image`` holds the line plus ``_blur_reach(sigma_px)`` pixels on each side; the result
    is the line only (``image.shape[1] - 2 * reach`` pixels), each pixel a weighted sum
    of real neighbours (no padding, so nothing is invented at the line's ends).
    """
    half = _blur_reach(sigma_px)
    if half == 0:
        return image
    x = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (x / sigma_px) ** 2)
    kernel /= kernel.sum()
    n_out = image.shape[1] - 2 * half
    out = np.zeros((image.shape[0], n_out))
    for i, k in enumerate(kernel):
        out += k * image[:, i:i + n_out]
    return out


def _tape_margin(cell_length_px: float, sigma_px: float) -> float:
    """Tape beyond each end of the line (px): room for a cell, and for the blur's reach."""
    return max(cell_length_px + 2.0, _blur_reach(sigma_px) + 0.5)


def _render_line(pixel0_left: np.ndarray, n_pixels: int, edges: np.ndarray,
                 sigma_px: float) -> np.ndarray:
    """Blurred cell coverage (0-1) of ``n_pixels`` pixels at each line.

    ``pixel0_left`` (shape ``(n_lines, 1)``) is the tape coordinate of the left edge of
    pixel 0 at each line; pixel ``j`` covers ``[pixel0_left + j, pixel0_left + j + 1]``.
    The pixels within the blur's reach beyond both ends are rendered too (they must lie
    on the tape: see :func:`_tape_margin`) and consumed by the 'valid' blur.
    """
    half = _blur_reach(sigma_px)
    left = pixel0_left + np.arange(-half, n_pixels + half, dtype=np.float64)[None, :]
    covered = _coverage_integral(left + 1.0, edges) - _coverage_integral(left, edges)
    return _blur_valid(covered, sigma_px)


def make_velocity_kymograph(n_lines: int, n_pixels: int, *, px_per_line: float, rng=None,
                            cell_density: float = 0.3, cell_length_px: float = 3.0,
                            background: float = 1000.0, contrast: float = 0.6,
                            psf_sigma_px: float = 0.7, noise_sd: float = 30.0) -> np.ndarray:
    """A kymograph of dark cells on bright plasma moving at a known speed.

    Parameters
    ----------
    n_lines, n_pixels : int
        Shape of the image: ``n_lines`` rows (time), ``n_pixels`` columns (space).
    px_per_line : float, keyword-only
        Cell speed in pixels per line, either sign (positive toward increasing pixel
        index). Convert with :func:`px_per_line_to_mm_s`.
    rng : numpy.random.Generator, int or None, keyword-only
        Random source (or seed) for cell positions and noise.
    cell_density : float, keyword-only
        Fraction of the vessel length covered by cells (0 < density < 1).
    cell_length_px : float, keyword-only
        Length of one cell along the line, pixels.
    background : float, keyword-only
        Plasma brightness (arbitrary intensity units).
    contrast : float, keyword-only
        A fully covered pixel is ``background * (1 - contrast)``.
    psf_sigma_px : float, keyword-only
        Gaussian blur along space (pixels); 0 for none.
    noise_sd : float, keyword-only
        Standard deviation of additive Gaussian noise (intensity units).

    Returns
    -------
    ndarray of float64, shape (n_lines, n_pixels)
    """
    if n_lines < 1 or n_pixels < 1:
        raise ValueError(f"n_lines and n_pixels must be >= 1, got {n_lines}, {n_pixels}")
    if not 0 < cell_density < 1:
        raise ValueError(f"cell_density must lie in (0, 1), got {cell_density}")
    rng = np.random.default_rng(rng)
    travel = abs(px_per_line) * n_lines
    margin = _tape_margin(cell_length_px, psf_sigma_px)
    length = travel + n_pixels + 2 * margin
    edges = _cell_edges(length, rng, cell_density, cell_length_px)
    # tape coordinate of pixel 0's left edge at line t: -0.5 - v t, shifted to be >= 0
    offset = margin + (travel if px_per_line > 0 else 0.0)
    t = np.arange(n_lines, dtype=np.float64)[:, None]
    covered = _render_line(-0.5 - px_per_line * t + offset, n_pixels, edges, psf_sigma_px)
    image = background * (1.0 - contrast * covered)
    if noise_sd > 0:
        image += rng.normal(0.0, noise_sd, size=image.shape)
    return image
