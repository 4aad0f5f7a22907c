"""The batch API: outcomes, order, callback, threads option, replacement of results.

The analyses here are a stand-in with a known answer (the mean of each line times
``scale``), registered in place of the real ones, so these tests check the batch
engine alone. The helpers at the top are shared with test_driver/test_mpi/test_cancel
(and the MPI scripts they launch).
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hpcacq.analyses import registry
from hpcacq.analyses.base import AnalysisResult
from hpcacq.errors import AnalysisCancelled, ParameterError

# ----------------------------------------------------------------- shared stand-ins
FAKE_CALLS: list[dict] = []  # one entry per fake analysis run: threads, file shape, thread name


@dataclass(frozen=True)
class FakeParams:
    """Parameters of the stand-in analysis."""

    dx_um: float
    dt_s: float
    scale: float = 1.0
    delay_s: float = 0.0
    delay_from_file: bool = False  # add image[0, 0] milliseconds to delay_s

    def __post_init__(self):
        if not self.scale > 0:
            raise ParameterError(f"scale must be > 0, got {self.scale}")


def fake_run(image2d, params, *, row_offset=0, threads=1, cancel=None, progress=None):
    """Known answer: per line, mean of the ROI x scale; sleeps delay_s in 10 ms chunks."""
    FAKE_CALLS.append({"threads": threads, "shape": image2d.shape})
    delay_s = params.delay_s + (float(image2d[0, 0]) / 1000.0 if params.delay_from_file else 0.0)
    deadline = time.perf_counter() + delay_s
    while time.perf_counter() < deadline:
        if cancel is not None and cancel():
            raise AnalysisCancelled("fake analysis cancelled")
        time.sleep(0.01)
    if cancel is not None and cancel():
        raise AnalysisCancelled("fake analysis cancelled")
    n = image2d.shape[0]
    return AnalysisResult(
        analysis="fake", params=dataclasses.asdict(params),
        columns={"time_s": (row_offset + np.arange(n)) * params.dt_s,
                 "value": image2d.mean(axis=1) * params.scale},
        units={"time_s": "s", "value": "1"},
    )


def install_fakes() -> None:
    """Register the stand-in as both 'radon_velocity' and 'diameter' (same exclusive group)."""
    for name in ("radon_velocity", "diameter"):
        registry.ANALYSES._cache[name] = registry.AnalysisSpec(name, FakeParams, fake_run)


def remove_fakes() -> None:
    for name in ("radon_velocity", "diameter"):
        registry.ANALYSES._cache.pop(name, None)


@dataclass
class _AnalysisRecord:
    analysis: str
    channel: int
    roi_id: int | None
    roi_bounds: tuple | None
    outcome: str
    message: str
    params: dict
    result: object
    elapsed_s: float


@dataclass
class _FileRecord:
    file_path: str
    fingerprint: dict
    records: list
    rank: int
    host: str
    timings: dict = field(default_factory=dict)
    n_lines: int = 0


def _fingerprint(path, *, sha256=False):
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": None}


class PickleWriter:
    """Stand-in for results.ResultsWriter: appends each FileRecord to a pickle stream."""

    def __init__(self, path, *, mode="new", job_attrs=None):
        self.path = Path(path)
        if self.path.exists() and mode == "new":
            raise ParameterError(f"{path} exists: use resume or overwrite")
        self._handle = open(self.path, "ab" if mode == "resume" else "wb")

    def write_file(self, record):
        pickle.dump(record, self._handle)
        self._handle.flush()

    def done_fingerprints(self):
        done = {}
        for rec in read_pickle_records(self.path):
            if all(a.outcome == "OK" for a in rec.records):
                done[rec.file_path] = {"fingerprint": rec.fingerprint, "analysis": rec.records[0].analysis,
                                       "params": rec.records[0].params}
        return done

    def close(self):
        self._handle.close()


def read_pickle_records(path) -> list:
    records = []
    with open(path, "rb") as handle:
        while True:
            try:
                records.append(pickle.load(handle))
            except EOFError:
                return records


def ensure_results_module() -> bool:
    """Make ``hpcacq.results`` importable; True if the real module is there."""
    try:
        import hpcacq.results as real

        if all(hasattr(real, name) for name in ("ResultsWriter", "FileRecord", "iter_results")):
            return True
    except ImportError:
        pass
    if True:
        module = types.ModuleType("hpcacq.results")
        module.AnalysisRecord, module.FileRecord = _AnalysisRecord, _FileRecord
        module.file_fingerprint, module.ResultsWriter = _fingerprint, PickleWriter
        sys.modules["hpcacq.results"] = module
        return False


def write_images(folder: Path, n: int, *, lines=200, pixels=16, seed=0) -> list[str]:
    """``n`` random .npy line scans (lines x pixels, uint16) with different sizes."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"scan_{i:03d}.npy"
        np.save(path, rng.integers(0, 4000, size=(lines + 8 * i, pixels), dtype=np.uint16))
        paths.append(str(path))
    return paths


@pytest.fixture
def fakes():
    install_fakes()
    ensure_results_module()
    FAKE_CALLS.clear()
    yield
    remove_fakes()


# ----------------------------------------------------------------- the tests
from hpcacq.jobs.batch import (  # noqa: E402
    AcqAnalysisBatch,
    AnalysisBatchKind,
    BatchFileOutcome,
    DiameterBatchStrategy,
    RadonVelocityBatchStrategy,
    RoiBatchMode,
    to_file_record,
)
from hpcacq.model import AcqImage  # noqa: E402

UNITS = {"dx_um": 0.5, "dt_s": 0.001}


def test_results_in_input_order_with_known_values(fakes, tmp_path):
    paths = write_images(tmp_path, 6)
    strategy = RadonVelocityBatchStrategy(detection_params={"scale": 2.0}, **UNITS)
    results = AcqAnalysisBatch(paths, strategy, max_parallel_files=3).run()
    assert [r.file_path for r in results] == paths
    for path, r in zip(paths, results):
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
    ({"roi_id": 2}, "ANALYZE_EXISTING_ROI"),
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
    assert outcomes[:2] == [BatchFileOutcome.OK] * 2
    assert set(outcomes[2:]) == {BatchFileOutcome.CANCELLED}
    assert all(r.result is not None for r in results[:2])


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
