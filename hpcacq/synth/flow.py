"""Synthetic line scans with changing speed, stalls and static background.

A kymograph is ``(n_lines, n_pixels)``: axis 0 time (one row per line), axis 1 space.
Dark cells ride a tape whose position after line ``t`` is the running sum of the speed
(``speed_px_per_line[t]``, pixels per line, + toward increasing pixel index), so the
speed may change or stop (a stall: speed 0). On top of the moving cells, the structure
of a real recording that does not move:

- *vessel walls*: two bright bands along time at fixed pixels;
- *bright spots*: a few fixed pixels much brighter than plasma;
- *uneven illumination*: a brightness gain that varies across the line (and slowly in
  time when ``bleach`` is set).

The truth is the speed per line; :func:`window_truth_px_per_line` gives the mean speed
of each Radon window.
"""

from __future__ import annotations

import numpy as np

from .velocity import _cell_edges, _render_line, _tape_margin

__all__ = ["make_flow_kymograph", "window_truth_px_per_line", "stall_speed"]


def stall_speed(n_lines: int, *, px_per_line: float, stall_start: int, stall_lines: int,
                ramp_lines: int = 20) -> np.ndarray:
    """Speed per line: ``px_per_line`` everywhere except a stall (0) of ``stall_lines`` lines.

    The speed ramps linearly to 0 over ``ramp_lines`` lines before and back after.
    """
    v = np.full(n_lines, float(px_per_line))
    t = np.arange(n_lines)
    s0, s1 = stall_start, stall_start + stall_lines
    down = (t >= s0 - ramp_lines) & (t < s0)
    up = (t >= s1) & (t < s1 + ramp_lines)
    v[down] *= (s0 - t[down]) / ramp_lines
    v[(t >= s0) & (t < s1)] = 0.0
    v[up] *= (t[up] - s1 + 1) / ramp_lines
    return v


def make_flow_kymograph(speed_px_per_line, n_pixels: int, *, rng=None, cell_density: float = 0.3,
                        cell_length_px: float = 3.0, background: float = 1000.0, contrast: float = 0.5,
                        psf_sigma_px: float = 0.7, noise_sd: float = 30.0, walls: float = 0.0,
                        spots: float = 0.0, n_spots: int = 2, illumination: float = 0.0,
                        bleach: float = 0.0) -> np.ndarray:
    """A kymograph of dark cells moving at a per-line speed over static structure.

    Parameters
    ----------
    speed_px_per_line : array_like, shape (n_lines,)
        Cell speed at each line, pixels per line, either sign; 0 is a stall.
    n_pixels : int
        Pixels per line.
    rng : numpy.random.Generator, int or None, keyword-only
        Random source (or seed).
    cell_density, cell_length_px, background, contrast, psf_sigma_px, noise_sd : keyword-only
        As :func:`hpcacq.synth.velocity.make_velocity_kymograph`.
    walls : float, keyword-only
        Brightness of the two wall bands, in units of ``background`` (0: none).
    spots : float, keyword-only
        Brightness of ``n_spots`` fixed bright pixels, in units of ``background``.
    illumination : float, keyword-only
        Relative gain change across the line: gain goes from ``1 - illumination/2`` to
        ``1 + illumination/2`` (0: even).
    bleach : float, keyword-only
        Fraction of brightness lost linearly from the first to the last line.

    Returns
    -------
    ndarray of float64, shape (n_lines, n_pixels)
    """
    speed = np.asarray(speed_px_per_line, dtype=np.float64).ravel()
    n_lines = speed.size
    rng = np.random.default_rng(rng)
    position = np.concatenate(([0.0], np.cumsum(speed)[:-1]))
    margin = _tape_margin(cell_length_px, psf_sigma_px)
    lo, hi = position.min(), position.max()
    length = (hi - lo) + n_pixels + 2 * margin
    edges = _cell_edges(length, rng, cell_density, cell_length_px)
    covered = _render_line(-0.5 - position[:, None] + hi + margin, n_pixels, edges, psf_sigma_px)
    image = background * (1.0 - contrast * covered)
    x = np.arange(n_pixels, dtype=np.float64)
    static = np.zeros(n_pixels)
    if walls:
        width = max(0.7, n_pixels / 20)
        for centre in (0.12 * (n_pixels - 1), 0.88 * (n_pixels - 1)):
            static += walls * background * np.exp(-0.5 * ((x - centre) / width) ** 2)
    if spots:
        for j in rng.choice(n_pixels, size=min(n_spots, n_pixels), replace=False):
            static[j] += spots * background
    image = image + static[None, :]
    gain = 1.0 + illumination * (x / max(n_pixels - 1, 1) - 0.5)
    fade = 1.0 - bleach * np.arange(n_lines) / max(n_lines - 1, 1)
    image = image * gain[None, :] * fade[:, None]
    if noise_sd > 0:
        image += rng.normal(0.0, noise_sd, size=image.shape)
    return image


def window_truth_px_per_line(speed_px_per_line, window_lines: int) -> np.ndarray:
    """Mean speed over each Radon window (start every ``window_lines // 4`` lines)."""
    speed = np.asarray(speed_px_per_line, dtype=np.float64)
    step = window_lines // 4
    n = max(0, speed.size // step - 3)
    c = np.concatenate(([0.0], np.cumsum(speed)))
    starts = np.arange(n) * step
    return (c[starts + window_lines] - c[starts]) / window_lines
