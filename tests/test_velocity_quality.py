"""Quality model of the Radon velocity: static background, stalls, flags, file warnings.

Truth is set by the synthetic generator (hpcacq.synth.flow): per-line speed, stalls and
static structure (walls, bright spots, uneven and fading illumination).
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses import velocity as vel
from hpcacq.analyses.base import ok_message
from hpcacq.analyses.velocity import radon_velocity
from hpcacq.analyses.velocity_quality import remove_background
from hpcacq.errors import ParameterError
from hpcacq.synth.flow import make_flow_kymograph, stall_speed, window_truth_px_per_line

DX_UM, DT_S = 0.5, 0.001
STATIC = {
    "walls": dict(walls=1.5, illumination=0.3, bleach=0.1),
    "spots": dict(spots=4.0, n_spots=2),
    "illumination": dict(illumination=1.2, bleach=0.3),
    "mild": dict(walls=0.3, spots=0.5, n_spots=1, illumination=0.4, bleach=0.1),
}


def _speed(n_lines: int, base: float) -> np.ndarray:
    return base * (1 + 0.3 * np.sin(np.arange(n_lines) / 700.0))


def _fully_moving(speed: np.ndarray, window_lines: int) -> np.ndarray:
    """Windows none of whose lines is stopped."""
    step = window_lines // 4
    n = speed.size // step - 3
    return np.array([speed[k * step:k * step + window_lines].min() > 0 for k in range(n)])


# the cases of one line shape run one after another: they share its projection table (the
# 150 x 128 one, beyond the in-memory budget of kernels/radon_table.py, is built once, not 4 times)
@pytest.mark.parametrize("case", sorted(STATIC))
@pytest.mark.parametrize("n_pixels, window_lines", [(20, 16), (38, 32), (150, 16), (150, 128)])
def test_static_background_never_reads_as_zero_flow(case, n_pixels, window_lines):
    speed = _speed(3000, 1.2)
    image = make_flow_kymograph(speed, n_pixels, rng=n_pixels + window_lines, **STATIC[case])
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines)
    truth = window_truth_px_per_line(speed, window_lines) * DX_UM / DT_S / 1000
    v, flags = result.columns["velocity_mm_s"], result.columns["flags"]
    trusted = flags == 0
    assert not np.any(trusted & (v == 0)), "a trusted 0 mm/s where cells move"
    assert np.mean(trusted) > 0.9
    err = np.abs(v[trusted] / truth[trusted] - 1)
    # weaker than 2 % in one corner: mild static structure (below the static_fraction that
    # removes it from every window) on 150-pixel lines with 16-line windows, 2.2 % (docs/QUALITY.md)
    tolerance = 0.025 if (case, n_pixels, window_lines) == ("mild", 150, 16) else 0.02
    assert np.median(err) <= tolerance, f"median relative error {np.median(err):.3f}"
    # the headline at 16-line windows carries the variance score's path-length bias
    # (+2-3 %, present without any background too; README, score option)
    head_tolerance = 0.035 if window_lines == 16 else 0.02
    assert abs(result.summary["median_velocity_mm_s"] / np.median(truth[trusted]) - 1) <= head_tolerance
    assert result.warnings == []
    if n_pixels == 20:  # without background removal no 0 is trusted either: flagged theta_0
        plain = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines, background="none")
        zero = plain.columns["velocity_mm_s"] == 0
        assert np.all(plain.columns["flags"][zero] & vel.THETA_0)
        assert np.all(np.isnan(plain.columns["velocity_clean_mm_s"][zero]))


@pytest.mark.parametrize("window_lines", [16, 128])
def test_seven_pixel_lines_with_static_background_are_as_good_as_without(window_lines):
    """At 7 pixels the method's own bias is larger (no background: 8 % slow at W = 16, 13 %
    at W = 128); static structure never gives trusted zeros, and costs at most a few percent
    (walls over 2 of 7 pixels at W = 128: 15.6 % against 13.0 %, docs/QUALITY.md)."""
    speed = _speed(3000, 0.6)
    errors = {}
    for case, kwargs in [("none", {}), *STATIC.items()]:
        image = make_flow_kymograph(speed, 7, rng=7 + window_lines, **kwargs)
        result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines)
        truth = window_truth_px_per_line(speed, window_lines) * DX_UM / DT_S / 1000
        v, trusted = result.columns["velocity_mm_s"], result.columns["flags"] == 0
        assert not np.any(trusted & (v == 0)), case
        errors[case] = np.median(np.abs(v[trusted] / truth[trusted] - 1))
    for case in STATIC:
        assert errors[case] <= errors["none"] + 0.05, errors


@pytest.mark.parametrize("n_pixels, window_lines", [(7, 32), (20, 16), (38, 64), (150, 32)])
def test_true_stall_reads_zero_and_is_trusted(n_pixels, window_lines):
    """Flow stopping for 0.5 s (500 lines of 1 ms) over vessel walls: the stopped
    windows read exactly 0 mm/s, unflagged; moving windows never read 0."""
    speed = _speed(6000, 1.0) * stall_speed(6000, px_per_line=1.0, stall_start=2500, stall_lines=500)
    image = make_flow_kymograph(speed, n_pixels, rng=3, walls=1.5, illumination=0.3)
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines)
    truth = window_truth_px_per_line(speed, window_lines)
    v, flags = result.columns["velocity_mm_s"], result.columns["flags"]
    stopped = truth == 0
    assert stopped.sum() >= 10
    assert np.mean((v[stopped] == 0) & (flags[stopped] == 0)) >= 0.95
    assert np.all(result.columns["velocity_clean_mm_s"][stopped & (flags == 0)] == 0)
    moving = _fully_moving(speed, window_lines)
    assert not np.any(moving & (flags == 0) & (v == 0))
    assert result.summary["fraction_stall"] > 0


def test_background_options_and_removal():
    rng = np.random.default_rng(0)
    walls = np.linspace(100, 300, 6)[None, :] * (1 + 0.01 * rng.normal(size=(5000, 6)))  # static + 1 % noise
    residual, static = remove_background(walls, lines=1024)
    assert static > 0.99 and np.abs(residual).max() < 0.06  # flat field: (x - bg) / bg ~ the 1 % noise
    _, whole = remove_background(walls, lines=0, residual=False)
    assert whole == pytest.approx(static, abs=1e-3)
    moving = make_flow_kymograph(_speed(5000, 1.0), 20, rng=1)
    residual, static = remove_background(moving, lines=1024)
    assert static < 0.05 and np.corrcoef(residual.ravel(), moving.ravel())[0, 1] > 0.99
    image = make_flow_kymograph(_speed(2000, 1.0), 20, rng=1, walls=1.5)
    always = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, background="always")
    assert np.all(always.columns["background"] == 1)
    with pytest.raises(ParameterError, match="background must be one of"):
        radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, background="yes")
    with pytest.raises(ParameterError, match="clean must be one of"):
        radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, clean="median")


def test_static_only_file_is_doubtful_and_says_why():
    """Nothing moves visibly (only walls and noise): never a trusted 0, and the OK
    outcome's message says the file is doubtful."""
    static = make_flow_kymograph(np.zeros(3000), 30, rng=2, contrast=0.0, walls=1.5, spots=3.0)
    result = radon_velocity(static, dx_um=DX_UM, dt_s=DT_S)
    trusted = result.columns["flags"] == 0
    assert not np.any(trusted & (result.columns["velocity_mm_s"] == 0)) or result.warnings
    assert result.warnings and ok_message(result).startswith("ok; doubtful: ")


