"""The Radon window kernel against loop references and scikit-image."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hpcacq.kernels import radon as kr

from helpers.naive_radon import naive_projection, naive_window_angle, naive_windows

skimage_radon = pytest.importorskip("skimage.transform").radon


@pytest.mark.parametrize("shape", [(4, 3), (5, 6), (8, 7)])
@pytest.mark.parametrize("angle", [0.0, 1.0, 17.25, 45.0, 89.75, 90.0, 133.5, 179.0, -1.75, 180.75])
def test_projection_matches_naive_loops(shape, angle):
    rng = np.random.default_rng(hash((shape, angle)) % 2**32)
    window = rng.normal(size=shape)
    got = kr.radon_projections(window, [angle])[:, 0]
    np.testing.assert_allclose(got, naive_projection(window, angle), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 38), (16, 7), (32, 19), (12, 5), (16, 16), (20, 13)])
def test_projection_matches_skimage(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    window = rng.normal(size=shape)
    theta = np.concatenate([np.arange(180.0), np.arange(-2.0, 2.25, 0.25), [88.25, 179.75, 181.0]])
    expected = skimage_radon(window, theta, circle=False)
    got = kr.radon_projections(window, theta)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def test_projection_at_0_and_90_deg_are_column_and_row_sums():
    window = np.arange(16 * 10, dtype=float).reshape(16, 10) ** 1.5
    side = kr.padded_size(16, 10)
    proj = kr.radon_projections(window, [0.0, 90.0])
    col0 = side // 2 - 10 // 2
    np.testing.assert_allclose(proj[col0:col0 + 10, 0], window.sum(axis=0), rtol=1e-12)
    assert np.all(proj[:col0, 0] == 0) and np.all(proj[col0 + 10:, 0] == 0)
    # at 90 degrees output column x samples padded row 2c - x: row sums, time reversed
    row0 = side // 2 - 16 // 2
    rows_at = 2 * (side // 2) - (row0 + np.arange(16))
    np.testing.assert_allclose(proj[rows_at, 1], window.sum(axis=1), rtol=1e-9)


def test_projection_total_is_linear_and_shift_free():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 16, 12))
    pa, pb, pab = (kr.radon_projections(w, [33.0, 120.5]) for w in (a, b, 2 * a - 3 * b))
    np.testing.assert_allclose(pab, 2 * pa - 3 * pb, atol=1e-12)


def test_window_count_and_step():
    assert kr.window_count(30000, 16) == 7497
    assert kr.window_count(16, 16) == 1 and kr.window_count(15, 16) == 0
    assert kr.window_step(32) == 8


def test_chosen_angles_match_naive_search():
    rng = np.random.default_rng(11)
    block = rng.normal(size=(8 * 4 + 6, 6))  # W=8: step 2, 16 windows
    block += np.add.outer(np.arange(block.shape[0]) * 0.7, -np.arange(6.0)) % 3  # some streaks
    theta, sep, coarse = kr.radon_windows(block, window_lines=8)
    expected = [naive_window_angle(w) for w in naive_windows(block, 8)[:6]]
    np.testing.assert_array_equal(theta[:6], [t for t, _ in expected])
    # separability's denominator is the mean of the coarse scores, projected in float32
    np.testing.assert_allclose(sep[:6], [s for _, s in expected], rtol=1e-6)
    assert np.all(np.abs(theta - coarse) <= 2)


def _skimage_angle_f64(window):
    w = window - window.mean()
    coarse = np.var(skimage_radon(w, np.arange(180), circle=False), axis=0)
    fine = np.argmax(coarse) + np.arange(-2, 2.25, 0.25)
    return fine[np.argmax(np.var(skimage_radon(w, fine, circle=False), axis=0))]


def test_chosen_angles_match_skimage_on_streaks():
    from hpcacq.synth.velocity import make_velocity_kymograph

    image = np.concatenate([
        make_velocity_kymograph(64, 23, px_per_line=v, rng=i, noise_sd=80) for i, v in enumerate((0.4, -2.5, 6))
    ])
    theta, _, _ = kr.radon_windows(image, window_lines=16)
    picks = np.arange(0, len(theta), 3)
    expected = [_skimage_angle_f64(image[k * 4:k * 4 + 16]) for k in picks]
    np.testing.assert_array_equal(theta[picks], expected)


def _search_one(window):
    """Coarse then fine argmax of one window with this module's own projections and np.var."""
    w = window - window.mean()
    coarse = np.arange(180.0)
    best = coarse[np.argmax(np.var(kr.radon_projections(w, coarse), axis=0))]
    fine = best + np.arange(-2, 2.25, 0.25)
    return fine[np.argmax(np.var(kr.radon_projections(w, fine), axis=0))], best


