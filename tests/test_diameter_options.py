"""Diameter options beyond the defaults (acqstore's schema): stride, median binning, absolute
threshold, gradient edges, motion gating, post filter; and diameter saying when it sees no vessel.

Accuracy is measured on synthetic vessels whose edges are known exactly (sub-pixel widths
and centres, Gaussian PSF, noise), including vessels that move and lines that jerk.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.acqstore_diameter import diameter_params_from_acqstore
from hpcacq.analyses.diameter import FLAG_BITS, vessel_diameter
from hpcacq.kernels import diameter as kern
from hpcacq.kernels.diameter_series import motion_gate, running_median
from hpcacq.synth.diameter import make_moving_vessel, make_vessel_kymograph, vasomotion
from hpcacq.synth.velocity import make_velocity_kymograph

from helpers.naive_diameter import naive_bin, naive_gradient_profile, naive_motion_gate, naive_threshold_profile

UNITS = dict(dx_um=0.5, dt_s=0.001)
WIDTHS = (6.3, 9.7, 14.2, 21.5, 33.8)
SIGMAS = (1.0, 1.5, 2.0)
REJECTED = FLAG_BITS["motion_rejected"]
# threshold at the true half level of make_vessel_kymograph's default background 100 + amplitude 1000
METHODS = {
    "halfmax": ({}, 0.08, 0.15),
    "halfmax_median": (dict(binning="median"), 0.09, 0.16),
    "halfmax_stride3": (dict(stride=3), 0.08, 0.15),
    "absolute": (dict(threshold_mode="absolute", threshold_value=600.0), 0.04, 0.06),
    "fit": (dict(method="fit"), 0.04, 0.07),
    "gradient": (dict(method="gradient"), 0.08, 0.14),
    "gradient_gated": (dict(method="gradient", motion_gating=True), 0.08, 0.14),
}


def _grid_case(width, sigma, seed, n_pos=40):
    """A vessel at n_pos random sub-pixel centres, 10 lines each; 2 % noise per pixel."""
    rng = np.random.default_rng(seed)
    n_pixels = int(2 * width + 16)
    centre = np.repeat(rng.uniform(n_pixels / 2 - 3, n_pixels / 2 + 3, n_pos), 10)
    img = make_vessel_kymograph(10 * n_pos, n_pixels, diameter_px=width, center_px=centre,
                                psf_sigma_px=sigma, noise_sd=20.0, rng=rng)
    return img, centre


def _grid_errors(options):
    """|edge error| and |diameter error| (px) over the grid, lines whose 5-line window sits at one centre."""
    edges, diams = [], []
    for k, (w, s) in enumerate((w, s) for w in WIDTHS for s in SIGMAS):
        img, centre = _grid_case(w, s, seed=k)
        res = vessel_diameter(img, **UNITS, **options).columns
        rows = np.arange(0, img.shape[0], options.get("stride", 1))
        keep = (rows % 10 >= 2) & (rows % 10 <= 7)
        c = centre[rows][keep]
        edges.append(np.abs(np.r_[res["left_px"][keep] - (c - w / 2), res["right_px"][keep] - (c + w / 2)]))
        diams.append(np.abs(res["diameter_px"][keep] - w))
    return np.concatenate(edges), np.concatenate(diams)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_finds_known_edges_on_blurred_sub_pixel_vessels(name):
    options, edge_tol, diam_tol = METHODS[name]
    edges, diams = _grid_errors(options)
    assert np.isfinite(diams).all()
    assert edges.mean() <= edge_tol and diams.mean() <= diam_tol, (name, edges.mean(), diams.mean())


def test_gradient_edges_of_wide_vessels_are_exact_to_a_few_thousandths_without_noise():
    width = np.array([12.3, 17.7, 25.2, 33.5])
    centre = np.array([29.1, 30.6, 28.35, 31.9])
    img = make_vessel_kymograph(4, 70, diameter_px=width, center_px=centre, psf_sigma_px=1.0)
    left, right, s_left, s_right, flags = kern.gradient_edges(img, window_rows=1)
    np.testing.assert_allclose(left, centre - width / 2, atol=2e-3)
    np.testing.assert_allclose(right, centre + width / 2, atol=2e-3)
    assert (flags == 0).all() and (s_left > 0).all() and (s_right > 0).all()


@pytest.mark.parametrize("binning, polarity, sigma", [("mean", "bright", 1.5), ("median", "dark", 1.0),
                                                      ("mean", "dark", 0.0), ("median", "bright", 2.5)])
def test_gradient_kernel_matches_naive_reference(binning, polarity, sigma):
    rng = np.random.default_rng(7)
    img = make_vessel_kymograph(300, 40, diameter_px=rng.uniform(3, 20, 300), center_px=rng.uniform(12, 28, 300),
                                psf_sigma_px=1.2, noise_sd=150.0, polarity=polarity, rng=rng)
    prof = naive_bin(img, 5, binning, polarity)
    left, right, _, _, flags = kern.gradient_edges(img, binning=binning, polarity=polarity, sigma_px=sigma,
                                                    min_strength=40.0)
    ref = np.array([naive_gradient_profile(p, sigma, 40.0) for p in prof])
    np.testing.assert_allclose(left, ref[:, 0], atol=1e-9)
    np.testing.assert_allclose(right, ref[:, 1], atol=1e-9)
    np.testing.assert_array_equal(flags, ref[:, 2].astype(int))


@pytest.mark.parametrize("polarity", ["bright", "dark"])
def test_absolute_threshold_matches_naive_and_is_in_image_units(polarity):
    rng = np.random.default_rng(3)
    img = make_vessel_kymograph(200, 40, diameter_px=rng.uniform(4, 18, 200), center_px=20.2, psf_sigma_px=1.0,
                                noise_sd=30.0, polarity=polarity, rng=rng)
    thr = 700.0 if polarity == "bright" else 400.0  # lumen >= 700, or (dark lumen) <= 400
    left, right, flags = kern.halfmax_edges(img, polarity=polarity, threshold_value=thr)
    prof = naive_bin(img, 5, "mean", "bright")
    ref = np.array([naive_threshold_profile(p if polarity == "bright" else -p, thr if polarity == "bright" else -thr)
                    for p in prof])
    np.testing.assert_allclose(left, ref[:, 0], atol=1e-9)
    np.testing.assert_allclose(right, ref[:, 1], atol=1e-9)
    np.testing.assert_array_equal(flags, ref[:, 2].astype(int))
    none = kern.halfmax_edges(img, polarity=polarity, threshold_value=1e6 if polarity == "bright" else -1e6)
    assert np.isnan(none[0]).all() and (none[2] == 3).all()  # no pixel reaches it: no lumen


@pytest.mark.parametrize("options", [{}, dict(binning="median"), dict(method="fit"), dict(method="gradient"),
                                     dict(threshold_mode="absolute", threshold_value=500.0)])
@pytest.mark.parametrize("stride", [2, 7, 100])
def test_stride_rows_are_the_every_line_rows(options, stride):
    rng = np.random.default_rng(stride)
    img = make_vessel_kymograph(700, 36, diameter_px=vasomotion(700, mean_px=12, amplitude_px=3, period_lines=300),
                                psf_sigma_px=1.3, noise_sd=40.0, rng=rng)
    every = vessel_diameter(img, **UNITS, row_offset=3, **options).columns
    some = vessel_diameter(img, **UNITS, row_offset=3, stride=stride, threads=2, progress=lambda d, t: None,
                           **options).columns
    for name in ("left_px", "right_px", "flags", "time_s"):
        np.testing.assert_array_equal(some[name], every[name][::stride], err_msg=name)
    assert some["time_s"][1] == pytest.approx((3 + stride) * UNITS["dt_s"])


def test_median_binning_ignores_a_spike_line_that_the_mean_does_not():
    img = make_vessel_kymograph(400, 40, diameter_px=14.6, center_px=19.3, psf_sigma_px=1.2, noise_sd=10.0, rng=1)
    img[::10, 3] += 20000.0  # one hot pixel every 10th line, in the background
    mean = vessel_diameter(img, **UNITS).columns["diameter_px"]
    median = vessel_diameter(img, **UNITS, binning="median").columns["diameter_px"]
    assert np.nanmean(np.abs(median - 14.6)) < 0.05
    assert np.isnan(mean).mean() > 0.4 or np.nanmean(np.abs(mean - 14.6)) > 1.0


def _moving(seed=3, glitches=0.03):
    n = 6000
    return make_moving_vessel(n, 64, diameter_px=vasomotion(n, mean_px=14.3, amplitude_px=2.0, period_lines=2500),
                              center_px=vasomotion(n, mean_px=31.7, amplitude_px=6.0, period_lines=1700),
                              glitch_fraction=glitches, glitch_shift_px=10.0, noise_sd=30.0, rng=seed)


@pytest.mark.parametrize("method", ["halfmax", "gradient", "fit"])
def test_motion_gating_rejects_jerks_and_keeps_a_moving_vessel(method):
    img, left, right, glitch = _moving()
    opts = dict(**UNITS, window_rows=1, method=method)
    raw = vessel_diameter(img, **opts).columns
    gated = vessel_diameter(img, **opts, motion_gating=True).columns
    rejected = (gated["flags"] & REJECTED) != 0
    assert rejected[glitch].all() and rejected[~glitch].mean() < 0.002
    err_raw = np.abs(np.r_[raw["left_px"] - left, raw["right_px"] - right])
    err = np.abs(np.r_[gated["left_px"] - left, gated["right_px"] - right])
    assert np.nanmean(err_raw) > 0.3 and np.nanmean(err) < 0.1 and np.nanmax(err) < 0.6
    assert np.isnan(gated["diameter_px"][glitch]).all()


def test_motion_gating_finds_a_vessel_that_really_moved_after_a_few_lines():
    n = 2000
    centre = np.where(np.arange(n) < 1000, 25.3, 37.8)  # a real, lasting 12.5 px shift at line 1000
    img = make_vessel_kymograph(n, 64, diameter_px=12.4, center_px=centre, psf_sigma_px=1.2, noise_sd=10.0, rng=2)
    res = vessel_diameter(img, **UNITS, window_rows=1, method="gradient", motion_gating=True).columns
    rejected = np.flatnonzero(res["flags"] & REJECTED)
    limit_px = 2.0 / UNITS["dx_um"]  # default 2 um per line
    assert rejected.min() >= 1000 and rejected.max() < 1000 + int(np.ceil(12.5 / limit_px))
    after = res["diameter_px"][1004:]
    assert np.isfinite(after).all() and np.mean(np.abs(after - 12.4)) < 0.05


def test_motion_gate_kernel_matches_naive_loops():
    rng = np.random.default_rng(0)
    left = np.cumsum(rng.normal(0, 1.0, 3000)) * 0.2 + 10
    right = left + 15 + rng.normal(0, 1.5, 3000)
    left[rng.random(3000) < 0.1] = np.nan
    right[rng.random(3000) < 0.05] = np.nan
    ref_l, ref_r, ref_rej = naive_motion_gate(left, right, 0.8, 1.5, 0.6)
    flags = np.zeros(3000, np.int32)
    motion_gate(left, right, flags, max_edge_shift_px=0.8, max_diameter_change_px=1.5, max_center_shift_px=0.6)
    np.testing.assert_array_equal(left, ref_l)
    np.testing.assert_array_equal(right, ref_r)
    np.testing.assert_array_equal(flags != 0, ref_rej)
    assert 0.05 < ref_rej.mean() < 0.95


def test_running_median_matches_numpy_and_keeps_gaps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    x[rng.random(500) < 0.2] = np.nan
    for size in (1, 3, 5, 9):
        h = size // 2
        ref = np.array([np.nan if np.isnan(x[i]) else np.nanmedian(x[max(i - h, 0):i + h + 1]) for i in range(500)])
        np.testing.assert_array_equal(running_median(x, size=size), ref)


def test_post_filter_reduces_noise_and_keeps_the_unfiltered_diameter():
    img, left, right, _ = _moving(glitches=0.0)
    plain = vessel_diameter(img, **UNITS, window_rows=1)
    filt = vessel_diameter(img, **UNITS, window_rows=1, post_filter_lines=9)
    np.testing.assert_array_equal(filt.columns["diameter_px"], plain.columns["diameter_px"])
    truth = right - left
    err_raw = np.nanmean(np.abs(plain.columns["diameter_px"] - truth))
    err_filt = np.nanmean(np.abs(filt.columns["diameter_filtered_px"] - truth))
    assert err_filt < 0.6 * err_raw
    np.testing.assert_allclose(filt.columns["diameter_filtered_um"], filt.columns["diameter_filtered_px"] * 0.5)
    assert "diameter_filtered_px" not in plain.columns and filt.units["diameter_filtered_um"] == "um"


def test_weak_edges_are_nan_and_flagged():
    img = make_vessel_kymograph(300, 40, diameter_px=14.2, psf_sigma_px=1.5, noise_sd=20.0, rng=4)
    res = vessel_diameter(img, **UNITS, method="gradient").columns
    typical = np.median(np.r_[res["left_strength"], res["right_strength"]])
    strict = vessel_diameter(img, **UNITS, method="gradient", gradient_min_strength=2 * typical).columns
    assert np.isnan(strict["diameter_px"]).all() and (strict["flags"] & FLAG_BITS["weak_edge"]).all()
    loose = vessel_diameter(img, **UNITS, method="gradient", gradient_min_strength=0.5 * typical).columns
    np.testing.assert_array_equal(loose["diameter_px"], res["diameter_px"])


@pytest.mark.parametrize("options", [{}, dict(method="gradient", motion_gating=True, post_filter_lines=5,
                                              binning="median", stride=3)])
def test_threads_and_chunks_do_not_change_the_new_options(options):
    img, _, _, _ = _moving()
    one = vessel_diameter(img, **UNITS, **options).columns
    many = vessel_diameter(img, **UNITS, threads=3, progress=lambda d, t: None, **options).columns
    for name in one:
        np.testing.assert_array_equal(one[name], many[name], err_msg=name)


@pytest.mark.parametrize("method", ["halfmax", "gradient", "fit"])
def test_a_scan_along_the_vessel_is_doubtful_and_one_across_is_not(method):
    along = make_velocity_kymograph(600, 38, px_per_line=1.5, rng=5)  # lumen over the whole line
    res = vessel_diameter(along, **UNITS, method=method)
    assert res.summary["fraction_with_edges"] < 0.5
    assert len(res.warnings) == 1 and "ACROSS the vessel" in res.warnings[0]
    across = make_vessel_kymograph(600, 38, diameter_px=14.0, psf_sigma_px=1.0, noise_sd=30.0, rng=5)
    good = vessel_diameter(across, **UNITS, method=method)
    assert good.summary["fraction_with_edges"] == 1.0 and good.warnings == []
    assert good.summary["n_lines_with_edges"] == 600.0


def test_acqstore_parameters_run_every_method():
    img, left, right, glitch = _moving()
    for params in ({}, {"diameter_method": "gradient_edges"}, {"binning_method": "median", "stride": 2},
                   {"threshold_mode": "absolute", "threshold_value": 600.0, "window_rows_odd": 1}):
        res = vessel_diameter(img, **UNITS, **diameter_params_from_acqstore(params))
        assert "diameter_filtered_px" in res.columns  # acqstore's default 3-line post filter
        rows = np.arange(0, len(left), params.get("stride", 1))
        ok = ~glitch[rows]
        err = np.abs(res.columns["diameter_px"] - (right - left)[rows])[ok]
        assert np.nanmean(err) < 0.2, params


@pytest.mark.realdata
def test_real_scans_along_capillaries_are_flagged_doubtful(realdata):
    """The realdata scans run ALONG capillaries: diameter must say it saw (almost) no vessel edge."""
    import tifffile

    files = [("capillary1/Capillary1_0001.tif", 0.284)] + [
        (f"a89/20250722_A89_000{k}.tif", 0.45 if k < 5 else 0.829) for k in range(2, 7)]
    for name, dx in files:
        img = tifffile.imread(realdata / name)
        for options in ({}, diameter_params_from_acqstore({"diameter_method": "gradient_edges"})):
            res = vessel_diameter(img, dx_um=dx, dt_s=0.00113, **options)
            assert res.summary["fraction_with_edges"] < 0.35, (name, options)
            assert res.warnings and "ACROSS the vessel" in res.warnings[0], name
