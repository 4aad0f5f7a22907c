"""The line cross-correlation kernel (``kernels.line_correlation``) against its NumPy reference.

``narrow_velocity._lag_correlation_numpy`` is the formulation the line velocity used before
the kernel (one shift at a time in NumPy); the kernel must give the same correlations within
rounding, the same NaN, and ``line_velocity`` the same speeds.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import hpcacq.analyses.narrow_velocity as narrow
from hpcacq.analyses.line_velocity import line_velocity
from hpcacq.kernels.line_correlation import lag_correlation
from hpcacq.kernels.windows import window_count
from hpcacq.synth.flow import make_flow_kymograph


def both(x: np.ndarray, window_lines: int, lag: int, max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's and the reference's correlations. Where a window pools one point (one pair,
    one overlapping pixel) the kernel says NaN; the reference leaves rounding noise there
    (e.g. 2.0 or -inf instead of 0 / 0): those entries are checked, then set to NaN in it."""
    n_windows = window_count(x.shape[0], window_lines)
    kernel = lag_correlation(x, window_lines=window_lines, lag=lag, max_shift=max_shift, n_windows=n_windows)
    reference = narrow._lag_correlation_numpy(x, window_lines, lag, max_shift, n_windows)
    if window_lines - lag == 1 and max_shift == x.shape[1] - 1:
        assert np.isnan(kernel[:, [0, -1]]).all()
        reference[:, [0, -1]] = np.nan
    return kernel, reference


def assert_same(kernel: np.ndarray, reference: np.ndarray, tol: float = 1e-10, *, points: np.ndarray | None = None) -> None:
    """Equal NaN, values within ``tol``; within 1e-8 where a window pools fewer than 4 points
    (``points``: pairs x overlapping pixels per shift): the correlation of 2-3 points from
    sums cancels badly in both (measured: 1.0000000038 in NumPy, 0.99999999934 here, truth 1)."""
    assert kernel.shape == reference.shape
    np.testing.assert_array_equal(np.isnan(kernel), np.isnan(reference))
    few = np.zeros(kernel.shape[1], bool) if points is None else points < 4
    np.testing.assert_allclose(kernel[:, ~few], reference[:, ~few], rtol=tol, atol=tol)
    np.testing.assert_allclose(kernel[:, few], reference[:, few], rtol=1e-8, atol=1e-8)


def points(n_pixels: int, window_lines: int, lag: int, max_shift: int) -> np.ndarray:
    """Points pooled per shift by a window: pairs of lines x overlapping pixels."""
    return (window_lines - lag) * (n_pixels - np.abs(np.arange(-max_shift, max_shift + 1)))


