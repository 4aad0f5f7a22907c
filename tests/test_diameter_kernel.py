"""The diameter kernels against the naive loop references, hand-picked and random inputs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hpcacq.kernels import diameter as kd
from hpcacq.synth.diameter import make_vessel_kymograph

from helpers.naive_diameter import naive_bin, naive_halfmax, reference_fit, tophat_model


def _vessel_image(rng, n_lines=120, n_pixels=40, noise_sd=20.0):
    """Random vessels: width, centre, blur and noise change every few lines."""
    blocks = -(-n_lines // 6)
    width = np.repeat(rng.uniform(4, 0.6 * n_pixels, blocks), 6)[:n_lines]
    centre = np.repeat(rng.uniform(0.35 * n_pixels, 0.65 * n_pixels, blocks), 6)[:n_lines]
    return make_vessel_kymograph(n_lines, n_pixels, diameter_px=width, center_px=centre,
                                 psf_sigma_px=float(rng.uniform(0.5, 2.0)), noise_sd=noise_sd, rng=rng)


def test_hand_picked_profiles_give_known_edges():
    # threshold 5 (baseline 0, peak 10): crossings half-way between pixels 2|3 and 5|6
    img = np.tile([0, 0, 0, 10, 10, 10, 0, 0, 0], (3, 1))
    left, right, flags = kd.halfmax_edges(img)
    np.testing.assert_allclose(left, 2.5)
    np.testing.assert_allclose(right, 5.5)
    assert not flags.any()
    # asymmetric: left crossing 1/6 of the way from 4 to 10, right 1/6 from 6 down to 0
    img = np.tile([0, 0, 4, 10, 10, 6, 0, 0, 0], (1, 1))
    left, right, _ = kd.halfmax_edges(img, window_rows=1)
    np.testing.assert_allclose([left[0], right[0]], [2 + 1 / 6, 5 + 1 / 6], rtol=0, atol=1e-12)


@pytest.mark.parametrize("binning", ["mean", "median"])
@pytest.mark.parametrize("window_rows", [1, 3, 5, 7])
def test_binning_matches_naive(binning, window_rows):
    rng = np.random.default_rng(window_rows)
    img = rng.normal(100, 30, size=(300, 23))
    if window_rows == 3:
        img = np.round(img)  # integer-valued (as uint16 data)
    expected = naive_bin(img, window_rows, binning)
    np.testing.assert_allclose(kd.bin_lines(img, window_rows=window_rows, binning=binning), expected,
                               rtol=1e-12, atol=1e-9)
    # a slice starting mid-image and ending near the end, dark polarity negates
    got = kd.bin_lines(img, window_rows=window_rows, binning=binning, polarity="dark", start=77, stop=299)
    np.testing.assert_allclose(got, -expected[77:299], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_halfmax_matches_naive_on_noisy_vessels(seed):
    rng = np.random.default_rng(seed)
    img = _vessel_image(rng, n_pixels=int(rng.integers(12, 120)))
    binning = "median" if seed % 2 else "mean"
    polarity = "dark" if seed == 3 else "bright"
    if polarity == "dark":
        img = 2000.0 - img
    got = kd.halfmax_edges(img, binning=binning, polarity=polarity)
    exp = naive_halfmax(img, 5, binning, polarity)
    for g, e in zip(got, exp, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-9)  # NaN where NaN
    assert np.isfinite(got[0]).mean() > 0.9  # these vessels have both edges inside


@pytest.mark.parametrize("q", [(10.0, 90.0), (0.0, 100.0), (30.0, 70.0), (2.5, 97.5), (45.0, 55.0)])
def test_percentiles_match_numpy_for_any_choice(q):
    # pure noise: edges anywhere, many touching the ends (NaN + flags must match too);
    # 30/70 and 45/55 on 101 pixels take the quickselect path, the others the one-pass path
    # (<= 5 order statistics per end, e.g. 10/90 up to 44 pixels: 32 lines at once on SIMD
    # lanes; 70 lines leave a partial block)
    rng = np.random.default_rng(7)
    for n_pixels in (3, 9, 38, 44, 45, 101):
        img = rng.integers(0, 50, size=(70, n_pixels)).astype(float)
        got = kd.halfmax_edges(img, window_rows=1, baseline_percentile=q[0], peak_percentile=q[1])
        exp = naive_halfmax(img, 1, "mean", "bright", q[0], q[1])
        for g, e in zip(got, exp, strict=True):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-9)


def test_results_do_not_depend_on_chunking():
    rng = np.random.default_rng(3)
    img = _vessel_image(rng, n_lines=1000, n_pixels=33)  # non-integer data: rounding would show
    whole = kd.halfmax_edges(img)
    cuts = [0, 1, 63, 64, 65, 200, 517, 999, 1000]
    parts = [kd.halfmax_edges(img, start=a, stop=b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])
    fit_whole = kd.fit_edges(img, stop=300)
    fit_parts = [kd.fit_edges(img, start=a, stop=b) for a, b in ((0, 130), (130, 300))]
    for k in range(4):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in fit_parts]), fit_whole[k])


def test_fit_recovers_the_exact_model():
    rng = np.random.default_rng(11)
    x = np.arange(48.0)
    for _ in range(20):
        left = rng.uniform(8, 18)
        right = left + rng.uniform(4, 22)
        truth = (rng.uniform(50, 200), rng.uniform(300, 2000), left, right, rng.uniform(0.6, 2.5))
        img = tophat_model(x, *truth)[None, :]
        fl, fr, r2, flags = kd.fit_edges(img, window_rows=1)
        assert flags[0] == 0
        np.testing.assert_allclose([fl[0], fr[0]], [left, right], rtol=0, atol=1e-6)
        assert r2[0] > 1 - 1e-12


def test_fit_matches_scipy_curve_fit_on_noisy_profiles():
    rng = np.random.default_rng(5)
    img = _vessel_image(rng, n_lines=60, n_pixels=40, noise_sd=40.0)
    fl, fr, r2, flags = kd.fit_edges(img, window_rows=1, min_r2=0.0)
    hl, hr, _ = kd.halfmax_edges(img, window_rows=1)
    for i in range(0, 60, 3):
        if flags[i]:
            continue
        prof = img[i]
        base, peak = np.percentile(prof, [10, 90])
        popt, ref_r2 = reference_fit(prof, (base, peak - base, hl[i], hr[i], 1.0))
        np.testing.assert_allclose([fl[i], fr[i]], popt[2:4], rtol=0, atol=1e-5)
        assert r2[i] == pytest.approx(ref_r2, abs=1e-9)
    assert (flags == 0).mean() > 0.9


def test_flat_profile_has_no_contrast():
    img = np.full((4, 20), 7.0)
    left, right, flags = kd.halfmax_edges(img)
    assert np.isnan(left).all() and np.isnan(right).all()
    assert (flags & kd.NO_CONTRAST).all()
    fl, fr, r2, ff = kd.fit_edges(img)
    assert np.isnan(fl).all() and (ff & kd.NO_CONTRAST).all()


def test_vessel_leaving_the_line_gives_nan_edge_and_flag():
    # lumen from 12 to past the right end: left edge found, right edge missing
    img = make_vessel_kymograph(5, 30, diameter_px=30, center_px=27.0, psf_sigma_px=1.0)
    left, right, flags = kd.halfmax_edges(img)
    np.testing.assert_allclose(left, 12.0, atol=0.05)
    assert np.isnan(right).all()
    np.testing.assert_array_equal(flags, kd.RIGHT_EDGE_MISSING)
    fl, fr, _, ff = kd.fit_edges(img)
    assert np.isnan(fr).all() and (ff & kd.RIGHT_EDGE_MISSING).all()
    # mirrored: the left edge is the missing one
    left, right, flags = kd.halfmax_edges(img[:, ::-1])
    assert np.isnan(left).all() and np.isfinite(right).all()
    np.testing.assert_array_equal(flags, kd.LEFT_EDGE_MISSING)


def test_two_python_threads_calling_at_once_get_identical_results():
    rng = np.random.default_rng(9)
    img = _vessel_image(rng, n_lines=6000, n_pixels=38)
    expected = (kd.halfmax_edges(img), kd.fit_edges(img, stop=1500))
    results = [None, None]

    def run(slot):
        results[slot] = (kd.halfmax_edges(img), kd.fit_edges(img, stop=1500))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        for g_set, e_set in zip(got, expected, strict=True):
            for g, e in zip(g_set, e_set, strict=True):
                np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image=np.zeros((2, 3, 4))), "2-D"),
    (dict(window_rows=4), "odd"),
    (dict(binning="mode"), "'mean' or 'median'"),
    (dict(polarity="up"), "'bright' or 'dark'"),
    (dict(baseline_percentile=90.0, peak_percentile=10.0), "baseline_percentile < peak_percentile"),
    (dict(start=5, stop=2), "start"),
    (dict(image=np.zeros((3, 2))), "at least 3 pixels"),
    (dict(image=np.array([[1.0, np.nan, 2.0, 3.0]])), "NaN"),
])
def test_wrapper_rejects_bad_input_with_a_message(kwargs, match):
    kwargs = dict(kwargs)
    image = kwargs.pop("image", np.zeros((10, 12)))
    with pytest.raises(ValueError, match=match):
        kd.halfmax_edges(image, **kwargs)
