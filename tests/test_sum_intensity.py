"""sum_intensity: per-line summed intensity, against a naive numpy reference; and the registry.

The third analysis is written as one module plus one registry line; these tests check
that the rest of the program (strategies, acqstore objects, CLI) knows it from there.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hpcacq.analyses import registry
from hpcacq.analyses.sum_intensity import sum_intensity
from hpcacq.errors import AnalysisCancelled, InputError, MissingUnitsError


def _naive(block: np.ndarray) -> tuple[list[float], list[float]]:
    """Each line's sum, written out pixel by pixel in Python floats."""
    sums = []
    for line in block:
        total = 0.0
        for value in line:
            total += float(value)
        sums.append(total)
    return sums, [s / block.shape[1] for s in sums]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32", "float64"])
def test_line_sums_equal_a_naive_reference(dtype):
    rng = np.random.default_rng(3)
    block = rng.integers(0, 250, size=(1000, 23)).astype(dtype)
    result = sum_intensity(block, dx_um=0.5, dt_s=0.002, row_offset=7)
    sums, means = _naive(block)
    np.testing.assert_allclose(result.columns["sum_intensity"], sums, rtol=1e-12)
    np.testing.assert_allclose(result.columns["mean_intensity"], means, rtol=1e-12)
    np.testing.assert_allclose(result.columns["time_s"], (7 + np.arange(1000)) * 0.002, rtol=1e-12)
    assert result.units == {"time_s": "s", "sum_intensity": "counts", "mean_intensity": "counts/px"}
    assert result.analysis == "sum_intensity" and result.params == {"dx_um": 0.5, "dt_s": 0.002}


def test_chunks_cancel_and_progress_do_not_change_the_answer(monkeypatch):
    import hpcacq.analyses.sum_intensity as module

    block = np.arange(5 * 4, dtype=np.float64).reshape(5, 4)
    monkeypatch.setattr(module, "_CHUNK_LINES", 2)
    seen = []
    result = sum_intensity(block, dx_um=1.0, dt_s=1.0, progress=lambda done, total: seen.append((done, total)))
    assert result.columns["sum_intensity"].tolist() == [6.0, 22.0, 38.0, 54.0, 70.0]
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    calls = iter([False, True])
    with pytest.raises(AnalysisCancelled, match="after 2 of 5 lines"):
        sum_intensity(block, dx_um=1.0, dt_s=1.0, cancel=lambda: next(calls))


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(MissingUnitsError, match="dt_s is unknown"):
        sum_intensity(np.ones((3, 3)), dx_um=1.0, dt_s=None)
    with pytest.raises(InputError, match="NaN/inf pixel"):
        sum_intensity(np.array([[1.0, np.nan]]), dx_um=1.0, dt_s=1.0)
    with pytest.raises(InputError, match="2-D block"):
        sum_intensity(np.ones(4), dx_um=1.0, dt_s=1.0)


def test_registry_knows_it_and_it_coexists_with_velocity_and_diameter():
    from hpcacq import AcqImage
    from hpcacq.jobs.strategies import strategy_for

    spec = registry.get_spec("sum_intensity")
    assert spec.exclusive_group is None and spec.units["mean_intensity"] == "counts/px"
    assert registry.HEADLINE["sum_intensity"] == "mean_intensity" and registry.resolve("sum_intensity")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 200, size=(256, 38)).astype(np.uint16)
    img = AcqImage.from_array(pixels, dx_um=0.5, dt_s=0.001)
    roi = img.rois.create_rect_roi()
    for name in ("radon_velocity", "sum_intensity"):
        img.analysis_set.create(name, channel=0, roi_id=roi.roi_id)
    results = [img.analysis_set.run_analysis(key) for key in list(img.analysis_set.keys())]
    sums = next(r for r in results if r.analysis == "sum_intensity").columns["sum_intensity"]
    np.testing.assert_allclose(sums, _naive(pixels)[0])
    assert strategy_for("sum_intensity").analysis_name == "sum_intensity"


def test_listing_the_analyses_does_not_import_numba():
    code = ("import sys; from hpcacq.analyses import registry; from hpcacq.cli import run, plot, compile; "
            "assert 'sum_intensity' in run.ANALYSIS_NAMES and not {'numba', 'numpy'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hpcacq_run_sum_intensity_end_to_end(tmp_path, capsys):
    from hpcacq.cli import main
    from hpcacq.io import read_acquisition
    from hpcacq.results import iter_results
    from hpcacq.synth.corpus import write_corpus

    folder = tmp_path / "corpus"
    write_corpus(folder, n_files=2, kind="velocity", n_lines=400, seed=2)
    out_h5 = tmp_path / "si.h5"
    with pytest.raises(SystemExit) as info:
        main(["run", str(folder), "-o", str(out_h5), "--analysis", "sum_intensity"])
    assert info.value.code == 0, capsys.readouterr().err
    results = list(iter_results(out_h5))
    assert len(results) == 2
    for meta, result in results:
        pixels = np.asarray(read_acquisition(meta["file"]).data)[0]
        np.testing.assert_allclose(result.columns["sum_intensity"], _naive(pixels)[0], rtol=1e-12)
    with pytest.raises(SystemExit) as info:
        main(["summary", str(out_h5)])
    assert info.value.code == 0 and capsys.readouterr().out.count("median mean_intensity") == 2
