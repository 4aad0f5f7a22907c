"""Slow, obviously-correct loop versions of the Radon window kernel (for tests only).

The geometry is written out from skimage's definition of ``radon(image, theta,
circle=False)``: zero-pad the window to a square of side ``ceil(sqrt(2) * max(shape))``
keeping pixel ``shape // 2`` at ``side // 2``, then for every output pixel ``(y, x)`` of
the rotated image sample the padded window bilinearly (zero outside) at
``col = c + cos(t) (x - c) + sin(t) (y - c)``, ``row = c - sin(t) (x - c) + cos(t) (y - c)``
with ``c = side // 2``, and sum over ``y``.
"""

from __future__ import annotations

import math

import numpy as np


def naive_pad(window: np.ndarray) -> np.ndarray:
    """The window zero-padded to skimage's square, its centre pixel kept at the centre."""
    rows, cols = window.shape
    side = int(math.ceil(math.sqrt(2) * max(rows, cols)))
    out = np.zeros((side, side))
    r0 = side // 2 - rows // 2
    c0 = side // 2 - cols // 2
    out[r0:r0 + rows, c0:c0 + cols] = window
    return out


def naive_pixel(img: np.ndarray, row: float, col: float) -> float:
    """Bilinear sample of ``img`` at (row, col); pixels outside the image count as zero."""
    r0, c0 = math.floor(row), math.floor(col)
    fr, fc = row - r0, col - c0
    total = 0.0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < img.shape[0] and 0 <= c < img.shape[1]:
                total += wr * wc * img[r, c]
    return total


def naive_projection(window, angle_deg: float) -> np.ndarray:
    """Radon projection of ``window`` (rows = time, cols = space) at one angle, by loops."""
    padded = naive_pad(np.asarray(window, dtype=np.float64))
    side = padded.shape[0]
    c = side // 2
    t = math.radians(angle_deg)
    cos_t, sin_t = math.cos(t), math.sin(t)
    proj = np.zeros(side)
    for x in range(side):
        for y in range(side):
            col = c + cos_t * (x - c) + sin_t * (y - c)
            row = c - sin_t * (x - c) + cos_t * (y - c)
            proj[x] += naive_pixel(padded, row, col)
    return proj


def naive_window_angle(window) -> tuple[float, float]:
    """Best angle (deg) and separability of one window: coarse 0..179, fine +-2 by 0.25.

    The window's mean is subtracted first; the score is the population variance of the
    projection; ties go to the first angle.
    """
    w = np.asarray(window, dtype=np.float64)
    w = w - w.mean()
    coarse = [np.var(naive_projection(w, a)) for a in range(180)]
    best = int(np.argmax(coarse))
    fine_angles = [best + k * 0.25 for k in range(-8, 9)]
    fine = [np.var(naive_projection(w, a)) for a in fine_angles]
    i = int(np.argmax(fine))
    return fine_angles[i], fine[i] / np.mean(coarse)


def naive_windows(image, window_lines: int) -> list[np.ndarray]:
    """The windows of a block: rows ``[k*step, k*step + W)``, ``n_lines // step - 3`` of them."""
    step = window_lines // 4
    n = image.shape[0] // step - 3
    return [image[k * step:k * step + window_lines] for k in range(n)]
