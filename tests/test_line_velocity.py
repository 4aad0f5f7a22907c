"""The registered line cross-correlation velocity (``line_correlation_velocity``, label ``line_velocity``).

Known answers: synthetic 7-pixel lines cut from a wider synthetic scan (truth per window
from the synthetic speed), and the numpy ``lag_velocity`` it wraps.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses import registry
from hpcacq.analyses.line_velocity import FLAG_BITS, NO_LAG, line_velocity
from hpcacq.analyses.line_velocity_options import LineVelocityOptions
from hpcacq.analyses.narrow_velocity import lag_velocity
from hpcacq.analyses.velocity import window_times_s
from hpcacq.errors import AnalysisCancelled, InputError, MissingUnitsError, ParameterError
from hpcacq.synth.flow import make_flow_kymograph, window_truth_px_per_line

from helpers.cli import hpcacq


def seven_pixel_lines(px_per_line: float, seed: int, n_lines: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Columns 10:17 of a 27-pixel synthetic scan at a constant speed; the speed of each line."""
    speed = np.full(n_lines, px_per_line)
    return make_flow_kymograph(speed, 27, rng=seed)[:, 10:17], speed


# Measured (2 seeds x 3000 lines): median |error| per window 0.6-1.5% at W = 32 (worst 1.5% at
# 0.3 px/line), 0.4-0.6% at W = 64. Asserted: the 2%.
@pytest.mark.parametrize("window_lines", [32, 64])
@pytest.mark.parametrize("px_per_line", [0.3, 0.8, 1.5, -1.0])
def test_median_error_on_synthetic_seven_pixel_lines_is_within_two_percent(px_per_line, window_lines):
    errors = []
    for seed in (1, 2):
        image, speed = seven_pixel_lines(px_per_line, seed)
        result = line_velocity(image, dx_um=0.5, dt_s=0.001, window_lines=window_lines)
        errors.append(result.columns["px_per_line"] / window_truth_px_per_line(speed, window_lines) - 1.0)
        assert result.summary["fraction_no_lag"] <= 0.02 and result.warnings == []
    assert np.nanmedian(np.abs(np.concatenate(errors))) <= 0.02


def test_same_numbers_as_lag_velocity_and_radon_window_times():
    image, _ = seven_pixel_lines(1.1, 3)
    result = line_velocity(image, dx_um=0.4, dt_s=0.002, window_lines=32, background_lines=512)
    reference = lag_velocity(image, dx_um=0.4, dt_s=0.002, window_lines=32, background_lines=512)
    for name in ("time_s", "px_per_line", "velocity_mm_s"):  # one chunk: the same computation
        np.testing.assert_array_equal(result.columns[name], reference[name])
    n = result.n_rows
    np.testing.assert_array_equal(result.columns["time_s"], window_times_s(n, window_lines=32, dt_s=0.002))
    shifted = line_velocity(image, dx_um=0.4, dt_s=0.002, window_lines=32, background_lines=512, row_offset=100)
    np.testing.assert_array_equal(shifted.columns["time_s"],
                                  window_times_s(n, window_lines=32, dt_s=0.002, row_offset=100))
    assert result.units == {"time_s": "s", "px_per_line": "px/line", "velocity_mm_s": "mm/s",
                            "velocity_clean_mm_s": "mm/s", "peak_z": "1", "line_centred_z": "1", "lags_used": "1",
                            "flags": "1"}
    assert result.analysis == "line_correlation_velocity" and result.params["window_lines"] == 32


