"""When to trust a line_velocity window: the flags, the file warnings and the headline.

Known answers: pure noise (no speed exists: nothing may be trusted), synthetic lines cut
from a wider scan over static background with the speed we set, stalls we planted, and
the real recordings against kymflow's reference tables (docs/QUALITY.md, "line_velocity").
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.line_velocity import (
    CLEAN_REJECTED,
    COMMON_MODE,
    FLAG_BITS,
    LAGS_DISAGREE,
    NO_LAG,
    WEAK_CORRELATION,
    line_velocity,
    window_flags,
)
from hpcacq.errors import ParameterError
from hpcacq.synth.flow import make_flow_kymograph, stall_speed, window_truth_px_per_line

from helpers.realdata import HUGE_MM_S, local_reference, real_files

DX_UM, DT_S = 0.5, 0.001
STATIC = {
    "none": {},
    "walls": dict(walls=1.5, illumination=0.3, bleach=0.1),
    "spots": dict(spots=4.0, n_spots=2),
    "illumination": dict(illumination=1.2, bleach=0.3),
    "mild": dict(walls=0.3, spots=0.5, n_spots=1, illumination=0.4, bleach=0.1),
}


def cut_out(speed: np.ndarray, n_pixels: int, seed: int, **static) -> np.ndarray:
    """``n_pixels`` columns from the middle of a scan 20 pixels wider (no artificial line ends)."""
    return np.ascontiguousarray(make_flow_kymograph(speed, n_pixels + 20, rng=seed, **static)[:, 10:10 + n_pixels])


def _speed(n_lines: int, base: float) -> np.ndarray:
    return base * (1 + 0.3 * np.sin(np.arange(n_lines) / 700.0))


@pytest.mark.parametrize("window_lines", [16, 64])
@pytest.mark.parametrize("n_pixels", [7, 20, 150])
def test_pure_noise_is_never_trusted_and_the_file_is_doubtful(n_pixels, window_lines):
    """No streaks: each window's peak is a chance one. Before the flags about half the windows
    had a finite, random speed, and the file's headline was their median with no warning.
    Measured on 20 000 lines: at most 0.2 % trusted at 7-150 px and W = 16-128."""
    noise = np.random.default_rng(n_pixels + window_lines).normal(1000.0, 30.0, (6000, n_pixels))
    result = line_velocity(noise, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines)
    assert result.summary["fraction_trusted"] <= 0.01
    assert result.summary["fraction_weak_correlation"] >= 0.95
    trusted = result.columns["flags"] == 0
    if trusted.any():  # the headline is the median of the trusted windows, and only of them
        assert result.summary["median_velocity_mm_s"] == np.median(result.columns["velocity_mm_s"][trusted])
    else:
        assert np.isnan(result.summary["median_velocity_mm_s"])
    assert len(result.warnings) == 1 and "no better than noise" in result.warnings[0], result.warnings


def test_a_stretch_without_cells_is_flagged_where_it_is_and_the_rest_is_kept():
    speed = np.full(6000, 0.8)
    image = cut_out(speed, 12, 3)
    rng = np.random.default_rng(3)
    image[2000:3500] = rng.normal(image.mean(), 30.0, (1500, 12))  # plasma only: nothing moves in view
    result = line_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=32)
    flags, v = result.columns["flags"], result.columns["px_per_line"]
    start = np.arange(result.n_rows) * 8
    inside = (start >= 2000) & (start + 32 <= 3500)
    outside = (start + 32 <= 2000) | (start >= 3500)
    assert np.mean(flags[inside] != 0) >= 0.98
    assert np.mean(flags[outside] == 0) >= 0.97
    assert np.median(np.abs(v[outside & (flags == 0)] / 0.8 - 1)) <= 0.01
    assert abs(result.summary["median_px_per_line"] / 0.8 - 1) <= 0.01
    assert result.warnings == []  # most of the file is measured


# Measured (tools: the loop below over 7, 12, 20, 38, 150 px x W = 16, 32, 64, 128 x the 5
# backgrounds, 4000 lines at 0.6 px/line (1.2 from 38 px) +-30 %): per case median |error| of
# the trusted windows 1.4-1.8 % at 7 px and W = 16, <= 1.2 % everywhere else; flagged
# windows: weak_correlation 2.0 % of windows (median error 0.34), lags_disagree 4.1 % (0.038),
# clean_rejected 1.2 % (0.33) against 0.002 for the trusted ones; trusted 78-79 % of the
# windows at 7 px and W = 16 (some windows see no cell), 87-89 % at 20 px and W = 16, >= 98 %
# from W = 32. Asserted on a subset.
@pytest.mark.parametrize("n_pixels, window_lines", [(7, 16), (7, 128), (12, 32), (20, 16), (38, 64), (150, 32)])
def test_static_background_on_lines_of_7_to_150_pixels(n_pixels, window_lines):
    """The issue's synthetic acceptance: no trusted 0 mm/s, median error of trusted windows <= 2 %."""
    base = 0.6 if n_pixels <= 20 else 1.2
    speed = _speed(4000, base)
    truth = window_truth_px_per_line(speed, window_lines)
    for case, static in STATIC.items():
        result = line_velocity(cut_out(speed, n_pixels, n_pixels + window_lines, **static), dx_um=DX_UM, dt_s=DT_S,
                               window_lines=window_lines)
        v, trusted = result.columns["px_per_line"], result.columns["flags"] == 0
        assert not np.any(trusted & (np.abs(v) < 0.5 * truth)), case  # no trusted window near 0 mm/s
        assert trusted.mean() >= 0.75, (case, result.summary)  # measured 0.78-0.79 at 7 px, W = 16; >= 0.87 elsewhere
        assert np.median(np.abs(v[trusted] / truth[trusted] - 1)) <= 0.02, case
        assert abs(result.summary["median_px_per_line"] / np.median(truth[trusted]) - 1) <= 0.02, case
        assert result.warnings == [], (case, result.warnings)