def test_summary_fractions_are_consistent():
    image = make_flow_kymograph(_speed(4000, 1.0), 20, rng=4, walls=1.0)
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    s, flags = result.summary, result.columns["flags"]
    assert s["fraction_trusted"] == pytest.approx(np.mean(flags == 0))
    for name, bit in result.flag_bits.items():
        assert s[f"fraction_{name}"] == pytest.approx(np.mean((flags & bit) != 0))
    assert s["fraction_nan"] == pytest.approx(np.mean(np.isnan(result.columns["velocity_clean_mm_s"])))
    assert np.all(np.isnan(result.columns["velocity_clean_mm_s"][flags != 0]))
    trusted_v = result.columns["velocity_mm_s"][flags == 0]
    assert s["median_velocity_mm_s"] == pytest.approx(np.median(trusted_v))


def test_angle_edge_includes_the_last_resolvable_degree():
    """89.0 deg is 57 px/line; the next grid step (89.25) is 76: flagged, as 90 - edge_deg itself."""
    from hpcacq.analyses.velocity_quality import ANGLE_EDGE, window_flags

    theta = np.array([88.75, 89.0, 89.5, 90.0, 91.0, 91.25, 45.0])
    flags, _ = window_flags(theta, np.full(7, 5.0), plain_zero=np.zeros(7, bool), reanalysed=np.zeros(7, bool),
                            min_separability=1.5, stall_separability=3.0, edge_deg=1.0)
    assert ((flags & ANGLE_EDGE) != 0).tolist() == [False, True, True, False, True, False, False]


