"""vessel_diameter: accuracy on vessels of known width, invariances, threads, cancel, errors."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from hpcacq.analyses.diameter import FLAG_BITS, DiameterOptions, vessel_diameter
from hpcacq.analyses.options import options_from_mapping
from hpcacq.errors import AnalysisCancelled, InputError, MissingUnitsError, ParameterError
from hpcacq.synth.diameter import make_vessel_kymograph, vasomotion

from helpers.naive_diameter import naive_bin, naive_halfmax, whole_pixel_diameter

WIDTHS = (4, 6, 8, 12, 16, 24, 32, 45, 60)
SIGMAS = (1.0, 1.5, 2.0)
UNITS = dict(dx_um=0.5, dt_s=0.001)


def _case(width, sigma, seed, n_centres=40, noise=0.02):
    """Vessels of one width at n_centres random sub-pixel positions, 10 lines each.

    The line spans the vessel plus its own width and 16 px of background (2w + 16 pixels);
    noise is ``noise`` x the lumen contrast per pixel before binning. Returns the image and
    the rows whose 5-line window lies inside one position (every 10th line from row 5).
    """
    rng = np.random.default_rng(seed)
    n_pixels = 2 * width + 16
    centre = np.repeat(rng.uniform(n_pixels / 2 - 3, n_pixels / 2 + 3, n_centres), 10)
    img = make_vessel_kymograph(10 * n_centres, n_pixels, diameter_px=width, center_px=centre,
                                psf_sigma_px=sigma, noise_sd=noise * 1000.0, amplitude=1000.0, rng=rng)
    return img, slice(5, None, 10)


@pytest.fixture(scope="module")
def grid_errors():
    """Diameter errors (px) of halfmax, fit and the whole-pixel method for every (width, sigma)."""
    out = {}
    for k, (w, s) in enumerate((w, s) for w in WIDTHS for s in SIGMAS):
        img, rows = _case(w, s, seed=k)
        hm = vessel_diameter(img, **UNITS).columns["diameter_px"][rows] - w
        fit = vessel_diameter(img, method="fit", **UNITS).columns["diameter_px"][rows] - w
        whole = np.array([whole_pixel_diameter(p) for p in naive_bin(img)[rows]]) - w
        out[w, s] = (hm, fit, whole)
    return out


def test_fit_error_is_within_0p15_px_down_to_4_psf_sigma(grid_errors):
    for (w, s), (_, fit, _) in grid_errors.items():
        if w >= 4 * s:
            assert np.isfinite(fit).all(), (w, s)
            assert np.mean(np.abs(fit)) <= 0.15, (w, s, np.mean(np.abs(fit)))


def _ideal_halfmax_width(width, sigma):
    """Full width at half maximum of a top-hat of this width blurred by a Gaussian (no noise)."""
    from scipy.optimize import brentq
    from scipy.special import erf

    def f(x):
        return 0.5 * (erf((x + width / 2) / (np.sqrt(2) * sigma)) - erf((x - width / 2) / (np.sqrt(2) * sigma)))

    half = 0.5 * f(0.0)
    return 2.0 * brentq(lambda x: f(x) - half, 0.0, 3.0 * width)


def test_halfmax_mean_error_over_widths_4_to_60_px_is_within_0p25_px(grid_errors):
    print("\nwidth px, PSF sigma px: mean |error| px of half-max, fit (NaN: no fit), whole-pixel")
    for (w, s), (hm, fit, whole) in grid_errors.items():
        print(f"{w:3d} {s:3.1f}  {np.mean(np.abs(hm)):.3f}  {np.mean(np.abs(fit)):.3f}  {np.mean(np.abs(whole)):.3f}")
    per_case = [np.mean(np.abs(hm)) for hm, _, _ in grid_errors.values()]
    assert all(np.isfinite(hm).all() for hm, _, _ in grid_errors.values())
    assert np.mean(per_case) <= 0.25, np.mean(per_case)


def test_halfmax_error_is_within_0p1_px_from_6_psf_sigma(grid_errors):
    for (w, s), (hm, _, _) in grid_errors.items():
        if w >= 6 * s:
            assert np.mean(np.abs(hm)) <= 0.1, (w, s, np.mean(np.abs(hm)))


def test_halfmax_reads_the_blurred_width_of_narrow_vessels(grid_errors):
    # below ~6 PSF sigma the half-maximum width of the blurred lumen exceeds the lumen
    # itself (physics, not the kernel): the measurement follows that known width
    for (w, s), (hm, _, _) in grid_errors.items():
        if w < 6 * s:
            ideal = _ideal_halfmax_width(w, s)
            assert ideal > w
            assert abs(np.mean(hm) + w - ideal) <= 0.15, (w, s, np.mean(hm) + w, ideal)


def test_kymflow_peak_level_overreads_narrow_vessels_more_than_the_default():
    # the 90th percentile of a line falls on the shoulder of a lumen covering < 10% of it
    img, rows = _case(4, 1.0, seed=0)
    default = vessel_diameter(img, **UNITS).columns["diameter_px"][rows] - 4
    kymflow = vessel_diameter(img, peak_percentile=90, **UNITS).columns["diameter_px"][rows] - 4
    assert np.mean(kymflow) > 0.5
    assert np.mean(np.abs(default)) < 0.25


def test_whole_pixel_method_reads_about_one_pixel_low(grid_errors):
    # kymflow's edges are whole pixels at or above the threshold: right - left ~ width - 1
    for (w, s), (hm, _, whole) in grid_errors.items():
        if w >= 12:
            assert -1.25 <= np.mean(whole) <= -0.75, (w, s, np.mean(whole))
            assert np.mean(np.abs(hm)) < 0.5 * np.mean(np.abs(whole))


def test_halfmax_overreads_narrow_vessels_where_the_fit_does_not(grid_errors):
    # documented limit: the half-maximum width of a blurred narrow lumen exceeds the lumen
    for (w, s), over in (((6, 2.0), 0.5), ((8, 2.0), 0.2)):
        hm, fit, _ = grid_errors[w, s]
        assert np.mean(hm) > over
        assert abs(np.mean(fit)) < 0.1


def test_fit_tracks_a_slowly_changing_diameter():
    truth = vasomotion(3000, mean_px=12.0, amplitude_px=3.0, period_lines=1000)
    img = make_vessel_kymograph(3000, 40, diameter_px=truth, psf_sigma_px=1.5, noise_sd=20.0, rng=1)
    res = vessel_diameter(img, method="fit", **UNITS)
    err = res.columns["diameter_px"] - truth
    assert np.sqrt(np.mean(err ** 2)) < 0.1
    assert res.summary["median_diameter_px"] == pytest.approx(np.median(truth), abs=0.1)
    assert res.summary["fraction_flagged"] == 0.0


@pytest.mark.parametrize("method, tol", [("halfmax", 0.03), ("fit", 0.002), ("gradient", 0.002)])
def test_diameter_does_not_depend_on_where_the_vessel_sits(method, tol):
    centres = np.repeat(15.0 + np.arange(40) * 0.37, 5)  # sub-pixel and whole-pixel shifts
    img = make_vessel_kymograph(200, 48, diameter_px=16.0, center_px=centres, psf_sigma_px=1.5)
    res = vessel_diameter(img, method=method, window_rows=1, **UNITS).columns
    d = res["diameter_px"]
    assert d.max() - d.min() < tol
    mid = 0.5 * (res["left_px"] + res["right_px"])
    np.testing.assert_allclose(mid, centres, atol=tol)


@pytest.mark.parametrize("method", ["halfmax", "fit", "gradient"])
def test_mirror_and_polarity_symmetry(method):
    img = make_vessel_kymograph(300, 41, diameter_px=vasomotion(300, mean_px=14, amplitude_px=2, period_lines=150),
                                center_px=17.3, psf_sigma_px=1.2, noise_sd=25.0, rng=4)
    ref = vessel_diameter(img, method=method, **UNITS).columns
    mirrored = vessel_diameter(img[:, ::-1], method=method, **UNITS).columns
    np.testing.assert_allclose(mirrored["diameter_px"], ref["diameter_px"], atol=1e-6)
    np.testing.assert_allclose(mirrored["left_px"], 40 - ref["right_px"], atol=1e-6)
    dark = vessel_diameter(3000.0 - img, method=method, polarity="dark", **UNITS).columns
    np.testing.assert_allclose(dark["diameter_px"], ref["diameter_px"], atol=1e-6)
    np.testing.assert_allclose(dark["left_px"], ref["left_px"], atol=1e-6)


def test_dark_vessel_read_as_bright_is_wrong_and_flagged_or_off():
    img = make_vessel_kymograph(50, 40, diameter_px=12.0, psf_sigma_px=1.0, polarity="dark")
    good = vessel_diameter(img, polarity="dark", **UNITS).columns["diameter_px"]
    np.testing.assert_allclose(good, 12.0, atol=0.1)
    wrong = vessel_diameter(img, **UNITS).columns
    assert (wrong["flags"] != 0).all()  # background touches both ends: no edges found


@pytest.mark.parametrize("method", ["halfmax", "fit", "gradient"])
def test_missing_edge_is_nan_and_flagged(method):
    img = make_vessel_kymograph(20, 30, diameter_px=20.0, center_px=25.0, psf_sigma_px=1.0)
    res = vessel_diameter(img, method=method, **UNITS).columns
    assert np.isnan(res["right_px"]).all() and np.isnan(res["diameter_um"]).all()
    if method in ("halfmax", "gradient"):
        np.testing.assert_allclose(res["left_px"], 15.0, atol=0.05)
    else:  # the fit needs both edges inside the line: it does not guess the left one alone
        assert np.isnan(res["left_px"]).all()
    assert (res["flags"] & FLAG_BITS["right_edge_missing"]).all()


def test_fit_flags_lines_without_a_vessel():
    noise = np.random.default_rng(8).normal(500.0, 30.0, size=(400, 40))
    vessel = make_vessel_kymograph(400, 40, diameter_px=12.0, psf_sigma_px=1.2, noise_sd=30.0, rng=8)
    bad = vessel_diameter(noise, method="fit", **UNITS)
    good = vessel_diameter(vessel, method="fit", **UNITS)
    assert bad.summary["fraction_flagged"] > 0.95
    assert good.summary["fraction_flagged"] == 0.0
    poor = (bad.columns["flags"] & FLAG_BITS["fit_poor"]) != 0
    assert poor.any() and (bad.columns["fit_quality"][poor] < 0.9).all()
    assert good.summary["median_fit_quality"] > 0.99


def test_columns_units_and_time():
    img = make_vessel_kymograph(40, 30, diameter_px=10.0, psf_sigma_px=1.0)
    res = vessel_diameter(img, dx_um=0.25, dt_s=0.002, row_offset=100)
    c = res.columns
    assert list(c) == ["time_s", "left_px", "right_px", "diameter_px", "left_um", "right_um",
                       "diameter_um", "fit_quality", "flags"]
    np.testing.assert_allclose(c["time_s"], (100 + np.arange(40)) * 0.002)
    np.testing.assert_allclose(c["diameter_um"], c["diameter_px"] * 0.25)
    np.testing.assert_allclose(c["left_um"], c["left_px"] * 0.25)
    assert np.isnan(c["fit_quality"]).all()
    assert res.units["diameter_um"] == "um" and res.units["time_s"] == "s"
    assert res.params["method"] == "halfmax" and res.params["dx_um"] == 0.25
    assert res.analysis == "diameter" and res.n_rows == 40
    fit = vessel_diameter(img, dx_um=0.25, dt_s=0.002, method="fit").columns
    assert (fit["fit_quality"] > 0.999).all()


def test_flag_bits_agree_with_the_kernel():
    from hpcacq.kernels.diameter import FLAG_BITS as KERNEL_BITS
    assert FLAG_BITS == KERNEL_BITS


@pytest.mark.parametrize("method", ["halfmax", "fit"])
def test_thread_count_does_not_change_results(method):
    rng = np.random.default_rng(2)
    n = 9000 if method == "halfmax" else 3000
    img = make_vessel_kymograph(n, 38, diameter_px=vasomotion(n, mean_px=13, amplitude_px=2, period_lines=700),
                                psf_sigma_px=1.3, noise_sd=30.0, rng=rng)
    ref = vessel_diameter(img, method=method, threads=1, **UNITS).columns  # one chunk
    chunked = dict(threads=1, progress=lambda done, total: None)  # 4 chunks: progress between them
    for options in ({"threads": 2}, {"threads": 3}, chunked):  # different chunk sizes each time
        got = vessel_diameter(img, method=method, **options, **UNITS).columns
        for name in ref:
            np.testing.assert_array_equal(got[name], ref[name])


def test_two_python_threads_at_once_give_identical_results():
    img = make_vessel_kymograph(4000, 38, diameter_px=11.0, psf_sigma_px=1.3, noise_sd=30.0, rng=3)
    expected = vessel_diameter(img, method="fit", **UNITS).columns["diameter_px"]
    out = [None, None]

    def run(k):
        out[k] = vessel_diameter(img, method="fit", threads=2, **UNITS).columns["diameter_px"]

    workers = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for got in out:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threads", [1, 2])
def test_cancel_between_chunks_and_progress(threads):
    img = make_vessel_kymograph(20000, 20, diameter_px=8.0, psf_sigma_px=1.0)
    seen = []

    def progress(done, total):
        seen.append((done, total))

    def cancel():
        return len(seen) >= 3

    with pytest.raises(AnalysisCancelled, match="cancelled"):
        vessel_diameter(img, method="fit", threads=threads, cancel=cancel, progress=progress, **UNITS)
    assert 3 <= len(seen) < 20000 // 1024  # stopped early, not after the last chunk
    seen.clear()
    vessel_diameter(img, progress=progress, **UNITS)
    assert seen[0] == (0, 20000) and seen[-1] == (20000, 20000)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


@pytest.mark.parametrize("image, kwargs, error, match", [
    (np.zeros((2, 10, 20)), {}, InputError, "2-D"),
    (np.full((10, 20), np.nan), {}, InputError, "NaN"),
    (np.zeros((10, 2)), {}, InputError, "at least 3 pixels"),
    (np.zeros((10, 5)), {"method": "fit"}, InputError, "at least 6 pixels"),
    (np.zeros((10, 20), dtype=complex), {}, InputError, "real numbers"),
    (np.zeros((10, 20)), {"method": "gauss"}, ParameterError, "'halfmax', 'fit'"),
    (np.zeros((10, 20)), {"polarity": "light"}, ParameterError, "'bright', 'dark'"),
    (np.zeros((10, 20)), {"binning": "max"}, ParameterError, "'mean', 'median'"),
    (np.zeros((10, 20)), {"window_rows": 4}, ParameterError, "odd"),
    (np.zeros((10, 20)), {"peak_percentile": 5.0}, ParameterError, "baseline_percentile < peak_percentile"),
    (np.zeros((10, 20)), {"threshold": 0.5}, ParameterError, "valid names are"),
    (np.zeros((10, 20)), {"threads": 0}, ParameterError, "threads"),
    (np.zeros((10, 20)), {"dx_um": None}, MissingUnitsError, "--dx-um"),
    (np.zeros((10, 20)), {"dt_s": -1.0}, ParameterError, "dt_s must be a finite number > 0, got -1.0"),
])
def test_bad_input_is_rejected_with_a_message(image, kwargs, error, match):
    args = dict(UNITS)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        vessel_diameter(image, **args)


def test_one_bad_pixel_anywhere_is_found_and_huge_finite_values_pass():
    # the finite check sums the block first (NaN/inf propagate) and only then tests each pixel
    rng = np.random.default_rng(3)
    for value in (np.nan, np.inf, -np.inf):
        img = rng.normal(100, 5, (3000, 38))
        img[2718, 29] = value
        with pytest.raises(InputError, match=r"1 NaN/inf pixel\(s\) \(first at line 2718, pixel 29\)"):
            vessel_diameter(img, **UNITS)
    img = rng.normal(100, 5, (3000, 38))
    img[10, 3], img[20, 4] = np.inf, -np.inf  # the sum is NaN, not inf
    with pytest.raises(InputError, match="2 NaN/inf"):
        vessel_diameter(img, **UNITS)
    huge = np.full((64, 38), 1e305)  # finite, but the sum overflows to inf
    huge[:, 10:28] = 1e306
    result = vessel_diameter(huge, **UNITS)
    assert np.allclose(result.columns["diameter_px"], 18.0, atol=1.0)


def test_options_from_mapping_and_frozen():
    p = options_from_mapping(DiameterOptions, {"method": "fit", "window_rows": 3})
    assert p.method == "fit" and p.window_rows == 3 and p.polarity == "bright"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.method = "halfmax"
    with pytest.raises(ParameterError, match="valid names are"):
        options_from_mapping(DiameterOptions, {"windowrows": 3})


def test_registry_runs_the_diameter_analysis():
    from hpcacq.analyses.options import Units
    from hpcacq.analyses.registry import build_options, get_spec

    spec = get_spec("diameter")
    options = build_options("diameter", {"method": "fit"})
    assert build_options("diameter", options) is options  # an options object is used as it is
    img = make_vessel_kymograph(30, 40, diameter_px=12.0, psf_sigma_px=1.0)
    res = spec.run(img, options, Units(dx_um=0.5, dt_s=0.001), row_offset=5, threads=1, cancel=None, progress=None)
    np.testing.assert_allclose(res.columns["diameter_px"], 12.0, atol=1e-3)
    assert res.columns["time_s"][0] == pytest.approx(0.005)


@pytest.mark.realdata
def test_kernel_matches_naive_reference_on_real_line_scans(realdata):
    """Real 12-bit noisy profiles (these scans run along capillaries, so this checks the
    arithmetic on real data, not a vessel width): kernel == naive loop, any thread count."""
    import tifffile

    img = tifffile.imread(realdata / "capillary1" / "Capillary1_0001.tif")
    res = vessel_diameter(img, dx_um=0.284, dt_s=0.0011699667, threads=2)
    left, right, flags = (v[:2000] for v in naive_halfmax(img[:2002]))  # 2 more: same windows
    np.testing.assert_allclose(res.columns["left_px"][:2000], left, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.columns["right_px"][:2000], right, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.columns["flags"][:2000], flags)
    one = vessel_diameter(img, dx_um=0.284, dt_s=0.0011699667, threads=1)
    np.testing.assert_array_equal(one.columns["diameter_px"], res.columns["diameter_px"])
    assert res.n_rows == 30000


@pytest.mark.parametrize("sigma", [0.0, 1.3])
def test_synthetic_vessel_holds_exactly_its_diameter(sigma):
    """The known answer itself: pixel values integrate the blurred lumen exactly."""
    diam = np.array([4.3, 7.77, 10.0, 15.5])
    img = make_vessel_kymograph(4, 40, diameter_px=diam, center_px=19.2, psf_sigma_px=sigma,
                                background=0.0, amplitude=1.0)
    np.testing.assert_allclose(img.sum(axis=1), diam, rtol=1e-12)  # lumen area is conserved
    # brute force: the blurred top-hat sampled finely and averaged over each pixel
    from scipy.special import erf

    x = np.linspace(-0.5, 39.5, 40 * 2000, endpoint=False) + 0.5 / 2000
    lo, hi = 19.2 - 7.75, 19.2 + 7.75
    fine = ((x >= lo) & (x <= hi)).astype(float) if sigma == 0 else \
        0.5 * (erf((x - lo) / (np.sqrt(2) * sigma)) - erf((x - hi) / (np.sqrt(2) * sigma)))
    np.testing.assert_allclose(img[3], fine.reshape(40, 2000).mean(axis=1), atol=1e-3 if sigma == 0 else 1e-7)