def test_chunks_threads_cancel_and_progress_do_not_change_the_answer(monkeypatch):
    import hpcacq.analyses.line_velocity as module

    image, _ = seven_pixel_lines(0.7, 4, n_lines=2000)
    whole = line_velocity(image, dx_um=0.5, dt_s=0.001).columns
    monkeypatch.setattr(module, "_CHUNK_PIXELS", 64 * 8 * 7)  # chunks of 64 windows, with their halo
    seen = []
    parts = line_velocity(image, dx_um=0.5, dt_s=0.001,
                          progress=lambda done, total: seen.append((done, total))).columns
    assert set(parts) == set(whole)
    for name in whole:  # every column, the flags and lag counts exactly; sums differ only by rounding
        if whole[name].dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(parts[name]), np.isnan(whole[name]), err_msg=name)
            np.testing.assert_allclose(parts[name], whole[name], rtol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(parts[name], whole[name], err_msg=name)
    threaded = line_velocity(image, dx_um=0.5, dt_s=0.001, threads=2).columns
    for name in whole:
        np.testing.assert_array_equal(threaded[name], parts[name], err_msg=name)
    assert seen[0] == (0, 247) and seen[-1] == (247, 247) and len(seen) == 5
    calls = iter([False, False, True])  # before the background step, before the first chunk, after it
    with pytest.raises(AnalysisCancelled, match="after 64 of 247 windows"):
        line_velocity(image, dx_um=0.5, dt_s=0.001, cancel=lambda: next(calls))


def test_too_fast_windows_are_nan_flagged_and_the_file_doubtful():
    image, _ = seven_pixel_lines(3.5, 5, n_lines=1000)  # beyond 7 - 3 - 1 = 3 px per line
    result = line_velocity(image, dx_um=0.5, dt_s=0.001)
    nan = np.isnan(result.columns["velocity_mm_s"])
    assert nan.mean() > 0.5 and result.summary["fraction_no_lag"] == nan.mean()
    np.testing.assert_array_equal(result.columns["flags"] & NO_LAG, np.where(nan, NO_LAG, 0))
    assert FLAG_BITS == {"no_lag": 1, "weak_correlation": 2, "lags_disagree": 4, "clean_rejected": 8,
                         "common_mode": 16}
    assert len(result.warnings) == 1 and "beyond the measurable 3 px per line" in result.warnings[0]


def test_bad_options_and_inputs_are_refused_with_a_reason():
    image = np.ones((64, 7))
    for bad, words in (({"window_lines": 30}, "window_lines must be a multiple of 4"),
                       ({"window_lines": 4}, "window_lines must be a multiple of 4, at least 8"),
                       ({"background_lines": -1}, "background_lines must be an integer >= 0"),
                       ({"max_shift_px": 1}, "max_shift_px must be 0"),
                       ({"select_windows": 0}, "select_windows must be an integer >= 1"),
                       ({"score": "variance"}, "unknown parameter")):
        with pytest.raises(ParameterError, match=words):
            line_velocity(image, dx_um=0.5, dt_s=0.001, **bad)
        with pytest.raises(ParameterError):
            registry.build_options("line_correlation_velocity", bad)
    with pytest.raises(MissingUnitsError, match="dx_um is unknown"):
        line_velocity(image, dx_um=None, dt_s=0.001)
    with pytest.raises(InputError, match="one window needs 32"):
        line_velocity(np.ones((20, 7)), dx_um=0.5, dt_s=0.001)
    with pytest.raises(InputError, match="too short"):
        line_velocity(np.ones((64, 4)), dx_um=0.5, dt_s=0.001)
    with pytest.raises(InputError, match="NaN/inf"):
        line_velocity(np.where(np.eye(64, 7) > 0, np.nan, 1.0), dx_um=0.5, dt_s=0.001)
    assert LineVelocityOptions().window_lines == 32


def test_registered_and_coexists_with_radon_velocity_on_one_roi():
    from hpcacq import AcqImage
    from hpcacq.jobs.strategies import strategy_for

    assert registry.resolve("line_velocity") == "line_correlation_velocity"
    spec = registry.get_spec("line_correlation_velocity")
    assert spec.exclusive_group is None and spec.options_cls is LineVelocityOptions
    assert registry.HEADLINE["line_correlation_velocity"] == "velocity_clean_mm_s"
    image, _ = seven_pixel_lines(1.0, 6, n_lines=512)
    img = AcqImage.from_array(image, dx_um=0.5, dt_s=0.001)
    roi = img.rois.create_rect_roi()
    for name in ("radon_velocity", "line_correlation_velocity"):
        img.analysis_set.create(name, channel=0, roi_id=roi.roi_id)
    results = {r.analysis: r for r in (img.analysis_set.run_analysis(k) for k in list(img.analysis_set.keys()))}
    np.testing.assert_array_equal(results["line_correlation_velocity"].columns["velocity_mm_s"],
                                  line_velocity(image, dx_um=0.5, dt_s=0.001).columns["velocity_mm_s"])
    assert strategy_for("line_correlation_velocity").analysis_name == "line_correlation_velocity"


def test_hpcacq_run_line_velocity_end_to_end(tmp_path, capsys):
    from hpcacq.io import read_acquisition
    from hpcacq.results import iter_results, read_manifest
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path / "corpus"
    write_corpus(folder, n_files=2, kind="velocity", n_lines=600, n_pixels=9, seed=2)
    out_h5 = tmp_path / "lv.h5"
    code, _, err = hpcacq(capsys, "run", folder, "-o", out_h5, "--analysis", "line_velocity", "--window-lines", 32)
    assert code == 0, err
    assert [row["outcome"] for row in read_manifest(out_h5)] == ["OK", "OK"]
    results = list(iter_results(out_h5))
    assert len(results) == 2
    for meta, result in results:
        assert result.analysis == "line_correlation_velocity"
        assert result.units == {"time_s": "s", "px_per_line": "px/line", "velocity_mm_s": "mm/s",
                            "velocity_clean_mm_s": "mm/s", "peak_z": "1", "line_centred_z": "1", "lags_used": "1",
                            "flags": "1"}
        pixels = np.asarray(read_acquisition(meta["file"]).data)[0]
        expected = lag_velocity(pixels, dx_um=result.params["dx_um"], dt_s=result.params["dt_s"], window_lines=32)
        np.testing.assert_array_equal(result.columns["velocity_mm_s"], expected["velocity_mm_s"])
    code, out, _ = hpcacq(capsys, "run", "--help")
    assert code == 0 and "line_velocity = line cross-correlation" in out
    assert "[default: 16]" in out and "[default: 32]" in out  # --window-lines: each analysis' own default
    code, out, _ = hpcacq(capsys, "summary", out_h5)
    assert code == 0 and out.count("median velocity_clean_mm_s") == 2 and out.count("quality: trusted") == 2
    code, _, err = hpcacq(capsys, "run", folder, "-o", tmp_path / "bad.h5", "--analysis", "line_velocity",
                          "--window-lines", 30)
    assert code == 2 and "--window-lines must be a multiple of 4, at least 8" in err
    code, _, err = hpcacq(capsys, "run", folder, "-o", tmp_path / "bad2.h5", "--analysis", "line_velocity",
                          "--param", "score=balanced")
    assert code == 2 and "unknown --param 'score'" in err and "`hpcacq params line_velocity`" in err
