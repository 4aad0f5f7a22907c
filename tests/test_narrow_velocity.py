"""The multi-lag cross-correlation estimator on narrow lines, against synthetic truth.

Synthetic 7-pixel lines are cut from the middle of a wider synthetic kymograph, where a
static background can be laid over them on its own. The generator's own 7-pixel lines are
the same (tests/test_synth_velocity.py); up to 0.1.0 its blur mirrored the line's ends.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.narrow_velocity import lag_velocity, subtract_running_mean
from hpcacq.errors import InputError, ParameterError
from hpcacq.synth.flow import make_flow_kymograph, window_truth_px_per_line

MARGIN = 10


def narrow_kymograph(px_per_line: float, n_pixels: int, seed: int, n_lines: int = 3000,
                     static: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A ``(n_lines, n_pixels)`` line cut from a wider synthetic one; its speed per line."""
    speed = np.full(n_lines, px_per_line)
    image = make_flow_kymograph(speed, n_pixels + 2 * MARGIN, rng=seed)[:, MARGIN:MARGIN + n_pixels]
    if static:  # a wall, a bright spot and a gain across the line that do not move
        x = np.arange(n_pixels, dtype=np.float64)
        wall = 500.0 * np.exp(-0.5 * ((x - 0.88 * (n_pixels - 1)) / 0.7) ** 2)
        spot = np.where(x == 2, 1000.0, 0.0)
        image = (image + wall + spot) * (0.8 + 0.4 * x / (n_pixels - 1))
    return image, speed


def median_errors(px_per_line, n_pixels, window_lines, *, static=False, seeds=(1, 2)):
    errs = []
    for seed in seeds:
        image, speed = narrow_kymograph(px_per_line, n_pixels, seed, static=static)
        out = lag_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=window_lines, background_lines=0)
        errs.append(out["px_per_line"] / window_truth_px_per_line(speed, window_lines) - 1.0)
    e = np.concatenate(errs)
    assert np.mean(np.isfinite(e)) > 0.95  # NaN: no usable lag (e.g. no cell in the window)
    return float(np.nanmedian(np.abs(e))), float(np.nanmedian(e))


@pytest.mark.parametrize("window_lines", [32, 64, 128])
@pytest.mark.parametrize("px_per_line", [0.3, 1.0, 2.0])
def test_seven_pixel_lines_within_two_percent(window_lines, px_per_line):
    abs_err, signed = median_errors(px_per_line, 7, window_lines)
    assert abs_err <= 0.02 and abs(signed) <= 0.01


@pytest.mark.parametrize("px_per_line", [0.5, 1.0, 2.0])
def test_seven_pixel_lines_short_windows(px_per_line):
    abs_err, signed = median_errors(px_per_line, 7, 16)
    assert abs_err <= 0.025 and abs(signed) <= 0.015


@pytest.mark.parametrize("px_per_line", [0.3, 1.5])
def test_static_background_does_not_bias(px_per_line):
    abs_err, signed = median_errors(px_per_line, 7, 32, static=True)
    assert abs_err <= 0.02 and abs(signed) <= 0.01


@pytest.mark.parametrize("n_pixels", [30, 100])
def test_wide_lines_within_one_percent(n_pixels):
    for px_per_line in (0.3, 2.0):
        abs_err, signed = median_errors(px_per_line, n_pixels, 16, seeds=(1,))
        assert abs_err <= 0.01 and abs(signed) <= 0.005


def test_direction_and_units():
    image, speed = narrow_kymograph(1.2, 7, 3)
    forward = lag_velocity(image, dx_um=0.8, dt_s=0.002, window_lines=32, background_lines=0)
    backward = lag_velocity(image[:, ::-1], dx_um=0.8, dt_s=0.002, window_lines=32, background_lines=0)
    assert np.nanmedian(forward["velocity_mm_s"]) == pytest.approx(1.2 * 0.8 / 0.002 / 1000, rel=0.02)
    np.testing.assert_allclose(backward["px_per_line"], -forward["px_per_line"], atol=1e-9)
    assert forward["time_s"][0] == pytest.approx(16 * 0.002)
    assert forward["time_s"].size == 3000 // 8 - 3


def test_too_fast_is_nan_not_a_wrong_number():
    image, _ = narrow_kymograph(5.0, 7, 4)  # beyond the 4-pixel shift range of a 7-pixel line
    out = lag_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=32, background_lines=0)
    finite = out["px_per_line"][np.isfinite(out["px_per_line"])]
    assert np.all(np.abs(finite) <= 4.0)


def test_running_mean_removes_a_static_column_pattern():
    pattern = np.array([0.0, 5.0, -3.0, 8.0])
    block = np.tile(pattern, (50, 1)) + 2.0
    np.testing.assert_allclose(subtract_running_mean(block, lines=10), 0.0, atol=1e-12)
    np.testing.assert_allclose(subtract_running_mean(block, lines=0), 0.0, atol=1e-12)


def test_bad_inputs_say_what_to_fix():
    image = np.ones((100, 7))
    with pytest.raises(ParameterError, match="window_lines"):
        lag_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=18)
    with pytest.raises(InputError, match="too short"):
        lag_velocity(np.ones((100, 3)), dx_um=0.5, dt_s=0.001)
    with pytest.raises(InputError, match="2-D"):
        lag_velocity(np.ones(100), dx_um=0.5, dt_s=0.001)


def test_running_mean_is_summed_in_chunks_with_the_same_answer_and_one_copy_of_memory(monkeypatch):
    """Chunks of lines give the whole-block formula's answer (exactly on integers, to rounding on
    floats), and the only block-sized allocation is the float64 result: the whole-block
    cumulative sum and its index gathers held about four more copies."""
    import tracemalloc

    import hpcacq.analyses.narrow_velocity as nv

    def whole_block(block, lines):
        block = np.asarray(block, dtype=np.float64)
        n = block.shape[0]
        c = np.concatenate((np.zeros((1, block.shape[1])), np.cumsum(block, axis=0)))
        t = np.arange(n)
        lo, hi = np.clip(t - lines // 2, 0, n), np.clip(t + lines // 2 + 1, 0, n)
        return block - (c[hi] - c[lo]) / (hi - lo)[:, None]

    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4000, (20000, 7)).astype(np.uint16)
    floats = rng.normal(1000.0, 30.0, (20000, 7))
    monkeypatch.setattr(nv, "_MEAN_CHUNK_LINES", 1000)
    for lines in (4096, 101, 1):
        np.testing.assert_array_equal(nv.subtract_running_mean(counts, lines=lines), whole_block(counts, lines))
        # the whole block's running sums reach 2e7, rounded to about 4e-9 (the chunks' are smaller)
        np.testing.assert_allclose(nv.subtract_running_mean(floats, lines=lines), whole_block(floats, lines),
                                   rtol=0, atol=1e-8)
    monkeypatch.setattr(nv, "_MEAN_CHUNK_LINES", 1 << 16)
    big = rng.integers(0, 4000, (1_000_000, 7)).astype(np.uint16)
    tracemalloc.start()
    nv.subtract_running_mean(big, lines=4096)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= 8 * big.size + 40e6, peak / big.size  # the result + a few 65 536-line chunks
