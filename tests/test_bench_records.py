"""The record factories of the writer benchmark and the results tests write what a real job writes."""

from __future__ import annotations

import numpy as np

from hpcacq.analyses.diameter import vessel_diameter
from hpcacq.analyses.velocity import radon_velocity
from hpcacq.bench.records import DT_S, DX_UM, N_PIXELS, diameter_record, velocity_record
from hpcacq.synth.diameter import make_vessel_kymograph
from hpcacq.synth.velocity import make_velocity_kymograph


def test_velocity_record_has_the_real_analysis_columns_units_flag_bits_and_params():
    image = make_velocity_kymograph(256, N_PIXELS, px_per_line=0.5, rng=np.random.default_rng(0))
    real = radon_velocity(image, dx_um=DX_UM, dt_s=DT_S)
    n_rows = len(real.columns["time_s"])
    file_record = velocity_record(3, n_rows=n_rows)
    (record,) = file_record.records
    fake = record.result
    assert fake.analysis == record.analysis == real.analysis
    assert list(fake.columns) == list(real.columns)
    assert {k: v.dtype for k, v in fake.columns.items()} == {k: v.dtype for k, v in real.columns.items()}
    assert all(v.shape == (n_rows,) for v in fake.columns.values())
    assert fake.units == real.units and fake.flag_bits == real.flag_bits
    assert fake.params == real.params == record.params  # same fields, same values (defaults, the same units)
    np.testing.assert_array_equal(fake.columns["time_s"], real.columns["time_s"])  # same windows in time
    assert file_record.n_lines == image.shape[0] and record.roi_bounds == (0, image.shape[0], 0, N_PIXELS)
    # only real bits are set, each of them somewhere; the clean trace is NaN exactly where flagged
    flags = fake.columns["flags"]
    every_bit = sum(real.flag_bits.values())
    assert np.all(flags & ~every_bit == 0)
    assert all(np.any(flags & bit) for bit in real.flag_bits.values())
    assert np.array_equal(np.isnan(fake.columns["velocity_clean_mm_s"]), flags != 0)
    assert set(fake.summary) <= set(real.summary) and record.message == "ok"


def test_velocity_record_is_reproducible_per_index():
    a, b, c = velocity_record(5, n_rows=100), velocity_record(5, n_rows=100), velocity_record(6, n_rows=100)
    for name, column in a.records[0].result.columns.items():
        assert column.tobytes() == b.records[0].result.columns[name].tobytes()
    assert a.file_path != c.file_path
    assert not np.array_equal(a.records[0].result.columns["theta_deg"], c.records[0].result.columns["theta_deg"])


def test_diameter_record_has_the_real_analysis_columns_units_flag_bits_and_params():
    image = make_vessel_kymograph(300, 60, diameter_px=20, rng=np.random.default_rng(0), noise_sd=5)
    fake_record = diameter_record("/d/cap.tif", n_rows=300).records[0]
    fake = fake_record.result
    params = fake.params
    real = vessel_diameter(image, dx_um=params["dx_um"], dt_s=params["dt_s"])
    assert fake.analysis == fake_record.analysis == real.analysis
    assert list(fake.columns) == list(real.columns)
    assert {k: v.dtype for k, v in fake.columns.items()} == {k: v.dtype for k, v in real.columns.items()}
    assert fake.units == real.units and fake.flag_bits == real.flag_bits
    assert params == real.params == fake_record.params
    np.testing.assert_array_equal(fake.columns["time_s"], real.columns["time_s"])
    assert np.all(np.isnan(fake.columns["fit_quality"])) and np.all(np.isnan(real.columns["fit_quality"]))  # halfmax
    np.testing.assert_allclose(fake.columns["diameter_um"], fake.columns["diameter_px"] * params["dx_um"])
    flags = fake.columns["flags"]
    assert np.all(flags & ~sum(real.flag_bits.values()) == 0)
    assert all(np.any(flags & bit) for bit in real.flag_bits.values())
    assert set(fake.summary) <= set(real.summary) and fake_record.message == "ok"
    failed = diameter_record("/d/cap.tif", outcome="FAILED").records[0]
    assert failed.result is None and failed.message == "FAILED: why"