@pytest.mark.parametrize("n_pixels, px_per_line, warned", [(38, 10.0, False), (38, 20.0, True), (20, 13.0, True)])
def test_streaks_faster_than_the_line_resolves_make_the_file_doubtful(n_pixels, px_per_line, warned):
    """Cells crossing the line in under 2 lines alias, and their measured crossing saturates
    near 2.2 lines (docs/QUALITY.md): below 2.5 the file says so even where the angles look consistent."""
    speed = px_per_line * (1 + 0.2 * np.sin(np.arange(4000) / 300.0))
    image = make_flow_kymograph(speed, n_pixels, rng=11)
    result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=64)
    crossing = result.summary["median_crossing_lines"]
    assert (crossing < 2.5) == warned, crossing
    assert any("cross the line" in w for w in result.warnings) == warned, result.warnings
    if not warned:  # the crossing is measured, not aliased, where the file is trusted
        assert crossing == pytest.approx(n_pixels / np.median(speed), rel=0.1)


def test_narrow_lines_report_how_much_the_window_length_changes_the_velocity():
    """On lines of at most 12 pixels a second search with 4x longer windows measures the
    method's dependence on the window; wider lines skip it."""
    speed = _speed(4000, 0.6)
    narrow = radon_velocity(make_flow_kymograph(speed, 7, rng=3), dx_um=DX_UM, dt_s=DT_S)
    long = radon_velocity(make_flow_kymograph(speed, 7, rng=3), dx_um=DX_UM, dt_s=DT_S, window_lines=64)
    from hpcacq.analyses.velocity_quality import median_px_per_line

    def speed_of(result):
        return median_px_per_line(result.columns["theta_deg"], result.columns["separability"], min_separability=1.5)

    assert narrow.summary["long_window_lines"] == 64
    assert narrow.summary["window_dependence"] == pytest.approx(speed_of(long) / speed_of(narrow) - 1, abs=1e-12)
    # the Radon search under-reads 7-pixel lines (docs/QUALITY.md, "Narrow lines"): measured -13 %
    # against the median line speed here (median per-window error -8 %; the line correlation -1 %)
    assert -0.18 < speed_of(narrow) / np.median(speed) - 1 < -0.05
    # measured -2 %; the file is not doubtful for its window dependence
    assert abs(narrow.summary["window_dependence"]) < 0.10
    assert not any("with windows of" in w for w in narrow.warnings), narrow.warnings
    wide = radon_velocity(make_flow_kymograph(speed, 20, rng=3), dx_um=DX_UM, dt_s=DT_S)
    assert np.isnan(wide.summary["window_dependence"])
    assert np.isnan(wide.summary["lag_ratio"]) and np.isnan(wide.summary["line_correlation_mm_s"])


def test_on_narrow_lines_the_line_correlation_opinion_measures_the_radon_error():
    """7-pixel lines cut from a wider synthetic scan (no edge artefact of the generator's blur):
    ``lag_ratio`` (Radon vs line cross-correlation) is Radon's own error against the truth
    within 2 points, so the narrow-line warning reports a real error, not a disagreement."""
    speed = _speed(6000, 0.5)
    wide = make_flow_kymograph(speed, 27, rng=21)
    result = radon_velocity(np.ascontiguousarray(wide[:, 10:17]), dx_um=DX_UM, dt_s=DT_S, window_lines=64)
    from hpcacq.analyses.velocity_quality import median_px_per_line

    radon = median_px_per_line(result.columns["theta_deg"], result.columns["separability"], min_separability=1.5)
    radon_error = radon / np.median(speed) - 1
    assert radon_error < -0.05  # the Radon search under-reads 7-pixel lines (docs/QUALITY.md)
    assert result.summary["lag_ratio"] == pytest.approx(radon_error, abs=0.02)
    truth_mm_s = np.median(speed) * DX_UM / DT_S / 1000  # the warning gives the line correlation's speed
    assert result.summary["line_correlation_mm_s"] == pytest.approx(truth_mm_s, rel=0.02)
    (warning,) = [w for w in result.warnings if "against line cross-correlation" in w]
    assert f"its trusted windows read {result.summary['line_correlation_mm_s']:.3g} mm/s" in warning


