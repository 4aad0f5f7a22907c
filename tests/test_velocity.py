"""Radon velocity analysis: known speeds, conventions, invariances, threads, cancellation, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hpcacq.analyses import velocity as vel
from hpcacq.analyses.options import options_from_mapping
from hpcacq.analyses.velocity import RadonOptions, clean_velocity, radon_velocity
from hpcacq.errors import AnalysisCancelled, InputError, ParameterError
from hpcacq.synth.velocity import make_velocity_kymograph, mm_s_to_px_per_line, px_per_line_to_mm_s

DX_UM, DT_S = 0.5, 0.001  # 1 px/line = 0.5 mm/s
SPEEDS = (0.3, 0.7, 1.5, 3.0, 5.0)


def _kymo(v, n_lines=1200, n_pixels=38, seed=0, **kw):
    kw.setdefault("noise_sd", 100.0)
    return make_velocity_kymograph(n_lines, n_pixels, px_per_line=v, rng=seed, **kw)


def _median_rel_error(result, v):
    truth = px_per_line_to_mm_s(v, dx_um=DX_UM, dt_s=DT_S)
    return float(np.nanmedian(np.abs(result.columns["velocity_mm_s"] - truth) / abs(truth)))


def test_speed_conversion_round_trips():
    assert px_per_line_to_mm_s(2.0, dx_um=0.284, dt_s=0.00117) == pytest.approx(2 * 0.284 / 0.00117 / 1000)
    assert mm_s_to_px_per_line(px_per_line_to_mm_s(-1.3, dx_um=0.4, dt_s=0.002), dx_um=0.4, dt_s=0.002) \
        == pytest.approx(-1.3)


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("v", SPEEDS)
def test_window_32_measures_known_speed_within_2_percent(v, sign):
    result = radon_velocity(_kymo(sign * v), dx_um=DX_UM, dt_s=DT_S, window_lines=32)
    assert np.median(np.sign(result.columns["velocity_mm_s"])) == sign
    assert _median_rel_error(result, sign * v) <= 0.02


@pytest.mark.slow
def test_window_16_error_no_worse_than_skimage_reference():
    """At W=16 kymflow's method is biased at low speeds; ours must match the reference's error."""
    from hpcacq.analyses.radon_reference import reference_radon_velocity

    rows = []
    for v in SPEEDS:
        for sign in (1, -1):
            image = _kymo(sign * v, n_lines=400, seed=7)
            ours = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=16)
            picks = np.arange(0, ours.n_rows, 2)
            ref = reference_radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=16, windows=picks)
            sub = dataclasses.replace(ours, columns={k: c[picks] for k, c in ours.columns.items()})
            rows.append((sign * v, _median_rel_error(sub, sign * v), _median_rel_error(ref, sign * v)))
    print("\npx/line  ours(W=16)  skimage-reference(W=16)")
    for v, e_ours, e_ref in rows:
        print(f"{v:+6.2f}  {e_ours:9.4f}  {e_ref:9.4f}")
        assert e_ours <= e_ref + 0.005


@pytest.mark.parametrize("sign", [1, -1])
def test_path_normalized_score_is_unbiased_at_window_16(sign):
    """kymflow's score overestimates slow speeds at W=16; the path-normalized one does not."""
    rows = []
    for v in SPEEDS:
        image = _kymo(sign * v, seed=3)
        truth = px_per_line_to_mm_s(sign * v, dx_um=DX_UM, dt_s=DT_S)
        for score in ("variance", "path_normalized"):
            r = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=16, score=score)
            rows.append((v, score, np.nanmedian(r.columns["velocity_mm_s"]) / truth - 1, _median_rel_error(r, sign * v)))
    print(f"\nW=16, sign {sign:+d}: px/line, score, bias of the median velocity, median |relative error|")
    for v, score, bias, err in rows:
        print(f"{v:5.2f} {score:16s} {bias:+.4f} {err:.4f}")
        if score == "path_normalized":
            assert abs(bias) <= 0.02
            # at 0.3 px/line one 0.25 degree step of the angle grid is 1.6% of the speed
            assert err <= (0.02 if v >= 0.5 else 0.03)


def test_positive_toward_increasing_pixel_index_and_time_reversal_flips_sign():
    image = _kymo(1.5, n_lines=800)
    fwd = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    back = radon_velocity(image[::-1], dx_um=DX_UM, dt_s=DT_S)
    truth = px_per_line_to_mm_s(1.5, dx_um=DX_UM, dt_s=DT_S)
    assert np.median(fwd.columns["velocity_mm_s"]) == pytest.approx(truth, rel=0.03)
    # flipped time: window k of the flipped image is window n-1-k of the original
    v_back = back.columns["velocity_mm_s"][::-1]
    close = np.abs(v_back + fwd.columns["velocity_mm_s"]) <= 0.05 * truth
    assert close.mean() >= 0.9