@pytest.mark.parametrize("n_pixels, window_lines", [(7, 16), (7, 64), (20, 16), (38, 16), (150, 32)])
def test_stalls_read_about_zero_and_are_trusted_where_stopped_cells_are_seen(n_pixels, window_lines):
    """A 0.5 s stall over strong walls. Measured over seeds 5-8: trusted stall windows read at most
    5 % of the flow's speed at W = 16 (0.5 % from W = 64); a 7 or 12-px line with no stopped cell
    in view (seed 6) has nothing to correlate and its stall windows are flagged weak_correlation,
    never trusted. Before the no-shift rule, 20-px stalls read -13 px/line by a chance 7-pixel match."""
    speed = stall_speed(4000, px_per_line=0.6, stall_start=1500, stall_lines=500)
    for seed in (5, 7, 8):
        result = line_velocity(cut_out(speed, n_pixels, seed, walls=1.5, illumination=0.3), dx_um=DX_UM, dt_s=DT_S,
                               window_lines=window_lines)
        step = window_lines // 4
        stalled = np.array([speed[k * step:k * step + window_lines].max() == 0 for k in range(result.n_rows)])
        flags, v = result.columns["flags"][stalled], result.columns["px_per_line"][stalled]
        assert np.mean(flags == 0) >= 0.9, (seed, np.unique(flags, return_counts=True))
        assert np.abs(v[flags == 0]).max() <= (0.05 if window_lines == 16 else 0.01) * 0.6
    blind = line_velocity(cut_out(speed, 7, 6, walls=1.5, illumination=0.3), dx_um=DX_UM, dt_s=DT_S, window_lines=16)
    step = 4
    stalled = np.array([speed[k * step:k * step + 16].max() == 0 for k in range(blind.n_rows)])
    assert np.all(blind.columns["flags"][stalled] & WEAK_CORRELATION)