# Measured on these cases: largest difference 4.4e-9 with 2 points per window (see assert_same),
# 1.4e-12 with 3 points, 1.5e-13 with 4 or more (both as far from a two-pass np.corrcoef).
@pytest.mark.parametrize("n_pixels", [5, 7, 12, 38, 150])
@pytest.mark.parametrize("window_lines", [8, 16, 32, 64])
def test_random_lines_match_the_numpy_reference(n_pixels, window_lines):
    rng = np.random.default_rng(n_pixels * 100 + window_lines)
    x = rng.normal(0.0, 100.0, (5 * window_lines + 3, n_pixels))
    for max_shift in sorted({0, 1, min(n_pixels - 3, 24), n_pixels - 1}):
        for lag in sorted({1, 2, window_lines // 4, window_lines // 2 + 1, window_lines - 1}):
            assert_same(*both(x, window_lines, lag, max_shift), points=points(n_pixels, window_lines, lag, max_shift))


@pytest.mark.parametrize("px_per_line", [0.4, -1.3, 5.0])
@pytest.mark.parametrize("n_pixels", [7, 38])
def test_synthetic_streaks_match_and_peak_at_the_speed(px_per_line, n_pixels):
    image = make_flow_kymograph(np.full(800, px_per_line), n_pixels, rng=2)
    x = narrow.subtract_running_mean(image, lines=0)
    max_shift = narrow.shift_range_px(n_pixels, None, 3)
    for lag in (1, 2, 3):
        kernel, reference = both(x, 32, lag, max_shift)
        assert_same(kernel, reference)
        if abs(px_per_line) * lag <= max_shift - 1:  # the median window peaks at the whole shift nearest v L
            peak = np.median(np.argmax(kernel, axis=1)) - max_shift
            assert abs(peak - px_per_line * lag) <= 0.5 + 1e-9


def test_constant_lines_give_nan_where_the_reference_does():
    rng = np.random.default_rng(7)
    x = rng.integers(-50, 50, (200, 9)).astype(np.float64)  # integers: every sum exact in both
    x[40:80] = 0.0  # windows inside: 0 / 0
    x[120:160] = 3.0  # a constant line set: zero variance
    for lag in (1, 5, 15):
        kernel, reference = both(x, 16, lag, 6)
        assert_same(kernel, reference, tol=1e-12)
        assert np.isnan(kernel[12]).all() and np.isnan(kernel[30]).all()  # lines 48-63, 120-135
        assert np.isfinite(kernel[0]).all()


def test_inputs_are_checked_and_any_real_dtype_is_taken():
    x = np.arange(64 * 6, dtype=np.uint16).reshape(64, 6) % 7
    out = lag_correlation(x, window_lines=16, lag=2, max_shift=3, n_windows=13)
    assert_same(out, narrow._lag_correlation_numpy(x.astype(np.float64), 16, 2, 3, 13))
    assert lag_correlation(x, window_lines=16, lag=2, max_shift=3, n_windows=0).shape == (0, 7)
    for bad, match in ((dict(window_lines=10), "multiple of 4"), (dict(lag=16), "lag must"),
                       (dict(lag=0), "lag must"), (dict(max_shift=6), "max_shift"),
                       (dict(n_windows=14), "do not fit")):
        options = {**dict(window_lines=16, lag=2, max_shift=3, n_windows=13), **bad}
        with pytest.raises(ValueError, match=match):
            lag_correlation(x, **options)
    with pytest.raises(ValueError, match="2-D"):
        lag_correlation(x[0], window_lines=16, lag=2, max_shift=3, n_windows=1)


def test_two_threads_at_once_give_the_single_thread_answer():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (4000, 38))
    expected = lag_correlation(x, window_lines=32, lag=3, max_shift=24, n_windows=window_count(4000, 32))
    got: list[np.ndarray] = []

    def work() -> None:
        got.append(lag_correlation(x, window_lines=32, lag=3, max_shift=24, n_windows=window_count(4000, 32)))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 2 and all(np.array_equal(g, expected, equal_nan=True) for g in got)


# Measured: largest difference 2.4e-12 px/line (7 px), <= 1e-13 on 12-150 px; the same NaN windows.
@pytest.mark.parametrize(("n_pixels", "px_per_line", "window_lines", "extra"), [
    (7, 1.1, 32, {}), (7, 0.3, 16, {}), (12, 2.0, 32, {}), (38, -3.0, 16, {"walls": 0.3, "spots": 0.3}),
    (150, 9.0, 64, {}),
])
def test_line_velocity_speeds_equal_those_of_the_numpy_reference(monkeypatch, n_pixels, px_per_line, window_lines,
                                                                   extra):
    speed = np.linspace(0.7 * px_per_line, 1.3 * px_per_line, 3000)
    image = make_flow_kymograph(speed, n_pixels, rng=5, **extra)
    kernel = line_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=window_lines).columns["px_per_line"]
    monkeypatch.setattr(narrow, "_lag_correlation", narrow._lag_correlation_numpy)
    reference = line_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=window_lines).columns["px_per_line"]
    assert np.isfinite(reference).mean() > 0.9
    np.testing.assert_array_equal(np.isnan(kernel), np.isnan(reference))
    np.testing.assert_allclose(kernel, reference, rtol=0, atol=1e-9)