def test_mirroring_space_flips_sign():
    image = _kymo(-3.0, n_lines=800)
    fwd = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S).columns["velocity_mm_s"]
    mirrored = radon_velocity(image[:, ::-1], dx_um=DX_UM, dt_s=DT_S).columns["velocity_mm_s"]
    assert np.median(fwd) < 0 < np.median(mirrored)
    assert (np.abs(mirrored + fwd) <= 0.05 * np.abs(fwd)).mean() >= 0.9


def test_streaks_along_space_give_nan_and_flag_not_a_huge_number():
    rng = np.random.default_rng(2)
    image = np.repeat(rng.normal(100, 20, size=(200, 1)), 12, axis=1)  # each line uniform
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    c = result.columns
    assert np.all(c["theta_deg"] == 90.0)
    assert np.all(np.isnan(c["velocity_mm_s"])) and np.all(np.isnan(c["velocity_clean_mm_s"]))
    assert np.all(c["flags"] & vel.THETA_90)
    assert result.flag_bits["theta_90"] == vel.THETA_90


def test_columns_units_times_and_params():
    image = _kymo(1.0, n_lines=100, n_pixels=12)
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=16, row_offset=1000, clean_sd=3.0)
    assert list(result.columns) == ["time_s", "theta_deg", "velocity_mm_s", "velocity_clean_mm_s",
                                    "separability", "flags", "background"]
    assert result.units["velocity_mm_s"] == "mm/s" and result.units["time_s"] == "s"
    assert result.n_rows == 100 // 4 - 3
    np.testing.assert_allclose(result.columns["time_s"], (1000 + 4 * np.arange(22) + 8) * DT_S, rtol=0, atol=1e-12)
    assert result.params == {"dx_um": DX_UM, "dt_s": DT_S, "window_lines": 16, "min_separability": 1.5,
                             "clean_sd": 3.0, "score": "variance", "clean": "local", "clean_span_s": 0.15,
                             "clean_mad": 4.0, "background": "auto", "background_lines": 4096,
                             "static_fraction": 0.5, "stall_separability": 3.0, "stall_min_s": 0.1,
                             "edge_deg": 1.0}
    theta = result.columns["theta_deg"]
    defined = theta != 90.0
    tan = np.tan(np.deg2rad(theta[defined]))
    np.testing.assert_allclose(result.columns["velocity_mm_s"][defined], DX_UM / DT_S * tan / 1000)
    assert np.isnan(result.columns["velocity_mm_s"][~defined]).all()
    assert result.analysis == "radon_velocity"


def test_noise_is_a_doubtful_file_streaks_are_not():
    """Pure noise has no streaks: its angles are random, so neighbouring windows disagree
    and the file is doubtful (per-window separability cannot tell noise from narrow real
    scans, see docs/QUALITY.md); clear streaks are trusted and unflagged."""
    rng = np.random.default_rng(9)
    noise = radon_velocity(rng.normal(size=(800, 30)), dx_um=DX_UM, dt_s=DT_S)
    streaks = radon_velocity(_kymo(2.0, n_lines=800, noise_sd=10), dx_um=DX_UM, dt_s=DT_S)
    assert any("noise" in w for w in noise.warnings), noise.warnings
    assert noise.summary["local_dispersion"] > 0.5
    assert streaks.warnings == [] and streaks.summary["fraction_trusted"] > 0.95
    assert np.mean((streaks.columns["flags"] & vel.LOW_SEPARABILITY) != 0) < 0.01


def test_clean_velocity_cuts_outliers_then_nan_aware_median():
    v = np.array([1.0, 1.2, 0.9, 1.1, np.nan, 1.0, 50.0, 1.05, 0.95, 1.0])
    out = clean_velocity(v)  # kymflow's current recipe: +-2 SD, then 5-point median zero-padded
    assert np.isnan(out[4]) and np.isnan(out[6])  # NaN stays, 50 is cut (> mean + 2 SD)
    assert out[0] == pytest.approx(0.9)  # median of (0, 0, 1.0, 1.2, 0.9): zero padding as medfilt
    assert out[2] == pytest.approx(1.05)  # median(1.0, 1.2, 0.9, 1.1) ignoring the NaN
    assert out[5] == pytest.approx(1.05)  # median(1.1, 1.0, 1.05) ignoring NaN and the cut 50
    assert out[7] == pytest.approx(1.0)  # median(1.0, 1.05, 0.95, 1.0) ignoring the cut 50
    result = radon_velocity(_kymo(2.0, n_lines=400), dx_um=DX_UM, dt_s=DT_S)
    cut = (result.columns["flags"] & vel.CLEAN_REJECTED) != 0
    assert np.all(np.isnan(result.columns["velocity_clean_mm_s"][cut]))