def test_flow_too_fast_for_the_line_is_never_trusted_and_the_warning_says_so():
    """At about twice the fastest measurable speed the true peak is outside the shift range:
    what is left correlates like noise (measured: 0-3 % trusted)."""
    for n_pixels, speed in ((7, 6.0), (12, 12.0), (38, 28.0)):
        image = cut_out(np.full(4000, speed), n_pixels, 1)
        result = line_velocity(image, dx_um=DX_UM, dt_s=DT_S)
        assert result.summary["fraction_trusted"] <= 0.05, n_pixels
        limit = min(n_pixels - 3, 24) - 1  # shift range (min_overlap_px = 3, at most 24) less one
        assert len(result.warnings) == 1 and f"faster than the measurable {limit} px per line" in result.warnings[0]
        if n_pixels - 3 <= 24:  # the line itself is the limit
            assert "use a wider ROI or a higher line rate" in result.warnings[0], result.warnings
        else:  # the default 24-pixel shift cap is: raising it measures the speed
            assert "raise max_shift_px (now 24; these lines allow up to 35)" in result.warnings[0], result.warnings
            wider = line_velocity(image, dx_um=DX_UM, dt_s=DT_S, max_shift_px=34)
            assert wider.warnings == [] and abs(wider.summary["median_px_per_line"] / speed - 1) <= 0.01


def test_stop_and_go_flow_is_measured_without_a_noise_warning():
    """Cells stopped two thirds of the time: the stopped windows read about 0 (a ratio to a local
    median of about 0 is not dispersion), the moving ones their speed; no warning."""
    speed = np.full(8000, 0.8)
    for start in range(0, 8000, 900):
        speed[start + 300:start + 900] = 0.0
    result = line_velocity(cut_out(speed, 20, 2), dx_um=DX_UM, dt_s=DT_S)
    v, trusted = result.columns["px_per_line"], result.columns["flags"] == 0
    start = np.arange(result.n_rows) * 8
    moving = np.array([speed[k:k + 32].min() == 0.8 for k in start])
    stopped = np.array([speed[k:k + 32].max() == 0.0 for k in start])
    assert trusted.mean() >= 0.9 and result.warnings == []
    assert np.median(np.abs(v[moving & trusted] / 0.8 - 1)) <= 0.01
    assert np.abs(v[stopped & trusted]).max() <= 0.03


def test_window_flags_follow_the_rule():
    speed = np.array([1.0, np.nan, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0])
    peak_z = np.array([9.0, 9.0, 3.9, np.nan, 9.0, 4.0, 9.0, 9.0])
    tried = np.array([6, 6, 6, 6, 6, 1, 6, 6])
    kept = np.array([6, 0, 6, 6, 2, 1, 6, 6])
    centred = np.array([9.0, 9.0, 1.0, 1.0, 9.0, 3.0, 2.9, np.nan])
    flags = window_flags(speed, peak_z, tried, kept, centred, min_peak_z=4.0)
    np.testing.assert_array_equal(flags, [0, NO_LAG | LAGS_DISAGREE, WEAK_CORRELATION, WEAK_CORRELATION,
                                          LAGS_DISAGREE, 0, COMMON_MODE, COMMON_MODE])
    # a lower min_peak_z lowers the common_mode floor with it (never stricter than min_peak_z)
    np.testing.assert_array_equal(window_flags(speed, peak_z, tried, kept, centred, min_peak_z=2.0)[6:], [0, COMMON_MODE])
    assert FLAG_BITS == {"no_lag": NO_LAG, "weak_correlation": WEAK_CORRELATION, "lags_disagree": LAGS_DISAGREE,
                         "clean_rejected": CLEAN_REJECTED, "common_mode": COMMON_MODE}
    noise = np.random.default_rng(0).normal(1000.0, 30.0, (3000, 12))
    off = line_velocity(noise, dx_um=DX_UM, dt_s=DT_S, min_peak_z=0)
    assert off.summary["fraction_weak_correlation"] == 0.0  # 0 disables the flag
    assert off.summary["fraction_common_mode"] == 0.0 and off.summary["min_line_centred_z"] == 0.0
    on = line_velocity(noise, dx_um=DX_UM, dt_s=DT_S)  # the stored result says which thresholds made its flags
    assert on.summary["min_line_centred_z"] == 3.0 and on.summary["stopped_px_per_line"] == 0.1
    np.testing.assert_array_equal(window_flags(speed, peak_z, tried, kept, centred, min_peak_z=0.0),
                                  [0, NO_LAG | LAGS_DISAGREE, 0, 0, LAGS_DISAGREE, 0, 0, 0])
    with pytest.raises(ParameterError, match="min_peak_z"):
        line_velocity(noise, dx_um=DX_UM, dt_s=DT_S, min_peak_z=-1)