def test_fine_batches_of_mixed_coarse_angles_pick_each_windows_own_best():
    # speeds drift so neighbouring windows' coarse angles differ by 0, 1 or more degrees:
    # the fine pass scores them together on the union of their fine angles
    from hpcacq.synth.velocity import make_velocity_kymograph

    speeds = [0.80, 0.83, 0.86, 0.90, 1.2, -0.5, 0.84, 0.87]
    image = np.concatenate([make_velocity_kymograph(48, 11, px_per_line=v, rng=i, noise_sd=60)
                            for i, v in enumerate(speeds)])
    theta, _, coarse = kr.radon_windows(image, window_lines=16)
    expected = [_search_one(image[k * 4:k * 4 + 16]) for k in range(len(theta))]
    assert len(set(coarse)) >= 5  # the batches really mix coarse angles
    np.testing.assert_array_equal(coarse, [c for _, c in expected])
    np.testing.assert_array_equal(theta, [t for t, _ in expected])


def test_fine_pass_keeps_each_window_to_its_own_17_angles():
    # streaks at about 45.75 degrees; half the windows are told their coarse angle is 43,
    # half 44: batched together, each must choose within its own +-2 degrees
    from hpcacq.synth.velocity import make_velocity_kymograph

    image = make_velocity_kymograph(16 * 20, 13, px_per_line=np.tan(np.deg2rad(45.75)), rng=3, noise_sd=20)
    n = kr.window_count(image.shape[0], 16)
    coarse = np.where(np.arange(n) % 2 == 0, 43, 44).astype(np.int64)
    n_ops, op_col, op_pix, op_w, size, energy = kr.angle_table(16, image.shape[1])
    best_idx, best_var = np.zeros(n, dtype=np.int64), np.zeros(n)
    kr._fine_pass(image, 16, np.arange(n), size, n_ops, op_col, op_pix, op_w, np.ones_like(energy), coarse,
                  best_idx, best_var)
    theta = -2.0 + best_idx / 4
    for k in range(n):
        w = image[k * 4:k * 4 + 16] - image[k * 4:k * 4 + 16].mean()
        fine = coarse[k] + np.arange(-2, 2.25, 0.25)
        assert theta[k] == fine[np.argmax(np.var(kr.radon_projections(w, fine), axis=0))]
    assert np.all(theta[coarse == 43] <= 45) and np.mean(theta[coarse == 44] > 45) > 0.5


def test_chunking_gives_identical_results():
    rng = np.random.default_rng(5)
    image = rng.normal(size=(800, 17))
    whole = kr.radon_windows(image, window_lines=16)
    parts = [kr.radon_windows(image, window_lines=16, first=f, count=c) for f, c in ((0, 1), (1, 70), (71, 126))]
    for k in range(3):
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts]))


def test_two_python_threads_calling_the_kernel_agree_with_serial():
    rng = np.random.default_rng(6)
    images = [rng.normal(size=(1200, 21)), rng.normal(size=(1000, 9))]
    serial = [kr.radon_windows(im, window_lines=16) for im in images]
    out = [None, None]

    def run(i):
        out[i] = kr.radon_windows(images[i], window_lines=16)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(out, serial, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_constant_window_has_nan_separability():
    theta, sep, _ = kr.radon_windows(np.full((16, 8), 7.0), window_lines=16)
    assert np.isnan(sep[0]) and np.isfinite(theta[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(window_lines=18), "multiple of 4"),
    (dict(window_lines=16, first=8), "outside"),
    (dict(window_lines=16, first=2, count=6), "outside"),
])
def test_kernel_wrapper_rejects_bad_requests(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kr.radon_windows(np.zeros((40, 5)), **kwargs)


def test_kernel_wrapper_rejects_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        kr.radon_windows(np.zeros((2, 40, 5)))


def test_float32_weights_are_kept_per_shape_and_leave_with_their_table(monkeypatch):
    from collections import OrderedDict

    from hpcacq.kernels import radon_table as rt

    monkeypatch.setattr(rt, "_cache", OrderedDict())  # start empty: other tests fill the cache
    monkeypatch.setattr(rt, "_weights32", {})
    a, b = rt.coarse_weights32(16, 38), rt.coarse_weights32(16, 19)
    assert rt.coarse_weights32(16, 38) is a and rt.coarse_weights32(16, 19) is b  # no rebuild
    np.testing.assert_array_equal(a, rt.angle_table(16, 38)[3].astype(np.float32))
    monkeypatch.setattr(rt, "_CACHE_BYTES", 1)  # every new table evicts the older ones
    rt.coarse_weights32(16, 11)
    assert set(rt._weights32) <= set(rt._cache) == {(16, 11)}