@pytest.mark.parametrize("window_lines", [32, 64, 128])
def test_balanced_score_reads_narrow_lines_cut_from_a_wider_scan(window_lines):
    """7-pixel lines cut from a wider scan (static background of every kind): kymflow's
    variance score under-reads them by 5-17 % per window; ``score="balanced"`` divides the
    variance by the uniform path energy to the power 0.75 and reads them within a few
    percent (docs/QUALITY.md, "Scores on narrow lines")."""
    errors = {"variance": [], "balanced": []}
    for base in (0.3, 0.6, 1.5):
        speed = _speed(3000, base)
        truth = window_truth_px_per_line(speed, window_lines) * DX_UM / DT_S / 1000
        for kwargs in [{}, *STATIC.values()]:
            image = np.ascontiguousarray(make_flow_kymograph(speed, 27, rng=7 + window_lines, **kwargs)[:, 10:17])
            for score in errors:
                result = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S, window_lines=window_lines, score=score)
                v, trusted = result.columns["velocity_mm_s"], result.columns["flags"] == 0
                assert not np.any(trusted & (v == 0))
                errors[score].append(np.median(np.abs(v[trusted] / truth[trusted] - 1)))
    variance, balanced = np.array(errors["variance"]), np.array(errors["balanced"])
    print(f"\nW={window_lines}: per-case median |error| variance {np.round(variance * 100, 1)}, "
          f"balanced {np.round(balanced * 100, 1)}")
    assert np.median(variance) > 0.04  # the bias the score is for
    # measured: median over the 15 cases 2.7 % at W = 32, 2.2 % at 64, 1.6 % at 128
    assert np.median(balanced) <= (0.035 if window_lines == 32 else 0.025)
    assert np.all(balanced < variance + 0.005)


def test_narrow_line_checks_accept_every_window_the_radon_search_accepts():
    """4-line windows are valid for the Radon search but below the line correlation's 8: the
    window-length check still runs, the correlation opinion is simply absent (NaN)."""
    speed = _speed(4000, 0.6)
    result = radon_velocity(make_flow_kymograph(speed, 7, rng=3), dx_um=DX_UM, dt_s=DT_S, window_lines=4)
    assert result.summary["long_window_lines"] == 16
    assert np.isnan(result.summary["lag_ratio"])


def test_angle_step_is_one_grid_step_of_the_headline_speed():
    """summary["angle_step_fraction"]: how finely the 0.25-degree grid resolves the file's
    speed (docs/QUALITY.md: fast speeds move in steps of several percent)."""
    from hpcacq.analyses.velocity_quality import ANGLE_STEP_DEG, angle_step_fraction
    from hpcacq.kernels.radon_table import GRID_PER_DEG

    assert ANGLE_STEP_DEG == 1 / GRID_PER_DEG
    for v in (0.3, 2.0, 10.0):  # naive: the speed of the next grid angle
        theta = np.degrees(np.arctan(v))
        assert angle_step_fraction(v, 0.25) == pytest.approx(np.tan(np.radians(theta + 0.25)) / v - 1, rel=1e-12)
    assert angle_step_fraction(2.0, 0.25) == pytest.approx(0.0109, abs=2e-4)
    assert angle_step_fraction(10.0, 0.25) == pytest.approx(0.046, abs=1e-3)
    assert np.isnan(angle_step_fraction(0.0, 0.25)) and angle_step_fraction(1e6, 0.25) == np.inf
    speed = _speed(3000, 2.0)
    result = radon_velocity(make_flow_kymograph(speed, 38, rng=4), dx_um=DX_UM, dt_s=DT_S, window_lines=32)
    headline_px = result.summary["median_abs_velocity_mm_s"] * 1000 * DT_S / DX_UM
    assert result.summary["angle_step_fraction"] == pytest.approx(angle_step_fraction(headline_px, 0.25))
    assert 0.009 < result.summary["angle_step_fraction"] < 0.014
