"""The windows every velocity method shares (Radon search, line cross-correlation): numpy only.

Windows of ``window_lines`` lines start every ``window_lines // 4`` lines; a block of
``n_lines`` lines holds ``n_lines // step - 3`` of them, and window ``k`` is centred at line
``k * step + window_lines / 2`` of the block. No Numba here: the NumPy-only analyses import
it without loading the JIT.
"""

from __future__ import annotations

import numpy as np

__all__ = ["window_step", "window_count", "window_times_s"]


def window_step(window_lines):
    """Lines between consecutive windows: ``window_lines // 4``."""
    return window_lines // 4


def window_count(n_lines, window_lines):
    """Number of windows of ``window_lines`` lines in ``n_lines`` lines: ``n_lines // step - 3``."""
    return max(0, n_lines // window_step(window_lines) - 3)


def window_times_s(n_windows: int, *, window_lines: int, dt_s: float, row_offset: int = 0) -> np.ndarray:
    """Window centre times in seconds from the image's first line.

    ``(row_offset + k * step + window_lines / 2) * dt_s`` for ``k = 0 .. n_windows - 1``.
    """
    return (row_offset + np.arange(n_windows) * window_step(window_lines) + window_lines / 2) * dt_s
