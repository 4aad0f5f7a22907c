"""Radon velocity on real line scans against kymflow's reference tables."""

from __future__ import annotations

import numpy as np
import pytest

from hpcacq.analyses.velocity import THETA_90, radon_velocity

from helpers.realdata import A89_STEMS, HUGE_MM_S, capillary_roi, kymflow_table, local_reference, real_files

tifffile = pytest.importorskip("tifffile")
pytestmark = pytest.mark.realdata



def _compare(result, ref_time, ref_velocity, *, time_shift_s=0.0, float32_times=False,
             blank_thetas=(90.0,)):
    """Same window count and times; velocity within 1e-3 mm/s on >= 99% of defined windows.

    Times agree within 1e-9 s, or within one float32 step where the table stored float32
    times (capillary1: about 4e-6 s at 35 s). Where the table has no usable velocity
    (huge or empty) our angle must be one of ``blank_thetas``.
    """
    assert result.n_rows == len(ref_velocity)
    tol = np.spacing(np.abs(ref_time).astype(np.float32)).astype(float) if float32_times else 1e-9
    assert np.all(np.abs(result.columns["time_s"] + time_shift_s - ref_time) <= tol)
    defined = np.abs(ref_velocity) <= HUGE_MM_S  # False for NaN too
    ours = result.columns["velocity_mm_s"]
    close = np.abs(ours[defined] - ref_velocity[defined]) <= 1e-3
    assert close.mean() >= 0.99, f"only {close.mean():.4f} of windows within 1e-3 mm/s"
    blank = np.isin(result.columns["theta_deg"][~defined], blank_thetas)
    assert blank.size == 0 or blank.mean() >= 0.99
    # at 90 degrees we report NaN and the flag, never a huge number
    assert np.all(np.isnan(ours[(result.columns["flags"] & THETA_90) != 0]))
    return close.mean()


def _default_keeps_kymflow(block, plain, **kwargs):
    """The default (background="auto") changes only the windows whose plain angle is 0
    (kymflow's static-structure zeros), and reports every other window as kymflow does."""
    result = radon_velocity(block, **kwargs)
    zero = np.mod(plain.columns["theta_deg"], 180.0) == 0.0
    np.testing.assert_array_equal(result.columns["background"] == 1, zero)
    np.testing.assert_array_equal(result.columns["theta_deg"][~zero], plain.columns["theta_deg"][~zero])
    np.testing.assert_array_equal(result.columns["velocity_mm_s"][~zero], plain.columns["velocity_mm_s"][~zero])
    return result


@pytest.mark.parametrize("roi_id", [1, 2, 3])
def test_capillary1_rois_match_kymflow(realdata, roi_id):
    folder = realdata / "capillary1"
    image = tifffile.imread(folder / "Capillary1_0001.tif")
    ref = kymflow_table(folder / "Capillary1_0001_radon.csv", roi_id)
    r0, r1, c0, c1 = capillary_roi(realdata, roi_id)
    block = image[r0:r1, c0:c1]
    kwargs = dict(dx_um=ref["delx"], dt_s=ref["delt"], row_offset=r0, threads=2)
    result = radon_velocity(block, background="none", **kwargs)
    agreement = _compare(result, ref["time"], ref["velocity"], float32_times=True)
    print(f"\ncapillary1 ROI {roi_id}: {result.n_rows} windows, {agreement:.4%} within 1e-3 mm/s")
    _default_keeps_kymflow(block, result, **kwargs)


@pytest.mark.parametrize("stem", A89_STEMS)
def test_a89_whole_image_matches_kymflow(realdata, stem):
    folder = realdata / "a89"
    image = tifffile.imread(folder / f"{stem}.tif")
    ref = kymflow_table(folder / "reference" / f"{stem}.csv")
    dt_s = ref["delt"]
    result = radon_velocity(image, dx_um=ref["delx"], dt_s=dt_s, background="none")
    # this older table's time is one line later than the window centre (README)
    # ... and it left the velocity empty at 90 degrees and also where it was exactly 0 (0 degrees)
    agreement = _compare(result, ref["time"], ref["velocity"], time_shift_s=dt_s, blank_thetas=(0.0, 90.0))
    print(f"\n{stem}: {result.n_rows} windows, {agreement:.4%} within 1e-3 mm/s")
    _default_keeps_kymflow(image, result, dx_um=ref["delx"], dt_s=dt_s)


def test_headline_and_flags_on_every_real_recording(realdata):
    """Headline (median of trusted windows) within 5 % of kymflow's median over the
    windows it defines; no flag on more than a quarter of the windows; flagged windows
    at least twice as far from the local reference as trusted ones. Doubtful, for the reason
    measured on them: the 7-pixel files (velocity changes by 14-18 % between 16- and 64-line
    windows and reads 8-15 % below the line cross-correlation estimator). Capillary1 ROI 3
    (streaks cross its 12 pixels in 2.3 lines, where aliased speeds also read) is cleared by
    the line cross-correlation agreeing within 1 % (and its wider ROIs 1 and 2 agree too)."""
    for name, block, ref, r0 in real_files(realdata):
        result = radon_velocity(block, dx_um=ref["delx"], dt_s=ref["delt"], row_offset=r0, threads=2)
        v = ref["velocity"]
        defined = np.isfinite(v) & (np.abs(v) <= HUGE_MM_S) & (v != 0)
        reference = float(np.median(v[defined]))
        headline = result.summary["median_velocity_mm_s"]
        print(f"\n{name}: headline {headline:+.4f} mm/s, kymflow {reference:+.4f} ({headline / reference - 1:+.2%}), "
              f"trusted {result.summary['fraction_trusted']:.1%}")
        assert abs(headline / reference - 1) <= 0.05
        if block.shape[1] <= 7:
            assert len(result.warnings) == 1 and "Radon velocity is uncertain" in result.warnings[0], result.warnings
            assert -0.20 < result.summary["window_dependence"] < -0.10
            assert -0.20 < result.summary["lag_ratio"] < -0.05  # Radon reads slower than line correlation
        else:
            assert result.warnings == [], (name, result.warnings)
        if name == "Capillary1 ROI 3":  # 12 pixels crossed in 2.3 lines: at the sampling limit, but
            assert result.summary["median_crossing_lines"] < 2.5  # line correlation agrees: not aliased
            assert abs(result.summary["lag_ratio"]) < 0.02
        elif block.shape[1] > 7:
            assert result.summary["median_crossing_lines"] > 2.5
        flags = result.columns["flags"]
        local = local_reference(v, ref["delt"])
        err = np.abs(result.columns["velocity_mm_s"] - local) / np.abs(local)
        trusted_err = np.nanmedian(err[flags == 0])
        for flag, bit in result.flag_bits.items():
            marked = (flags & bit) != 0
            assert marked.mean() <= 0.25, f"{name}: {flag} on {marked.mean():.0%} of windows"
            if flag != "theta_90" and np.isfinite(err[marked]).sum() >= 10:
                assert np.nanmedian(err[marked]) >= 2 * trusted_err, (name, flag)