def test_threads_and_chunking_give_identical_results(monkeypatch):
    image = _kymo(-2.0, n_lines=3000, n_pixels=20)
    one = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, threads=1)
    monkeypatch.setattr(vel, "_CHUNK_WINDOWS", 37)
    two = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, threads=2)
    for name, col in one.columns.items():
        np.testing.assert_array_equal(col, two.columns[name], err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_cancel_raises_and_progress_reports(monkeypatch, threads):
    monkeypatch.setattr(vel, "_CHUNK_WINDOWS", 20)
    image = _kymo(1.0, n_lines=800, n_pixels=10)
    seen = []
    radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, threads=threads, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 197) and seen[-1] == (197, 197)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(AnalysisCancelled, match="cancelled"):
        radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, threads=threads, cancel=cancel)
    assert len(calls) == 3


def test_options_from_mapping_and_frozen():
    p = options_from_mapping(RadonOptions, {"window_lines": 32})
    assert p.step_lines == 8 and RadonOptions.from_mapping({}).window_lines == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.window_lines = 16
    with pytest.raises(ParameterError, match="valid names are: window_lines, min_separability"):
        options_from_mapping(RadonOptions, {"window": 32})
    with pytest.raises(ParameterError, match="dx_um are units of the file, not options of RadonOptions"):
        options_from_mapping(RadonOptions, {"dx_um": 0.3})


@pytest.mark.parametrize("kwargs, match", [
    (dict(window_lines=18), "multiple of 4"),
    (dict(window_lines=0), "multiple of 4"),
    (dict(window_lines=16.0), "multiple of 4"),
    (dict(dx_um=-1.0), "dx_um must be a finite number > 0, got -1.0; give the pixel size"),
    (dict(dt_s=float("nan")), "dt_s must be a finite number > 0, got nan"),
    (dict(dt_s="0.001"), "dt_s must be a finite number > 0, got '0.001'"),
    (dict(clean_sd=0), "clean_sd"),
    (dict(min_separability=-1), "min_separability"),
    (dict(threads=0), "threads must be an integer >= 1"),
    (dict(row_offset=-3), "row_offset"),
    (dict(windw_lines=16), "unknown parameter.*windw_lines"),
    (dict(score="radon"), "score must be one of 'variance', 'path_normalized'"),
])
def test_bad_parameters_say_what_to_change(kwargs, match):
    args = dict(dx_um=DX_UM, dt_s=DT_S) | kwargs
    with pytest.raises(ParameterError, match=match):
        radon_velocity(np.ones((100, 10)), **args)


@pytest.mark.parametrize("image, match", [
    (np.ones((2, 100, 10)), "2-D block"),
    (np.ones(100), "2-D block"),
    (np.ones((15, 10)), "15 lines but one window needs 16"),
    (np.ones((100, 1)), "at least 2 pixels"),
    (np.array([["a"] * 5] * 20), "real numbers"),
])
def test_bad_images_say_what_to_change(image, match):
    with pytest.raises(InputError, match=match):
        radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)


def test_nan_pixels_are_rejected_with_their_position():
    image = np.ones((100, 10))
    image[42, 3] = np.inf
    with pytest.raises(InputError, match=r"NaN/inf pixel\(s\) \(first at line 42, pixel 3\)"):
        radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)


def test_integer_images_give_the_same_answer_as_float():
    image = np.round(_kymo(1.2, n_lines=200, n_pixels=14)).astype(np.uint16)
    a = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    b = radon_velocity(image.astype(np.float64), dx_um=DX_UM, dt_s=DT_S)
    np.testing.assert_array_equal(a.columns["theta_deg"], b.columns["theta_deg"])


def test_skimage_reference_agrees_with_kernel_and_checks_indices():
    from hpcacq.analyses.radon_reference import reference_radon_velocity

    image = _kymo(-1.2, n_lines=200, n_pixels=24)
    ours = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    ref = reference_radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, windows=[0, 7, 20, 46])
    np.testing.assert_array_equal(ref.columns["window"], [0, 7, 20, 46])
    np.testing.assert_allclose(ref.columns["time_s"], ours.columns["time_s"][[0, 7, 20, 46]], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ref.columns["theta_deg"], ours.columns["theta_deg"][[0, 7, 20, 46]])
    np.testing.assert_allclose(ref.columns["separability"], ours.columns["separability"][[0, 7, 20, 46]],
                               rtol=1e-4)
    with pytest.raises(InputError, match="window indices must lie in 0..46"):
        reference_radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, windows=[47])