def _flicker(n_lines: int, sd: float, seed: int) -> np.ndarray:
    """Brightness common to a whole line, drifting over about ten lines (AR(1), rho = 0.9)."""
    e = np.random.default_rng(seed).normal(0.0, 1.0, n_lines)
    f = np.zeros(n_lines)
    for i in range(1, n_lines):
        f[i] = 0.9 * f[i - 1] + e[i]
    return sd * f / f.std()


@pytest.mark.parametrize("n_pixels", [7, 20])
def test_line_flicker_over_a_cell_free_stretch_is_not_trusted(n_pixels):
    """Flicker of one pixel-noise SD common to the whole line correlates at every shift. Measured
    (3 seeds, 7 and 20 px): without the common_mode flag 7-20 % of the cell-free windows were
    trusted at random speeds, with it 0-1.6 %; the flowing part is trusted on 93-97 % either way."""
    n = 8000
    image = cut_out(np.full(n, 0.6), n_pixels, 3, walls=1.5)
    rng = np.random.default_rng(n_pixels)
    image[3000:5000] = rng.normal(image.mean(), 30.0, (2000, n_pixels))
    image += _flicker(n, 30.0, n_pixels)[:, None]
    result = line_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    flags, v = result.columns["flags"], result.columns["px_per_line"]
    start = np.arange(result.n_rows) * 8
    gap = (start >= 3000) & (start + 32 <= 5000)
    flowing = (start + 32 <= 3000) | (start >= 5000)
    assert np.mean(flags[gap] == 0) <= 0.03
    assert np.mean(flags[gap] & (WEAK_CORRELATION | COMMON_MODE) != 0) >= 0.95
    assert np.mean(flags[flowing] == 0) >= 0.9
    assert np.median(np.abs(v[flowing & (flags == 0)] / 0.6 - 1)) <= 0.02  # measured 1.1 % at 7 px


@pytest.mark.realdata
@pytest.mark.parametrize("window_lines", [16, 32])
def test_flags_and_headline_on_every_real_recording(realdata, window_lines):
    """Lines of 10 px and more: headline within 5 % of kymflow's median (measured -4.1 to +4.1 %);
    the 7-px files read 13-18 % faster than kymflow, whose Radon search reads narrow lines slow
    (docs/QUALITY.md). No flag on more than a quarter of the windows, no warning, and every
    flag with at least 20 finite windows marks windows at least 1.5 x further from kymflow's
    local median than the trusted ones (measured 1.6-11 x)."""
    for name, block, ref, r0 in real_files(realdata):
        result = line_velocity(block, dx_um=ref["delx"], dt_s=ref["delt"], window_lines=window_lines,
                               row_offset=r0, threads=2)
        v = ref["velocity"]
        reference = float(np.median(v[np.isfinite(v) & (np.abs(v) <= HUGE_MM_S) & (v != 0)]))
        ratio = result.summary["median_velocity_mm_s"] / reference - 1
        print(f"\n{name} W={window_lines}: {ratio:+.1%} against kymflow, trusted {result.summary['fraction_trusted']:.1%}")
        if block.shape[1] >= 10:
            assert abs(ratio) <= 0.05, name
        else:
            assert 0.05 < ratio < 0.20, name
        assert result.warnings == [], (name, result.warnings)
        local = np.interp(result.columns["time_s"], ref["time"], local_reference(v, ref["delt"]))
        err = np.abs(result.columns["velocity_mm_s"] / local - 1)
        flags = result.columns["flags"]
        trusted_err = np.nanmedian(err[flags == 0])
        for flag, bit in FLAG_BITS.items():
            marked = (flags & bit) != 0
            assert marked.mean() <= 0.25, (name, flag)
            if np.isfinite(err[marked]).sum() >= 20:
                assert np.nanmedian(err[marked]) >= 1.5 * trusted_err, (name, flag)
