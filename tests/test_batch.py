"""The batch API: outcomes, order, callback, threads option, replacement of results.

The analyses here are a stand-in with a known answer (the mean of each line times
``scale``, tests/helpers/fake_analysis.py), registered in place of the real ones by the
``fakes`` fixture, so these tests check the batch engine alone.
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hpcacq.analyses import registry
from hpcacq.errors import ParameterError
from hpcacq.jobs.batch import (
    AcqAnalysisBatch,
    AnalysisBatchKind,
    BatchFileOutcome,
    DiameterBatchStrategy,
    RadonVelocityBatchStrategy,
    RoiBatchMode,
    to_file_record,
)
from hpcacq.model import AcqImage

from helpers.fake_analysis import FAKE_CALLS, write_images

UNITS = {"dx_um": 0.5, "dt_s": 0.001}


def test_results_in_input_order_with_known_values(fakes, tmp_path):
    paths = write_images(tmp_path, 6)
    strategy = RadonVelocityBatchStrategy(detection_params={"scale": 2.0}, **UNITS)
    results = AcqAnalysisBatch(paths, strategy, max_parallel_files=3).run()
    assert [r.file_path for r in results] == paths
    for path, r in zip(paths, results, strict=True):
        assert r.outcome is BatchFileOutcome.OK and r.message == "ok"
        image = np.load(path)
        np.testing.assert_allclose(r.result.columns["value"], image.mean(axis=1) * 2.0)
        assert r.roi_bounds == (0, image.shape[0], 0, image.shape[1]) and r.n_lines == image.shape[0]
        assert r.params["dt_s"] == 0.001 and r.params["scale"] == 2.0


def test_callback_fires_per_file_as_each_completes(fakes, tmp_path):
    paths = write_images(tmp_path, 5)
    seen, caller = [], threading.current_thread()
    strategy = DiameterBatchStrategy(**UNITS)

    def callback(result):
        seen.append((result.file_path, threading.current_thread() is caller))

    results = AcqAnalysisBatch(paths, strategy, max_parallel_files=2).run(on_file_result=callback)
    assert sorted(p for p, _ in seen) == paths and all(same for _, same in seen)
    assert all(r.ok for r in results)


def test_bad_file_fails_with_a_message_and_others_go_on(fakes, tmp_path):
    paths = write_images(tmp_path, 3)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    files = [paths[0], str(bad), paths[1], str(tmp_path / "missing.npy"), paths[2]]
    results = AcqAnalysisBatch(files, RadonVelocityBatchStrategy(**UNITS), max_parallel_files=2).run()
    outcomes = [r.outcome for r in results]
    assert outcomes == [BatchFileOutcome.OK, BatchFileOutcome.FAILED, BatchFileOutcome.OK,
                        BatchFileOutcome.FAILED, BatchFileOutcome.OK]
    assert results[1].message.startswith("InputError: ") and "broken.tif" in results[1].message
    assert "missing.npy" in results[3].message


def test_worker_exception_becomes_failed(fakes, tmp_path, monkeypatch):
    paths = write_images(tmp_path, 3)
    strategy = RadonVelocityBatchStrategy(**UNITS)
    original = type(strategy).run_file

    def exploding(self, file, *, cancel_event=None):
        if file == paths[1]:
            raise RuntimeError("worker blew up")
        return original(self, file, cancel_event=cancel_event)

    monkeypatch.setattr(type(strategy), "run_file", exploding)
    results = AcqAnalysisBatch(paths, strategy).run()
    assert [r.outcome for r in results] == [BatchFileOutcome.OK, BatchFileOutcome.FAILED, BatchFileOutcome.OK]
    assert "RuntimeError" in results[1].message and "worker blew up" in results[1].message


def test_missing_roi_is_skipped_and_existing_roi_is_used(fakes):
    with_roi = AcqImage.from_array(np.arange(400.0).reshape(40, 10), path="a.npy", **UNITS)
    with_roi.rois.create_rect_roi((8, 24, 2, 6))
    without = AcqImage.from_array(np.ones((40, 10)), path="b.npy", **UNITS)
    strategy = RadonVelocityBatchStrategy(roi_mode=RoiBatchMode.ANALYZE_EXISTING_ROI, roi_id=1)
    results = AcqAnalysisBatch([with_roi, without], strategy).run()
    assert results[0].outcome is BatchFileOutcome.OK and results[0].roi_bounds == (8, 24, 2, 6)
    np.testing.assert_allclose(results[0].result.columns["time_s"], np.arange(8, 24) * 0.001)
    np.testing.assert_allclose(results[0].result.columns["value"], np.arange(8, 24) * 10 + 3.5)
    assert results[1].outcome is BatchFileOutcome.SKIPPED_MISSING_ROI and "no ROI 1" in results[1].message


def test_other_analysis_on_same_roi_is_skipped_conflict(fakes):
    image = AcqImage.from_array(np.ones((40, 10)), path="a.npy", **UNITS)
    roi = image.rois.create_rect_roi()
    image.analysis_set.create("diameter", channel=0, roi_id=roi.roi_id)
    strategy = RadonVelocityBatchStrategy(roi_mode=RoiBatchMode.ANALYZE_EXISTING_ROI, roi_id=roi.roi_id)
    (result,) = AcqAnalysisBatch([image], strategy).run()
    assert result.outcome is BatchFileOutcome.SKIPPED_CONFLICT
    assert result.message.startswith("AnalysisExclusionError")


def test_same_key_replaces_the_earlier_result(fakes):
    image = AcqImage.from_array(np.full((20, 4), 3.0), path="a.npy", **UNITS)
    image.rois.create_rect_roi()
    first = RadonVelocityBatchStrategy(roi_mode="existing", roi_id=1, detection_params={"scale": 1.0})
    second = RadonVelocityBatchStrategy(roi_mode="existing", roi_id=1, detection_params={"scale": 5.0})
    AcqAnalysisBatch([image], first).run()
    AcqAnalysisBatch([image], second).run()
    assert len(image.analysis_set.results) == 1
    (stored,) = image.analysis_set.results.values()
    np.testing.assert_allclose(stored.columns["value"], 15.0)


def test_threads_per_file_reaches_the_analysis(fakes, tmp_path):
    paths = write_images(tmp_path, 2)
    AcqAnalysisBatch(paths, RadonVelocityBatchStrategy(threads_per_file=3, **UNITS)).run()
    assert [c["threads"] for c in FAKE_CALLS] == [3, 3]


def test_files_really_run_in_parallel(fakes, tmp_path):
    paths = write_images(tmp_path, 4, lines=20)
    strategy = RadonVelocityBatchStrategy(detection_params={"delay_s": 0.3}, **UNITS)
    start = time.perf_counter()
    AcqAnalysisBatch(paths, strategy, max_parallel_files=1).run()
    serial = time.perf_counter() - start
    start = time.perf_counter()
    AcqAnalysisBatch(paths, strategy, max_parallel_files=4).run()
    parallel = time.perf_counter() - start
    assert parallel < serial / 2  # sleeps overlap whatever the load of the machine


@pytest.mark.parametrize("options, expected", [
    ({"channel": -1}, "channel"),
    ({"roi_mode": RoiBatchMode.ANALYZE_EXISTING_ROI}, "roi_id"),
    ({"threads_per_file": 0}, "threads_per_file"),
    ({"detection_params": {"scal": 1}}, "scal"),
    ({"detection_params": {"scale": -1.0}}, "scale"),
    ({"dx_um": 0}, "dx_um"),
    ({"roi_mode": "sideways"}, "roi_mode"),
])
def test_bad_options_fail_when_the_strategy_is_built(fakes, options, expected):
    with pytest.raises(ParameterError, match=expected):
        RadonVelocityBatchStrategy(**options)


def test_kinds_name_the_registered_analyses(fakes):
    assert RadonVelocityBatchStrategy().analysis_name == AnalysisBatchKind.RADON_VELOCITY.value == "radon_velocity"
    assert DiameterBatchStrategy().analysis_name == "diameter"
    assert set(k.value for k in AnalysisBatchKind) == set(registry.ANALYSIS_NAMES)


def test_cancel_event_midway_keeps_finished_files(fakes, tmp_path):
    paths = write_images(tmp_path, 8, lines=20)
    strategy = RadonVelocityBatchStrategy(detection_params={"delay_s": 0.2}, **UNITS)
    event = threading.Event()
    done = []

    def callback(result):
        done.append(result)
        if len(done) == 2:
            event.set()

    start = time.perf_counter()
    results = AcqAnalysisBatch(paths, strategy, max_parallel_files=2).run(cancel_event=event, on_file_result=callback)
    assert time.perf_counter() - start < 1.5  # 8 files x 0.2 s / 2 would take 0.8 s more
    outcomes = [r.outcome for r in results]
    # the two files the callback saw finished (any two: two run at a time and either may end first)
    finished = {r.file_path for r in done[:2]}
    assert [r.outcome for r in results if r.file_path in finished] == [BatchFileOutcome.OK] * 2
    assert all(r.result is not None for r in results if r.file_path in finished)
    assert outcomes.count(BatchFileOutcome.OK) == 2 and outcomes.count(BatchFileOutcome.CANCELLED) == 6


def test_file_record_carries_outcome_and_table(fakes, tmp_path):
    (path,) = write_images(tmp_path, 1)
    (result,) = AcqAnalysisBatch([path], RadonVelocityBatchStrategy(**UNITS)).run()
    record = to_file_record(result, rank=3, host="node7")
    assert record.file_path == path and record.rank == 3 and record.host == "node7"
    assert record.fingerprint["size"] == Path(path).stat().st_size
    (analysis,) = record.records
    assert analysis.outcome == "OK" and analysis.result is result.result and analysis.roi_id == 1
    assert record.n_lines == 200 and set(record.timings) == {"read_s", "analyse_s", "total_s"}
    pickle.loads(pickle.dumps(record))  # MPI ranks send records to rank 0
